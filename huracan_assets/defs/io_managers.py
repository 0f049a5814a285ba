"""IO managers: parquet objects per (asset, symbol, day) on the object store, and registry tables.

Both accept the output of a ranged run as ``{partition_key: value}``. A value may be a frame, or a
``SymbolOutcome``: a status (ok / failed / skipped with a reason), optionally a frame to store anyway
and quality ``detail`` recorded with the key's status in the registry. Identical content is stored once.
"""

import time
from collections import Counter
from datetime import date

import polars as pl
from dagster import ConfigurableIOManager, InputContext, OutputContext, ResourceDependency

from huracan_assets.defs.resources import ObjectStoreResource, RegistryResource
from huracan_assets.names import split_key
from huracan_assets.storage.partitioned import (
    PartitionWindow,
    SymbolOutcome,
    as_outcome,
    clear_outcome,
    data_key,
    put_frame,
    write_outcome,
)


def _asset_name(context: OutputContext | InputContext) -> str:
    return context.asset_key.path[-1]


def _as_mapping(context: OutputContext, obj: object) -> dict[str, object]:
    keys = [str(k) for k in context.asset_partition_keys] if context.has_asset_partitions else []
    if not keys:
        raise TypeError(f"{_asset_name(context)}: the partitioned IO manager needs a partitioned asset")
    if isinstance(obj, dict):
        extra = sorted(set(map(str, obj)) - set(keys))
        if extra:
            raise KeyError(f"{_asset_name(context)} returned keys outside the run: {extra[:5]}")
        return {str(k): v for k, v in obj.items()}
    if len(keys) == 1:
        return {keys[0]: obj}
    raise TypeError(f"{_asset_name(context)} covers {len(keys)} keys and must return {{partition_key: value}}")


class PartitionedParquetIOManager(ConfigurableIOManager):
    """One parquet object per key on the object store; window inputs arrive as a lazy ``PartitionWindow``."""

    object_store: ResourceDependency[ObjectStoreResource]
    registry: ResourceDependency[RegistryResource]
    timeframe: str = "1h"

    def handle_output(self, context: OutputContext, obj: object) -> None:
        started = time.monotonic()
        store = self.object_store.get_store()
        asset = _asset_name(context)
        values = _as_mapping(context, obj)
        counts: Counter[str] = Counter()
        statuses: dict[tuple[str, date], tuple[str, str | None]] = {}
        details: dict[tuple[str, date], dict] = {}
        rows = 0
        digests = {}
        for key in sorted(values):
            if values[key] is None:
                counts["absent"] += 1
                continue
            if not isinstance(values[key], pl.DataFrame | SymbolOutcome):
                raise TypeError(f"{asset} {key}: expected a polars DataFrame, got {type(values[key]).__name__}")
            outcome = as_outcome(values[key])
            day, symbol = split_key(key)
            status_at = (symbol or "*", day)
            if outcome.frame is not None:
                digests[key], changed = put_frame(store, asset, key, outcome.frame)
                counts["written" if changed else "unchanged"] += 1
                rows += outcome.frame.height
            if outcome.status == "ok":
                clear_outcome(store, asset, key)
            else:
                write_outcome(store, asset, key, outcome, context.run_id)
            counts[outcome.status] += 1
            statuses[status_at] = (outcome.status, outcome.reason)
            if outcome.detail is not None:
                details[status_at] = outcome.detail
        if statuses:
            self.registry.get_registry().record_symbol_status(asset, self.timeframe, statuses, context.run_id, details)
        metadata: dict[str, object] = {  # the run's (each key's status is the asset's own metadata)
            "store": store.describe(),
            "run_objects_written": counts["written"],
            "run_objects_unchanged": counts["unchanged"],
            "run_rows_stored": rows,
            "run_store_seconds": round(time.monotonic() - started, 3),  # writing objects and statuses (our code)
        }
        if len(digests) == 1:
            ((only_key, digest),) = digests.items()
            metadata["sha256"] = digest
            metadata["object_key"] = data_key(asset, only_key)
        context.add_output_metadata(metadata)

    def load_input(self, context: InputContext) -> PartitionWindow:
        store = self.object_store.get_store()
        asset = _asset_name(context)
        keys = [str(k) for k in context.asset_partition_keys] if context.has_asset_partitions else []
        return PartitionWindow(store, asset, keys)


class RegistryTableIOManager(ConfigurableIOManager):
    """Relational assets into registry tables, replacing each partition's rows in one transaction.

    The asset names its table in ``metadata={"table": ...}``; the partition columns are ``symbol``,
    ``timeframe`` and the date column (``metadata["date_column"]``, default ``as_of``). Each key's status
    (ok, skipped or failed, with its reason) goes to ``symbol_status`` like the parquet IO manager's; a
    failed or skipped key leaves the rows it had untouched.
    """

    registry: ResourceDependency[RegistryResource]
    timeframe: str = "1h"

    @staticmethod
    def _table(context: OutputContext | InputContext) -> tuple[str, str]:
        meta = context.definition_metadata or {}
        if "table" not in meta:
            raise KeyError(f"{_asset_name(context)} needs metadata={{'table': ...}} for the registry IO manager")
        return str(meta["table"]), str(meta.get("date_column", "as_of"))

    def handle_output(self, context: OutputContext, obj: object) -> None:
        started = time.monotonic()
        table, date_col = self._table(context)
        values = _as_mapping(context, obj)
        partitions, rows = [], []
        statuses: dict[tuple[str, date], tuple[str, str | None]] = {}
        details: dict[tuple[str, date], dict] = {}
        for key, frame in sorted(values.items()):
            if isinstance(frame, SymbolOutcome):
                day, symbol = split_key(key)
                at = (symbol or "*", day)
                statuses[at] = (frame.status, frame.reason)
                if frame.detail is not None:
                    details[at] = frame.detail
                frame = frame.frame if frame.status == "ok" else None  # a failed key keeps its old rows
            elif frame is not None:
                day, symbol = split_key(key)
                statuses[(symbol or "*", day)] = ("ok", None)
            if frame is None:
                continue
            if not isinstance(frame, pl.DataFrame):
                raise TypeError(f"{table} {key}: expected a polars DataFrame, got {type(frame).__name__}")
            day, symbol = split_key(key)
            part = {"symbol": symbol, "timeframe": self.timeframe, date_col: day}
            partitions.append(part)
            rows.extend({**row, **part} for row in frame.to_dicts())
        registry = self.registry.get_registry()
        written = registry.replace_partitions(table, partitions, rows)
        if statuses:
            registry.record_symbol_status(_asset_name(context), self.timeframe, statuses, context.run_id, details)
        context.add_output_metadata({"table": table, "run_partitions": len(partitions), "run_rows": written,
                                     "run_store_seconds": round(time.monotonic() - started, 3)})  # fmt: skip

    def load_input(self, context: InputContext) -> pl.DataFrame:
        table, date_col = self._table(context.upstream_output) if context.upstream_output else ("", "as_of")
        keys = [str(k) for k in context.asset_partition_keys] if context.has_asset_partitions else []
        registry = self.registry.get_registry()
        days = sorted({split_key(k)[0] for k in keys})
        symbols = sorted({s for s in (split_key(k)[1] for k in keys) if s})
        where: dict[str, object] = {"timeframe": self.timeframe, date_col: days}
        if symbols:
            where["symbol"] = symbols
        return pl.DataFrame(registry.select(table, **where), infer_schema_length=None)
