"""Partitions: ``date`` (daily) x ``symbol`` (dynamic, registered by the universe)."""

from __future__ import annotations

from datetime import date, timedelta

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
from huracan_assets.settings import PartitionSettings

SYMBOLS = "symbols"
symbol_partitions = DynamicPartitionsDefinition(name=SYMBOLS)


Span = date | PartitionSettings  # a first date (open end), or the settings' first and last date


def date_partitions(span: Span) -> DailyPartitionsDefinition:
    """Daily UTC dates from the first date; through ``end_date`` when the settings name one (resolved, see
    ``PartitionSettings.resolved``), else up to yesterday as the clock moves."""
    if isinstance(span, date):
        return DailyPartitionsDefinition(start_date=span.isoformat(), timezone="UTC")
    end = span.end_date
    if end == "data":
        raise ValueError("partitions.end_date 'data' must be resolved before the definitions are built")
    stop = None if end is None else (end + timedelta(days=1)).isoformat()  # Dagster's end date is exclusive
    return DailyPartitionsDefinition(start_date=span.start_date.isoformat(), end_date=stop, timezone="UTC")


def symbol_day_partitions(start: Span) -> MultiPartitionsDefinition:
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


def symbol_day_asset(start: Span, **kwargs):
    """``@asset`` with the settings every symbol x day asset shares: the date x symbol partitions, one run per
    backfill (all keys of a date in one step), the parquet IO manager and the symbol x day lane tag."""
    return asset(**_symbol_day_defaults(start, kwargs))


def symbol_day_multi_asset(start: Span, **kwargs):
    """``@multi_asset`` with the same shared settings (the outputs name their IO managers)."""
    return multi_asset(**_symbol_day_defaults(start, kwargs, io_manager=False))


def _symbol_day_defaults(start: Span, kwargs: dict, io_manager: bool = True) -> dict:
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
