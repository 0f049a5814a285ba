"""The Engine's vocabulary, in one place and without Dagster: asset names, partition keys, statuses and run tags.

A symbol x day partition key is ``"YYYY-MM-DD|SYMBOL"`` (:class:`SymbolDay`); a day-only key is ``"YYYY-MM-DD"``.
Build and split keys only through :class:`SymbolDay` (or ``defs/partitions.py``'s ``join_key`` / ``split_key``,
which use it), never by hand.
"""

from __future__ import annotations

from datetime import date
from typing import Literal, NamedTuple

# ------------------------------------------------------------------------------------------------- statuses
Status = Literal["ok", "failed", "skipped"]  # what one key of an asset produced (storage/partitioned.py)
KeyState = Literal["ok", "failed", "skipped", "missing"]  # what a reader finds for a key ("missing": never ran)
STATUSES: tuple[Status, ...] = ("ok", "failed", "skipped")


# ---------------------------------------------------------------------------------------------------- keys
class SymbolDay(NamedTuple):
    """One symbol x day partition."""

    day: date
    symbol: str

    @property
    def key(self) -> str:
        return f"{self.day.isoformat()}|{self.symbol}"

    def __str__(self) -> str:
        return self.key


def split_key(key: str) -> tuple[date, str | None]:
    """``"2024-01-03|BTCUSDT"`` -> (date, "BTCUSDT"); ``"2024-01-03"`` -> (date, None)."""
    day, _, symbol = str(key).partition("|")
    return date.fromisoformat(day), (symbol or None)


def join_key(day: date, symbol: str) -> str:
    return SymbolDay(day, symbol).key


# -------------------------------------------------------------------------------------------------- assets
UNIVERSE = "universe"
REFERENCE_CANDLES = "reference_candles"
CANDLES = "candles"
SPREADS = "spreads"
FEATURES = "features"
LABELS = "labels"
REGIMES = "regimes"
META_WEIGHTS = "meta_weights"
ENGINE_SIGNALS = "engine_signals"
CHALLENGER_MODEL = "challenger_model"
WALK_FORWARD_REPORT = "walk_forward_report"
SHADOW_TRADES = "shadow_trades"
CHAMPION_POINTER = "champion_pointer"
DAILY_EQUITY = "daily_equity"
PARAM_POSTERIORS = "param_posteriors"
DAILY_SUMMARY = "daily_summary"

PRELUDE_ASSETS = (UNIVERSE, REFERENCE_CANDLES)  # day-only, before the symbol x day run
# the data part of the symbol x day graph: history backfills that only feed the windows run these
DATA_ASSETS = (CANDLES, SPREADS, FEATURES, LABELS, REGIMES, META_WEIGHTS, ENGINE_SIGNALS)
TRAINING_ASSETS = (CHALLENGER_MODEL, WALK_FORWARD_REPORT)
CHAMPION_ASSETS = (SHADOW_TRADES, CHAMPION_POINTER, DAILY_EQUITY)
PARAM_ASSETS = (PARAM_POSTERIORS,)  # the parameter controller learns from the day's shadow pass
# the whole symbol x day graph, in order; the per-symbol "done" state of a date is the last one reached
SYMBOL_DAY_ASSETS = DATA_ASSETS + TRAINING_ASSETS + CHAMPION_ASSETS + PARAM_ASSETS
SUMMARY_ASSETS = (DAILY_SUMMARY,)

# ---------------------------------------------------------------------------------------------------- tags
# the code location's name in workspace.yaml and docker/workspace.docker.yaml; runs the CLI starts carry it as the
# UI's repository label (``<repository>@<location>``), so the job pages and the timeline list them with the rest
LOCATION_NAME = "huracan_assets"
REPOSITORY_LABEL = f"__repository__@{LOCATION_NAME}"
REPOSITORY_LABEL_TAG = ".dagster/repository"  # the tag Dagster's UI filters a job's runs by
LANE_TAG = "huracan/lane"  # the run coordinator's lanes (dagster.yaml): one run per lane at a time
DATE_TAG = "huracan/date"
DRIVER_TAG = "huracan/driver"
ACCELERATOR_TAG = "huracan/accelerator"
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
SYMBOL_DAY_LANE = "symbol_day"
SYMBOL_DAY_TAG = {LANE_TAG: SYMBOL_DAY_LANE}  # op tags of every symbol x day step
