"""Partitions: ``date`` (daily) x ``symbol`` (dynamic, registered by the universe)."""

from __future__ import annotations

from datetime import date

from dagster import (
    DailyPartitionsDefinition,
    DimensionPartitionMapping,
    DynamicPartitionsDefinition,
    IdentityPartitionMapping,
    MultiPartitionMapping,
    MultiPartitionsDefinition,
    MultiToSingleDimensionPartitionMapping,
    TimeWindowPartitionMapping,
)

SYMBOLS = "symbols"
symbol_partitions = DynamicPartitionsDefinition(name=SYMBOLS)

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def date_partitions(start: date) -> DailyPartitionsDefinition:
    return DailyPartitionsDefinition(start_date=start.isoformat(), timezone="UTC")


def symbol_day_partitions(start: date) -> MultiPartitionsDefinition:
    return MultiPartitionsDefinition({"date": date_partitions(start), "symbol": symbol_partitions})


def window_mapping(days_before: int, days_after: int = 0) -> MultiPartitionMapping:
    """Same symbol, dates ``[D - days_before, D + days_after]``."""
    return MultiPartitionMapping(
        {
            "date": DimensionPartitionMapping(
                "date", TimeWindowPartitionMapping(start_offset=-days_before, end_offset=days_after)
            ),
            "symbol": DimensionPartitionMapping("symbol", IdentityPartitionMapping()),
        }
    )


def day_of_symbol_day() -> MultiToSingleDimensionPartitionMapping:
    """A symbol x day asset reading a day-only asset of the same date."""
    return MultiToSingleDimensionPartitionMapping(partition_dimension_name="date")


def split_key(key: str) -> tuple[date, str | None]:
    """``"2024-01-03|BTCUSDT"`` -> (date, "BTCUSDT"); ``"2024-01-03"`` -> (date, None)."""
    day, _, symbol = str(key).partition("|")
    return date.fromisoformat(day), (symbol or None)


def join_key(day: date, symbol: str) -> str:
    return f"{day.isoformat()}|{symbol}"


def range_tags(first_day: date, last_day: date, symbols: list[str]) -> dict[str, str]:
    """Tags of a ranged run: the rectangle of dates x (registered-order) symbol range."""
    if not symbols:
        raise ValueError("a ranged run needs at least one symbol")
    return {RANGE_START_TAG: join_key(first_day, symbols[0]), RANGE_END_TAG: join_key(last_day, symbols[-1])}
