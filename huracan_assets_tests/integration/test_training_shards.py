"""The date's training spread over Dagster steps (``challenger_shard``), on the replay history's real candles: with
the multiprocess executor and two workers, the two training steps run at the same time in their own processes
(read from the run's event log), and the bundles and registry rows are identical to one step in one process."""

from __future__ import annotations

import pytest
from dagster import AssetKey, DagsterEventType

from huracan_assets.defs.partitions import SYMBOLS, range_tags
from huracan_assets.registry.client import Registry, sqlite_url
from huracan_assets.runner import WorkerDefinitions
from huracan_assets_tests.defs.helpers import defs_for
from huracan_assets_tests.integration.history import LAST, history_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("replay_history")]
TRAINING = [AssetKey("challenger_model"), AssetKey("walk_forward_report")]


def _rows(settings) -> tuple[list, list]:
    registry = Registry(sqlite_url(settings.sqlite_path))
    models = sorted((r["model_id"], r["sha256"], r["s3_path"]) for r in registry.select("models", as_of=[LAST]))
    metrics = sorted(
        tuple(str(r[c]) for c in ("model_id", "window", "auc", "net_bps", "n_trades", "dsr", "canaries_passed"))
        for r in registry.select("model_metrics", as_of=[LAST])
    )
    registry.dispose()
    return models, metrics


def _shard_spans(instance, run_id: str) -> dict[str, tuple[float, float]]:
    spans: dict[str, list[float]] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or not (event.step_key or "").startswith("challenger_model.challenger_shard["):
            continue
        if event.event_type in (DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS):
            spans.setdefault(event.step_key, []).append(record.timestamp)
    return {k: (min(v), max(v)) for k, v in spans.items()}


def test_two_workers_train_two_shards_at_once_and_give_the_same_bundles(replay_history):
    settings = history_settings(replay_history.home)
    instance = replay_history.instance()
    tags = range_tags(LAST, LAST, instance.get_dynamic_partitions(SYMBOLS))
    one = (
        defs_for(settings)
        .resolve_job_def("symbol_day_job")
        .execute_in_process(instance=instance, tags=tags, asset_selection=TRAINING)
    )
    assert one.success
    single = _rows(settings)
    assert len(single[0]) >= 4  # the history's coins got models
    assert len(_shard_spans(instance, one.run_id)) == 1  # one process, one training step

    execution = settings.execution.model_copy(update={"executor": "multiprocess", "workers": 2})
    workers = WorkerDefinitions(settings.model_copy(update={"execution": execution}))
    try:
        two = workers.execute("symbol_day_job", instance, tags, None, asset_selection=TRAINING)
    finally:
        workers.close()
    assert two.success, [e.message for e in two.all_events if e.is_failure]
    spans = _shard_spans(instance, two.run_id)
    assert sorted(spans) == ["challenger_model.challenger_shard[shard_0]", "challenger_model.challenger_shard[shard_1]"]
    (a0, a1), (b0, b1) = spans.values()
    assert max(a0, b0) < min(a1, b1)  # the two training steps overlapped in time
    assert _rows(settings) == single  # byte-identical bundles (content hashes) and the same registry rows
    instance.dispose()
