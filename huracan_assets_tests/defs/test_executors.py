"""The executor and the training fan-out come from the settings: in process by default, Dagster's multiprocess
executor with ``workers`` steps at once and the cores shared among them, the date's coins dealt into shards, and
a run-level timeout on the date's run."""

from __future__ import annotations

from huracan_assets.defs.automation import MAX_RUNTIME_TAG
from huracan_assets.defs.build import build_definitions
from huracan_assets.defs.models import shard_keys, training_shards
from huracan_assets_tests.defs.helpers import local_settings


def _with_execution(settings, **execution):
    return settings.model_copy(update={"execution": settings.execution.model_copy(update=execution)})


def test_in_process_by_default_and_multiprocess_with_the_cores_shared(test_data_dir):
    settings = local_settings(test_data_dir)
    e = settings.execution
    assert (e.executor, e.workers, training_shards(settings)) == ("in_process", 1, 1)
    assert e.thread_budget == e.cores
    assert build_definitions(settings).resolve_job_def("symbol_day_job").executor_def.name == "in_process"

    two = _with_execution(settings, executor="multiprocess", workers=2)
    assert training_shards(two) == 2 and two.execution.thread_budget == max(1, e.cores // 2)
    job = build_definitions(two).resolve_job_def("symbol_day_job")
    assert job.executor_def.name == "huracan_multiprocess"
    assert training_shards(_with_execution(two, training_shards=5)) == 5
    assert _with_execution(settings, threads=1, executor="multiprocess", workers=2).execution.thread_budget == 1


def test_the_coins_are_dealt_once_each_into_balanced_shards():
    keys = [f"2024-08-0{d}|{s}" for d in (7, 8) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "TONUSDT")]
    shards = shard_keys(list(reversed(keys)), 3)
    assert sorted(k for shard in shards for k in shard) == sorted(keys)  # every key once
    assert [len(s) for s in shards] == [4, 3, 3]
    assert shards == shard_keys(keys, 3)  # the same split whatever the input order
    assert shard_keys(keys[:2], 8) == [(keys[0],), (keys[1],)]  # never an empty shard
    assert shard_keys([], 4) == [()]


def test_the_dates_run_is_bounded_by_run_monitoring(test_data_dir):
    settings = local_settings(test_data_dir)
    job = build_definitions(settings).resolve_job_def("symbol_day_job")
    assert job.tags[MAX_RUNTIME_TAG] == str(settings.execution.run_timeout_seconds) == "21600"
    unbounded = build_definitions(_with_execution(settings, run_timeout_seconds=0)).resolve_job_def("symbol_day_job")
    assert MAX_RUNTIME_TAG not in unbounded.tags
