"""Per-key metadata in a ranged run: each key's materialization carries its own, through the fast path."""

import pytest
from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    DagsterInstance,
    StaticPartitionsDefinition,
    asset,
    materialize,
)

from huracan_assets.defs.per_symbol import _step_context, add_partition_metadata

KEYS = ["a", "b", "c"]
SEEN = {}


@asset(partitions_def=StaticPartitionsDefinition(KEYS), backfill_policy=BackfillPolicy.single_run())
def lettered(context: AssetExecutionContext) -> None:
    SEEN["fast"] = _step_context(context) is not None
    with pytest.raises(ValueError, match="does not target"):
        add_partition_metadata(context, {"zzz": {"n": 0}})
    add_partition_metadata(context, {k: {"n": i, "key": k} for i, k in enumerate(KEYS)})
    add_partition_metadata(context, {"b": {"extra": True}})  # merged into b's, not replacing it
    context.add_output_metadata({"run_n": 3})
    return None


def test_per_key_metadata_fast_path():
    """The step's metadata accumulator (Dagster's internal API, pinned) is where it was: a Dagster upgrade that
    moves it fails here instead of silently taking the slow public path; each key gets its own metadata."""
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [lettered],
            instance=instance,
            tags={"dagster/asset_partition_range_start": "a", "dagster/asset_partition_range_end": "c"},
        )
    assert result.success and SEEN["fast"]
    meta = {e.partition: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert sorted(meta) == KEYS
    for i, key in enumerate(KEYS):
        assert meta[key]["n"].value == i and meta[key]["key"].value == key and meta[key]["run_n"].value == 3
    assert meta["b"]["extra"].value is True and "extra" not in meta["a"]
