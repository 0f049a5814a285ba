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
    # meta_weights[D] moves the state of D-1 and charts the days before it: never its own date
    assert snap["meta_weights"]["mappings"]["meta_weights"] == "date:window[-14,-1] symbol:identity"


def _date_partitions(defs):
    """The date partitions of a day asset and the date dimension of a symbol x day asset."""
    day = defs.resolve_assets_def("universe").partitions_def
    return day, defs.resolve_assets_def("candles").partitions_def.get_partitions_def_for_dimension("date")


def test_local_dates_end_with_the_data_and_production_runs_to_yesterday(home, test_data_dir):
    """Locally the catalog spans the candles' days, not every day since start_date up to today; production's
    dates keep moving with the clock. An explicit end date is inclusive."""
    from huracan_assets.core.market_data.candles import ms_to_date
    from huracan_assets.exchange.files import FilesExchange

    settings = load_settings("local", data_dir=test_data_dir)
    last = ms_to_date(FilesExchange(test_data_dir, settings.timeframe).coverage()[1])
    for parts in _date_partitions(build_definitions(settings)):
        keys = parts.get_partition_keys()
        assert keys[0] == settings.partitions.start_date.isoformat() and keys[-1] == last.isoformat()
    fixed = load_settings(
        "local", data_dir=test_data_dir, partitions={"start_date": "2024-03-01", "end_date": "2024-03-05"}
    )
    assert _date_partitions(build_definitions(fixed))[0].get_partition_keys()[-1] == "2024-03-05"
    prod = build_definitions(load_settings("prod"))
    assert prod.resolve_assets_def("universe").partitions_def.end is None  # open: up to yesterday


def test_cli_runs_carry_the_code_locations_repository_label():
    """The runs the CLI starts (execute_in_process) carry the label the UI lists a job's runs by, naming the
    location of both workspace files, so the job pages and the timeline show them."""
    import yaml
    from dagster._core.storage.tags import REPOSITORY_LABEL_TAG as DAGSTER_TAG

    from huracan_assets.names import LOCATION_NAME, REPOSITORY_LABEL, REPOSITORY_LABEL_TAG
    from huracan_assets.runner import CLI_TAGS

    root = Path(__file__).parents[2]
    for workspace in ("workspace.yaml", "docker/workspace.docker.yaml"):
        entries = yaml.safe_load((root / workspace).read_text())["load_from"]
        assert [next(iter(e.values()))["location_name"] for e in entries] == [LOCATION_NAME], workspace
    repository = build_definitions(load_settings("local")).get_repository_def().name
    assert CLI_TAGS[DAGSTER_TAG] == REPOSITORY_LABEL == f"{repository}@{LOCATION_NAME}"
    assert REPOSITORY_LABEL_TAG == DAGSTER_TAG
