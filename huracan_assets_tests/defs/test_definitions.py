"""The code location loads, in both environments, and the asset graph matches its snapshot."""

import json
import os
from pathlib import Path

from dagster import (
    AssetKey,
    DynamicPartitionsDefinition,
    IdentityPartitionMapping,
    MultiPartitionMapping,
    MultiPartitionsDefinition,
    MultiToSingleDimensionPartitionMapping,
    TimeWindowPartitionMapping,
)

from huracan_assets.defs.build import build_definitions
from huracan_assets.settings import load_settings

SNAPSHOT = Path(__file__).with_name("asset_graph_snapshot.json")


def describe_mapping(mapping) -> str:
    """A partition mapping as a short, stable string (offsets in days for time windows)."""
    if isinstance(mapping, MultiPartitionMapping):
        parts = mapping.downstream_mappings_by_upstream_dimension
        return " ".join(f"{dim}:{describe_mapping(parts[dim].partition_mapping)}" for dim in sorted(parts))
    if isinstance(mapping, TimeWindowPartitionMapping):
        return f"window[{mapping.start_offset},{mapping.end_offset}]"
    if isinstance(mapping, MultiToSingleDimensionPartitionMapping):
        return f"dimension({mapping.partition_dimension_name})"
    if isinstance(mapping, IdentityPartitionMapping):
        return "identity"
    return type(mapping).__name__


def graph_snapshot(defs) -> dict:
    graph = defs.resolve_asset_graph()
    out = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        pdef = node.partitions_def
        if isinstance(pdef, MultiPartitionsDefinition):
            kind = "symbol_day(" + ",".join(d.name for d in pdef.partitions_defs) + ")"
            assert isinstance(pdef.get_partitions_def_for_dimension("symbol"), DynamicPartitionsDefinition)
        else:
            kind = type(pdef).__name__ if pdef else None
        out[key.to_user_string()] = {
            "partitions": kind,
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            # which partitions of each parent a partition reads: a window that reaches one day too far is
            # look-ahead, so the mappings are part of the snapshot
            "mappings": {
                p.to_user_string(): describe_mapping(graph.get_partition_mapping(key, p))
                for p in sorted(node.parent_keys, key=lambda k: k.to_user_string())
                if graph.get(p).partitions_def is not None and pdef is not None
            },
            "group": node.group_name,
            "checks": sorted(c.name for c in node.check_keys),
            "backfill_policy": str(node.backfill_policy.policy_type.value) if node.backfill_policy else None,
        }
    return out


def test_definitions_module_loads(home):
    import importlib

    import huracan_assets.definitions as module

    module = importlib.reload(module)
    graph = module.defs.resolve_asset_graph()
    assert AssetKey("candles") in graph.get_all_asset_keys()
    assert {j for j in ("daily_prelude_job", "symbol_day_job", "daily_summary_job") if module.defs.resolve_job_def(j)}


def test_prod_definitions_load_with_secrets_as_env_vars_only(home, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "HURACAN_REGISTRY_URL", "HURACAN_S3_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    defs = build_definitions(load_settings("prod"))
    resources = defs.resources
    store = resources["object_store"]
    # the values are EnvVar references, resolved only at run time: nothing secret is in the definitions
    assert type(store.access_key_id).__name__ == "EnvVar" and store.access_key_id.env_var_name == "AWS_ACCESS_KEY_ID"
    assert resources["registry"].url.env_var_name == "HURACAN_REGISTRY_URL"
    assert store.kind == "s3"


def test_asset_graph_matches_snapshot(home):
    """Keys, deps, partition mappings, groups, checks and backfill policies, against the committed snapshot.

    The snapshot is only rewritten on request (``HURACAN_UPDATE_SNAPSHOTS=1``) and never under CI: a missing or
    different snapshot fails."""
    snap = graph_snapshot(build_definitions(load_settings("local")))
    if os.environ.get("HURACAN_UPDATE_SNAPSHOTS") and not os.environ.get("CI"):
        SNAPSHOT.write_text(json.dumps(snap, indent=2, sort_keys=True) + "\n")
    assert SNAPSHOT.exists(), f"{SNAPSHOT.name} is missing: create it with HURACAN_UPDATE_SNAPSHOTS=1"
    expected = json.loads(SNAPSHOT.read_text())
    assert snap == expected, "asset graph changed: rerun with HURACAN_UPDATE_SNAPSHOTS=1 if deliberate"


def test_snapshot_names_the_window_of_each_input(home):
    """The snapshot sees a look-ahead window: engine_signals[D] reads labels up to D-1, never labels[D]."""
    snap = graph_snapshot(build_definitions(load_settings("local")))
    labels = snap["engine_signals"]["mappings"]["labels"]
    assert labels.startswith("date:window[") and labels.endswith(",-1] symbol:identity"), labels
    assert snap["meta_weights"]["mappings"]["meta_weights"] == "date:window[-1,-1] symbol:identity"
