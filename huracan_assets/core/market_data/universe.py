"""Universe selection: rank coins by trailing liquidity known at the end of D (no look-ahead)."""

from __future__ import annotations

import polars as pl

UNIVERSE_SCHEMA = {
    "symbol": pl.String,
    "rank": pl.Int32,
    "quote_volume": pl.Float64,
    "first_bar_ts": pl.Int64,
    "history_days": pl.Float64,
    "selected": pl.Boolean,
    "reason": pl.String,
}


def rank_universe(
    stats: pl.DataFrame,
    *,
    as_of_end_ms: int,
    max_symbols: int,
    min_history_days: float,
    explicit: tuple[str, ...] | None = None,
) -> pl.DataFrame:
    """Rank symbols by trailing quote volume and select the top ``max_symbols``.

    ``stats`` has one row per listed symbol: ``symbol``, ``quote_volume`` (sum over the trailing
    window ending at ``as_of_end_ms``), ``first_bar_ts`` (first bar the exchange had). Symbols named
    in ``explicit`` bypass the ranking and size filters but must be listed as of D.
    """
    frame = stats.with_columns(
        history_days=((as_of_end_ms - pl.col("first_bar_ts")) / 86_400_000).cast(pl.Float64),
    ).sort(["quote_volume", "symbol"], descending=[True, False])
    frame = frame.with_columns(rank=pl.int_range(1, frame.height + 1, dtype=pl.Int32))
    if explicit is not None:
        listed = set(frame["symbol"].to_list())
        frame = frame.with_columns(
            selected=pl.col("symbol").is_in(list(explicit)),
            reason=pl.when(pl.col("symbol").is_in(list(explicit)))
            .then(pl.lit("named explicitly"))
            .otherwise(pl.lit("not named")),
        )
        unlisted = [s for s in explicit if s not in listed]
        if unlisted:
            frame = pl.concat(
                [
                    frame,
                    pl.DataFrame(
                        {
                            "symbol": unlisted,
                            "quote_volume": [0.0] * len(unlisted),
                            "first_bar_ts": [None] * len(unlisted),
                            "history_days": [0.0] * len(unlisted),
                            "rank": [None] * len(unlisted),
                            "selected": [False] * len(unlisted),
                            "reason": ["not listed as of D"] * len(unlisted),
                        },
                        schema_overrides=UNIVERSE_SCHEMA,
                    ),
                ],
                how="diagonal_relaxed",
            )
    else:
        young = pl.col("history_days") < min_history_days
        eligible_rank = pl.when(young).then(None).otherwise(pl.col("rank"))
        frame = frame.with_columns(eligible=eligible_rank)
        frame = frame.with_columns(
            selected=(~young) & (pl.col("eligible").rank("ordinal") <= max_symbols),
            reason=pl.when(young)
            .then(pl.lit(f"history < {min_history_days} days"))
            .when(pl.col("eligible").rank("ordinal") <= max_symbols)
            .then(pl.lit("top by quote volume"))
            .otherwise(pl.lit(f"below top {max_symbols}")),
        ).drop("eligible")
    return frame.select([pl.col(c).cast(t) for c, t in UNIVERSE_SCHEMA.items()])
