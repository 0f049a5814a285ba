"""The code location loads, in both environments, and the asset graph matches its snapshot."""

import json
import os
from pathlib import Path

from dagster import AssetKey, DynamicPartitionsDefinition, MultiPartitionsDefinition

from huracan_assets.defs.build import build_definitions
from huracan_assets.settings import load_settings

SNAPSHOT = Path(__file__).with_name("asset_graph_snapshot.json")


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
    snap = graph_snapshot(build_definitions(load_settings("local")))
    if os.environ.get("HURACAN_UPDATE_SNAPSHOTS") or not SNAPSHOT.exists():
        SNAPSHOT.write_text(json.dumps(snap, indent=2, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert snap == expected, "asset graph changed: rerun with HURACAN_UPDATE_SNAPSHOTS=1 if deliberate"
