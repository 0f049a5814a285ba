"""Partitions: ``date`` (daily) x ``symbol`` (dynamic, registered by the universe)."""

from __future__ import annotations

from datetime import date

from dagster import (
    BackfillPolicy,
    DailyPartitionsDefinition,
    DimensionPartitionMapping,
    DynamicPartitionsDefinition,
    IdentityPartitionMapping,
    MultiPartitionMapping,
    MultiPartitionsDefinition,
    MultiToSingleDimensionPartitionMapping,
    TimeWindowPartitionMapping,
    asset,
    multi_asset,
)

from huracan_assets.names import RANGE_END_TAG, RANGE_START_TAG, SYMBOL_DAY_TAG, join_key

SYMBOLS = "symbols"
symbol_partitions = DynamicPartitionsDefinition(name=SYMBOLS)


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


def symbol_day_asset(start: date, **kwargs):
    """``@asset`` with the settings every symbol x day asset shares: the date x symbol partitions, one run per
    backfill (all keys of a date in one step), the parquet IO manager and the symbol x day lane tag."""
    return asset(**_symbol_day_defaults(start, kwargs))


def symbol_day_multi_asset(start: date, **kwargs):
    """``@multi_asset`` with the same shared settings (the outputs name their IO managers)."""
    return multi_asset(**_symbol_day_defaults(start, kwargs, io_manager=False))


def _symbol_day_defaults(start: date, kwargs: dict, io_manager: bool = True) -> dict:
    shared = {
        "partitions_def": symbol_day_partitions(start),
        "backfill_policy": BackfillPolicy.single_run(),
        "op_tags": SYMBOL_DAY_TAG,
    }
    if io_manager:
        shared["io_manager_key"] = "parquet_io_manager"
    return {**shared, **kwargs}


def range_tags(first_day: date, last_day: date, symbols: list[str]) -> dict[str, str]:
    """Tags of a ranged run: the rectangle of dates x (registered-order) symbol range."""
    if not symbols:
        raise ValueError("a ranged run needs at least one symbol")
    return {RANGE_START_TAG: join_key(first_day, symbols[0]), RANGE_END_TAG: join_key(last_day, symbols[-1])}
