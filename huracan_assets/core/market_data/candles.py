"""Candle frames: the schema, UTC day arithmetic and the minimal normalization of D's bars.

Pure polars. A candle frame has ``ts`` (int64 UTC epoch ms of the bar open), ``open``, ``high``,
``low``, ``close`` and ``volume`` (float64, base units), sorted by ``ts`` with unique timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import polars as pl

CANDLE_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Int64,
    "open": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "volume": pl.Float64,
}
CANDLE_COLUMNS = tuple(CANDLE_SCHEMA)
DAY_MS = 86_400_000
TIMEFRAME_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "1d": 1440}


def day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def day_bounds_ms(day: date) -> tuple[int, int]:
    """``[start, end)`` of the UTC day in epoch ms."""
    start = day_start_ms(day)
    return start, start + DAY_MS


def ms_to_date(ts_ms: int) -> date:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).date()


def bars_per_day(bar_minutes: int) -> int:
    if 1440 % bar_minutes:
        raise ValueError(f"bar size {bar_minutes} min does not divide a day")
    return 1440 // bar_minutes


def date_range(start: date, end: date) -> list[date]:
    """Inclusive list of dates from ``start`` to ``end``."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def empty_candles() -> pl.DataFrame:
    return pl.DataFrame(schema=CANDLE_SCHEMA)


@dataclass
class DayReport:
    """What normalization saw and did; every change is counted."""

    rows_in: int = 0
    rows_out: int = 0
    duplicates_dropped: int = 0
    outside_day_dropped: int = 0
    misaligned_dropped: int = 0
    expected_bars: int = 0
    missing_bars: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (first missing ts, count)

    def as_metadata(self) -> dict[str, int]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "duplicates_dropped": self.duplicates_dropped,
            "outside_day_dropped": self.outside_day_dropped,
            "misaligned_dropped": self.misaligned_dropped,
            "expected_bars": self.expected_bars,
            "missing_bars": self.missing_bars,
        }


def normalize_day(frame: pl.DataFrame, day: date, bar_minutes: int) -> tuple[pl.DataFrame, DayReport]:
    """Cast, keep D's aligned bars, sort, de-duplicate (last copy wins) and report gaps.

    Gaps are reported, never filled. Issue "Market data" extends this into the full cleaner.
    """
    missing_cols = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing_cols:
        raise ValueError(f"candles lack columns {missing_cols}")
    start, end = day_bounds_ms(day)
    bar_ms = bar_minutes * 60_000
    report = DayReport(rows_in=frame.height, expected_bars=bars_per_day(bar_minutes))
    out = frame.select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])
    inside = out.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
    report.outside_day_dropped = out.height - inside.height
    aligned = inside.filter(pl.col("ts") % bar_ms == 0)
    report.misaligned_dropped = inside.height - aligned.height
    deduped = aligned.unique(subset="ts", keep="last", maintain_order=True).sort("ts")
    report.duplicates_dropped = aligned.height - deduped.height
    report.rows_out = deduped.height
    report.missing_bars = report.expected_bars - deduped.height
    if report.missing_bars:
        present = set(deduped["ts"].to_list())
        run_start, run_len = None, 0
        for ts in range(start, end, bar_ms):
            if ts in present:
                if run_start is not None:
                    report.gaps.append((run_start, run_len))
                run_start, run_len = None, 0
            else:
                run_start = ts if run_start is None else run_start
                run_len += 1
        if run_start is not None:
            report.gaps.append((run_start, run_len))
    return deduped, report
