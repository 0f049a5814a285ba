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


def _shard_spans(instance, run_id: str) -> dict[str, tuple[float, float, set[int]]]:
    """Per training step: from the executor's first event for it (its worker process launched) to its success,
    and the process ids its events came from."""
    spans: dict[str, list[float]] = {}
    pids: dict[str, set[int]] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or not (event.step_key or "").startswith("challenger_model.challenger_shard["):
            continue
        spans.setdefault(event.step_key, []).append(record.timestamp)
        if event.event_type == DagsterEventType.STEP_START and event.pid is not None:
            pids.setdefault(event.step_key, set()).add(event.pid)
    return {k: (min(v), max(v), pids.get(k, set())) for k, v in spans.items()}


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
    (a0, a1, a_pids), (b0, b1, b_pids) = spans.values()
    # both steps were in flight at once (the second launched before the first finished), each in its own process;
    # their compute overlaps only when a worker starts faster than the other trains (not guaranteed on a loaded
    # machine with 20-round models), so the launch is what is asserted
    assert max(a0, b0) < min(a1, b1)
    assert a_pids and b_pids and a_pids.isdisjoint(b_pids)
    assert _rows(settings) == single  # byte-identical bundles (content hashes) and the same registry rows
    instance.dispose()
