"""IO managers: parquet objects per (asset, symbol, day) on the object store, and registry tables.

Both accept the output of a ranged run as ``{partition_key: value}``. A value may be a frame, or a
``SymbolOutcome`` (failed / skipped with a reason) which is recorded per key instead of data.
"""

from collections import Counter
from datetime import date

import polars as pl
from dagster import ConfigurableIOManager, InputContext, OutputContext, ResourceDependency

from huracan_assets.defs.resources import ObjectStoreResource, RegistryResource
from huracan_assets.storage.partitioned import (
    PartitionWindow,
    SymbolOutcome,
    data_key,
    split,
    write_frame,
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
        store = self.object_store.get_store()
        asset = _asset_name(context)
        values = _as_mapping(context, obj)
        counts: Counter[str] = Counter()
        statuses: dict[tuple[str, date], tuple[str, str | None]] = {}
        written_bytes_rows = 0
        digests = {}
        for key in sorted(values):
            value = values[key]
            day, symbol = split(key)
            if value is None:
                counts["absent"] += 1
                continue
            if isinstance(value, SymbolOutcome):
                write_outcome(store, asset, key, value, context.run_id)
                counts[value.status] += 1
                statuses[(symbol or "*", date.fromisoformat(day))] = (value.status, value.reason)
                continue
            if not isinstance(value, pl.DataFrame):
                raise TypeError(f"{asset} {key}: expected a polars DataFrame, got {type(value).__name__}")
            digests[key] = write_frame(store, asset, key, value)
            written_bytes_rows += value.height
            counts["ok"] += 1
            statuses[(symbol or "*", date.fromisoformat(day))] = ("ok", None)
        if statuses:
            self.registry.get_registry().record_symbol_status(asset, self.timeframe, statuses, context.run_id)
        metadata: dict[str, object] = {
            "store": store.describe(),
            "keys_written": counts["ok"],
            "keys_failed": counts["failed"],
            "keys_skipped": counts["skipped"],
            "rows_written": written_bytes_rows,
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
    ``timeframe`` and the date column (``metadata["date_column"]``, default ``as_of``).
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
        table, date_col = self._table(context)
        values = _as_mapping(context, obj)
        partitions, rows = [], []
        for key, frame in sorted(values.items()):
            if frame is None or isinstance(frame, SymbolOutcome):
                continue
            if not isinstance(frame, pl.DataFrame):
                raise TypeError(f"{table} {key}: expected a polars DataFrame, got {type(frame).__name__}")
            day, symbol = split(key)
            part = {"symbol": symbol, "timeframe": self.timeframe, date_col: date.fromisoformat(day)}
            partitions.append(part)
            rows.extend({**row, **part} for row in frame.to_dicts())
        written = self.registry.get_registry().replace_partitions(table, partitions, rows)
        context.add_output_metadata({"table": table, "partitions": len(partitions), "rows": written})

    def load_input(self, context: InputContext) -> pl.DataFrame:
        table, date_col = self._table(context.upstream_output) if context.upstream_output else ("", "as_of")
        keys = [str(k) for k in context.asset_partition_keys] if context.has_asset_partitions else []
        registry = self.registry.get_registry()
        days = sorted({date.fromisoformat(split(k)[0]) for k in keys})
        symbols = sorted({s for s in (split(k)[1] for k in keys) if s})
        where: dict[str, object] = {"timeframe": self.timeframe, date_col: days}
        if symbols:
            where["symbol"] = symbols
        return pl.DataFrame(registry.select(table, **where), infer_schema_length=None)
