"""Candle cleaning: cast, window, sort, de-duplicate, drop bad rows, repair OHLC, report gaps, flag jumps.

Pure polars (plus numpy for the gap arithmetic); no I/O. Every change is counted in a ``CleaningReport``.

Steps of ``clean_candles``, in order (each counted):

1. cast the six candle columns to ``CANDLE_SCHEMA`` (``ValueError`` for missing columns or uncastable
   values; extra columns are dropped); rows with a null ``ts`` count as ``nan_rows_dropped``;
2. keep bars whose open time is in ``[start_ms, end_ms)`` (``outside_window_dropped``);
3. drop bars whose ``ts`` is not a multiple of the bar size (``misaligned_dropped``);
4. sort by ``ts`` (``unsorted_fixed`` = rows whose ``ts`` is smaller than the preceding row's);
5. de-duplicate on ``ts``, the LAST copy in input order wins: late bars overwrite (``duplicates_dropped``);
   the winner is chosen before step 6, so a late copy with a NaN removes the bar (it then shows as a gap);
6. drop rows with a null, NaN or infinite value in any column (``nan_rows_dropped``);
7. drop rows with a price <= 0 or a negative volume (``non_positive_dropped``);
8. widen high/low to include open and close where a bad tick broke them (``ohlc_repaired``);
9. count zero-volume bars and flag (never drop or alter) extreme close-to-close moves among the real
   bars (``zero_volume_bars``, ``suspect_jumps``);
10. compare with the window's bar grid: ``gaps``, ``missing_bars``; with ``fill_gaps="ffill_flat"``,
    fill interior gaps of at most ``max_gap_fill_bars`` bars (``gap_bars_filled``);
11. check the result against ``CANDLE_FRAME_SCHEMA`` (a failure here is a bug: ``ValueError``). The check
    evaluates the schema's own invariant expressions (``INVARIANTS``) and dtypes in one polars pass
    (~0.1 ms); the full pandera validation (~3 ms per call, i.e. most of the run time) runs only to explain
    a failure. Use ``validate_candles`` for a pandera validation at a boundary.

Zero-volume bars are real (Binance emits a flat kline at the previous close when nothing traded): they
are kept and counted (``zero_volume_bars``), never treated as bad data.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

import numpy as np
import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaError, SchemaErrors

from huracan_assets.core.market_data.candles import CANDLE_COLUMNS, CANDLE_SCHEMA

PRICE_COLUMNS = ("open", "high", "low", "close")
FLOAT_COLUMNS = (*PRICE_COLUMNS, "volume")
MAD_TO_SIGMA = 1.4826  # median absolute deviation of a normal variable x 1.4826 = its standard deviation
FILL_POLICIES = ("none", "ffill_flat")


# --------------------------------------------------------------------------------------------- schema


# The invariants of a clean candle frame beyond column names and dtypes, as row-wise expressions (a null
# counts as a failure). They are the frame-level checks of ``CANDLE_FRAME_SCHEMA`` and, evaluated in one
# polars pass, the post-condition of ``clean_candles``.
INVARIANTS: dict[str, tuple[pl.Expr, str]] = {
    "no_missing_values": (
        pl.all_horizontal(
            [pl.col(c).is_not_null() for c in CANDLE_COLUMNS] + [pl.col(c).is_finite() for c in FLOAT_COLUMNS]
        ),
        "no null, NaN or infinite value in any column",
    ),
    "ts_unique_increasing": (pl.col("ts").diff().fill_null(1) > 0, "ts unique and strictly increasing"),
    "positive_prices": (pl.all_horizontal([pl.col(c) > 0 for c in PRICE_COLUMNS]), "open, high, low, close > 0"),
    "non_negative_volume": (pl.col("volume") >= 0, "volume >= 0"),
    "ohlc_consistent": (
        (pl.col("high") >= pl.max_horizontal("open", "close")) & (pl.col("low") <= pl.min_horizontal("open", "close")),
        "high >= max(open, close) and low <= min(open, close)",
    ),
}


def _frame_check(name: str, expr: pl.Expr, error: str) -> pa.Check:
    return pa.Check(lambda data: data.lazyframe.select(expr), name=name, error=error, ignore_na=False)


# Each pandera check costs a polars collect (~0.3-0.5 ms on a day of bars), so the invariants are five
# frame-level checks rather than one check per column and rule.
CANDLE_FRAME_SCHEMA = pa.DataFrameSchema(
    {name: pa.Column(dtype, nullable=True) for name, dtype in CANDLE_SCHEMA.items()},
    checks=[_frame_check(name, expr, error) for name, (expr, error) in INVARIANTS.items()],
    strict=True,
    ordered=True,
    name="candle_frame",
)


def _invariants_hold(frame: pl.DataFrame) -> bool:
    """``CANDLE_FRAME_SCHEMA`` in one polars pass (same expressions); ``validate_candles`` explains failures."""
    if frame.schema != pl.Schema(CANDLE_SCHEMA):
        return False
    row = frame.select([expr.fill_null(False).all().alias(name) for name, (expr, _) in INVARIANTS.items()]).row(0)
    return all(row)


_CHECK_NAMES = {error: name for name, (_, error) in INVARIANTS.items()}
_STRUCTURE = {
    "column_in_dataframe": "missing column",
    "column_in_schema": "unexpected column",
    "column_ordered": "column out of order",
}


def _describe_failures(exc: SchemaErrors | SchemaError) -> list[str]:
    cases = exc.failure_cases
    if not isinstance(cases, pl.DataFrame) or cases.is_empty():
        return [str(exc).splitlines()[0] if str(exc) else type(exc).__name__]
    cases = cases.with_columns(pl.col("failure_case").cast(pl.String).fill_null("null"), pl.col("index").cast(pl.Int64))
    if (cases["check"] == "column_in_dataframe").any():  # frame checks then only repeat "column not found"
        cases = cases.filter(~pl.col("failure_case").str.starts_with("ColumnNotFoundError"))
    messages = []
    for (context, column, check), group in cases.group_by(["schema_context", "column", "check"], maintain_order=True):
        examples = group["failure_case"].to_list()
        rows = group["index"].drop_nulls().to_list()
        if context == "Column":
            messages.append(f"column '{column}': {check} failed, found {', '.join(examples[:3])}")
        elif check in _CHECK_NAMES and not rows:  # the check itself failed, e.g. on a text column
            messages.append(f"{_CHECK_NAMES[check]} ({check}) could not be evaluated: {examples[0].splitlines()[0]}")
        elif check in _CHECK_NAMES:
            messages.append(
                f"{_CHECK_NAMES[check]} ({check}) violated by {group.height} row(s) {rows[:5]}; e.g. {examples[0]}"
            )
        else:
            messages.append(f"{_STRUCTURE.get(check, check)}: {', '.join(examples)}")
    return messages


def validate_candles(frame: object) -> list[str]:
    """Human-readable violations of ``CANDLE_FRAME_SCHEMA`` (empty when valid); never raises."""
    if not isinstance(frame, pl.DataFrame):
        return [f"expected a polars DataFrame, got {type(frame).__name__}"]
    try:
        CANDLE_FRAME_SCHEMA.validate(frame, lazy=True)
    except (SchemaErrors, SchemaError) as exc:
        return _describe_failures(exc)
    except Exception as exc:  # a frame so malformed that a check itself cannot run
        return [f"validation could not run: {type(exc).__name__}: {exc}"]
    return []


# --------------------------------------------------------------------------------------- policy, report


@dataclass(frozen=True)
class CleaningPolicy:
    """Explicit cleaning thresholds (to be read from config).

    - ``fill_gaps``: ``"none"`` reports gaps and leaves them; ``"ffill_flat"`` inserts, for each missing
      bar of an interior gap (a real bar on both sides) of at most ``max_gap_fill_bars`` bars, a flat
      zero-volume bar at the previous close: exactly what Binance itself emits for a no-trade interval.
      Gaps touching the window's start or end are never filled (no previous close / data may not exist yet).
    - ``drop_non_positive``: drop rows with a price <= 0 or a negative volume; ``False`` = strict mode,
      such rows raise ``ValueError`` instead.
    - ``repair_ohlc``: widen high/low to include open/close when a bad tick broke ``high >= max(open, close)``
      or ``low <= min(open, close)``; ``False`` = strict mode, such rows raise ``ValueError`` instead.
    - Extreme moves are only FLAGGED: a bar is a suspect jump when ``|log(close / previous close)|`` exceeds
      both ``extreme_move_floor`` and ``extreme_move_sigma`` x a causal robust scale (1.4826 x the median
      absolute log return of up to ``extreme_move_window`` previous bars in the window, at least
      ``extreme_move_min_history`` of them; with less history only the floor applies).
    """

    bar_minutes: int
    fill_gaps: Literal["none", "ffill_flat"] = "none"
    max_gap_fill_bars: int = 3
    drop_non_positive: bool = True
    repair_ohlc: bool = True
    extreme_move_sigma: float = 10.0
    extreme_move_floor: float = 0.05
    extreme_move_window: int = 48
    extreme_move_min_history: int = 6

    def __post_init__(self) -> None:
        if self.bar_minutes <= 0:
            raise ValueError(f"bar_minutes must be positive, got {self.bar_minutes}")
        if self.fill_gaps not in FILL_POLICIES:
            raise ValueError(f"fill_gaps must be one of {FILL_POLICIES}, got {self.fill_gaps!r}")
        if self.max_gap_fill_bars < 0:
            raise ValueError(f"max_gap_fill_bars must be >= 0, got {self.max_gap_fill_bars}")
        if not self.extreme_move_sigma > 0 or not self.extreme_move_floor >= 0:
            raise ValueError("extreme_move_sigma must be > 0 and extreme_move_floor >= 0")
        if not 1 <= self.extreme_move_min_history <= self.extreme_move_window:
            raise ValueError("need 1 <= extreme_move_min_history <= extreme_move_window")

    @property
    def bar_ms(self) -> int:
        return self.bar_minutes * 60_000


@dataclass
class CleaningReport:
    """What ``clean_candles`` saw and did; every change is counted.

    ``gaps``/``missing_bars`` describe the grid before filling; ``gap_bars_filled`` of them were filled.
    ``zero_volume_bars`` counts real zero-volume bars kept (filled bars are not included).
    ``outside_window_dropped`` is window selection, not a repair: it does not make the report ``changed``.
    """

    rows_in: int = 0
    rows_out: int = 0
    expected_bars: int = 0
    outside_window_dropped: int = 0
    misaligned_dropped: int = 0
    unsorted_fixed: int = 0
    duplicates_dropped: int = 0
    nan_rows_dropped: int = 0
    non_positive_dropped: int = 0
    ohlc_repaired: int = 0
    missing_bars: int = 0
    gap_bars_filled: int = 0
    zero_volume_bars: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (first missing ts, number of bars)
    suspect_jumps: list[int] = field(default_factory=list)  # ts of flagged bars

    @property
    def changed(self) -> bool:
        """True if any in-window row was dropped, reordered, altered or filled in."""
        return any(
            (
                self.misaligned_dropped,
                self.unsorted_fixed,
                self.duplicates_dropped,
                self.nan_rows_dropped,
                self.non_positive_dropped,
                self.ohlc_repaired,
                self.gap_bars_filled,
            )
        )

    def as_metadata(self) -> dict[str, int]:
        meta = {f.name: int(getattr(self, f.name)) for f in fields(self) if f.name not in ("gaps", "suspect_jumps")}
        meta["gaps"] = len(self.gaps)
        meta["suspect_jumps"] = len(self.suspect_jumps)
        return meta


# --------------------------------------------------------------------------------------------- steps


def _cast(frame: pl.DataFrame) -> pl.DataFrame:
    if not isinstance(frame, pl.DataFrame):
        raise TypeError(f"clean_candles expects a polars DataFrame, got {type(frame).__name__}")
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"candles lack columns {missing} (need {list(CANDLE_COLUMNS)})")
    ts = pl.col("ts")
    ts_dtype = frame.schema["ts"]
    if isinstance(ts_dtype, pl.Datetime):
        ts = ts.dt.epoch("ms")
    elif ts_dtype.is_temporal():
        raise ValueError(f"column 'ts' must be epoch ms or a Datetime, got {ts_dtype}")
    elif ts_dtype.is_float():
        ts = ts.fill_nan(None)
        bad = frame.select((ts.is_finite() & (ts != ts.floor())).sum()).item()
        if bad:
            raise ValueError(f"column 'ts' has {bad} non-integral epoch-ms value(s)")
    try:
        return frame.select([ts.cast(pl.Int64, strict=True)] + [pl.col(c).cast(pl.Float64) for c in FLOAT_COLUMNS])
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        raise ValueError(f"candle columns cannot be cast to {dict(CANDLE_SCHEMA)}: {exc}") from exc


def _select_rows(
    frame: pl.DataFrame, start_ms: int, end_ms: int, policy: CleaningPolicy, report: CleaningReport
) -> pl.DataFrame:
    """Steps 2-5: window, alignment, order, duplicates (one pass of counts; operations only where needed)."""
    ts = pl.col("ts")
    in_window = ts.is_not_null() & (ts >= start_ms) & (ts < end_ms)
    kept = in_window & (ts % policy.bar_ms == 0)
    stats = frame.select(
        null_ts=ts.is_null().sum(),
        outside=(ts.is_not_null() & ~in_window).sum(),
        misaligned=(in_window & ~kept).sum(),
        unsorted=(ts.filter(kept).diff() < 0).sum(),
        n_kept=kept.sum(),
        n_unique=ts.filter(kept).n_unique(),
    ).row(0, named=True)
    report.nan_rows_dropped = stats["null_ts"]
    report.outside_window_dropped = stats["outside"]
    report.misaligned_dropped = stats["misaligned"]
    report.unsorted_fixed = stats["unsorted"]
    report.duplicates_dropped = stats["n_kept"] - stats["n_unique"]
    out = frame.filter(kept) if stats["n_kept"] < frame.height else frame
    if report.duplicates_dropped:
        return out.unique(subset="ts", keep="last", maintain_order=True).sort("ts")
    return out.sort("ts") if report.unsorted_fixed else out


def _drop_and_repair(frame: pl.DataFrame, policy: CleaningPolicy, report: CleaningReport) -> pl.DataFrame:
    """Steps 6-8: drop rows with missing or non-positive values, repair broken high/low."""
    finite = pl.all_horizontal([pl.col(c).is_finite() for c in FLOAT_COLUMNS]).fill_null(False)
    positive = pl.all_horizontal([pl.col(c) > 0 for c in PRICE_COLUMNS]) & (pl.col("volume") >= 0)
    broken = ~INVARIANTS["ohlc_consistent"][0]
    stats = frame.select(
        missing=(~finite).sum(), non_positive=(finite & ~positive).sum(), broken=(finite & positive & broken).sum()
    ).row(0, named=True)
    if stats["non_positive"] and not policy.drop_non_positive:
        raise ValueError(
            f"{stats['non_positive']} bar(s) with a price <= 0 or a negative volume (drop_non_positive=False)"
        )
    if stats["broken"] and not policy.repair_ohlc:
        raise ValueError(
            f"{stats['broken']} bar(s) violate high >= max(open, close) or low <= min(open, close) (repair_ohlc=False)"
        )
    report.nan_rows_dropped += stats["missing"]
    report.non_positive_dropped = stats["non_positive"]
    report.ohlc_repaired = stats["broken"]
    if stats["missing"] or stats["non_positive"]:
        frame = frame.filter(finite & positive)
    if stats["broken"]:
        frame = frame.with_columns(
            high=pl.max_horizontal("high", "open", "close"), low=pl.min_horizontal("low", "open", "close")
        )
    return frame


def _grid(start_ms: int, end_ms: int, bar_ms: int) -> tuple[int, int]:
    """First aligned bar open ``>= start_ms`` and the number of aligned bar opens in ``[start_ms, end_ms)``."""
    first = -(-start_ms // bar_ms) * bar_ms
    return first, max(0, -(-(end_ms - first) // bar_ms))


def _gaps_and_fill(
    frame: pl.DataFrame, start_ms: int, end_ms: int, policy: CleaningPolicy, report: CleaningReport
) -> pl.DataFrame:
    """Gaps against the window's bar grid (one vectorized diff) and the optional flat fill."""
    bar_ms = policy.bar_ms
    first, n_expected = _grid(start_ms, end_ms, bar_ms)
    report.expected_bars = n_expected
    ts = frame["ts"].to_numpy()
    bounds = np.concatenate(([first - bar_ms], ts, [first + n_expected * bar_ms]))
    step = np.diff(bounds)
    at = np.flatnonzero(step > bar_ms)
    gap_start = bounds[at] + bar_ms
    gap_len = step[at] // bar_ms - 1
    report.gaps = [(int(s), int(n)) for s, n in zip(gap_start, gap_len, strict=True)]
    report.missing_bars = int(gap_len.sum())
    if policy.fill_gaps == "none" or not len(at):
        return frame
    fillable = (at > 0) & (at < len(ts)) & (gap_len <= policy.max_gap_fill_bars)
    if not fillable.any():
        return frame
    prev_close = frame["close"].to_numpy()[at[fillable] - 1]
    starts, lens = gap_start[fillable], gap_len[fillable]
    filler = (
        pl.DataFrame({"start": starts, "stop": starts + lens * bar_ms, "price": prev_close})
        .select(pl.int_ranges("start", "stop", bar_ms).alias("ts"), "price")
        .explode("ts")
        .select(
            pl.col("ts").cast(pl.Int64),
            *[pl.col("price").alias(c) for c in PRICE_COLUMNS],
            pl.lit(0.0, pl.Float64).alias("volume"),
        )
    )
    report.gap_bars_filled = filler.height
    return pl.concat([frame, filler]).sort("ts")


