"""Candle frames: the schema and UTC day arithmetic. Cleaning lives in ``cleaning.py``.

Pure polars. A candle frame has ``ts`` (int64 UTC epoch ms of the bar open), ``open``, ``high``,
``low``, ``close`` and ``volume`` (float64, base units), sorted by ``ts`` with unique timestamps.
"""

from __future__ import annotations

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