def _zero_volume_and_jumps(frame: pl.DataFrame, policy: CleaningPolicy) -> tuple[int, list[int]]:
    """Zero-volume bars, and bars whose |log return| exceeds the floor and sigma x a causal robust scale."""
    abs_ret = (pl.col("close") / pl.col("close").shift(1)).log().abs()
    scale = MAD_TO_SIGMA * abs_ret.shift(1).rolling_median(
        window_size=policy.extreme_move_window, min_samples=policy.extreme_move_min_history
    )
    threshold = pl.max_horizontal(pl.lit(policy.extreme_move_floor), policy.extreme_move_sigma * scale)
    zero, jumps = frame.select(
        zero=(pl.col("volume") == 0).sum(), jumps=pl.col("ts").filter((abs_ret > threshold).fill_null(False)).implode()
    ).row(0)
    return int(zero), list(jumps)


# ---------------------------------------------------------------------------------------------- entry


def clean_candles(
    frame: pl.DataFrame, start_ms: int, end_ms: int, policy: CleaningPolicy
) -> tuple[pl.DataFrame, CleaningReport]:
    """Clean the bars with open time in ``[start_ms, end_ms)``; see the module docstring for the steps.

    Returns a frame with exactly ``CANDLE_SCHEMA`` columns that satisfies ``CANDLE_FRAME_SCHEMA``, and the
    report. Raises ``ValueError`` for missing columns, uncastable values, strict-mode refusals and (a bug)
    a cleaned frame that fails the schema.
    """
    if end_ms < start_ms:
        raise ValueError(f"empty window: end_ms {end_ms} < start_ms {start_ms}")
    report = CleaningReport(rows_in=frame.height if isinstance(frame, pl.DataFrame) else 0)
    out = _select_rows(_cast(frame), start_ms, end_ms, policy, report)
    out = _drop_and_repair(out, policy, report)
    report.zero_volume_bars, report.suspect_jumps = _zero_volume_and_jumps(out, policy)
    out = _gaps_and_fill(out, start_ms, end_ms, policy, report)
    report.rows_out = out.height
    if not _invariants_hold(out):
        problems = validate_candles(out) or ["fast invariant check failed"]
        raise ValueError("clean_candles produced an invalid frame (a bug): " + "; ".join(problems))
    return out, report
