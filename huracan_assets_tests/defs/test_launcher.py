"""MonitoredRunLauncher's health check, where no code server answers (the fault suite covers a server that answers
without the run, and one that runs it: huracan_assets_tests/faults/test_faults.py)."""

import json
import time
import uuid

from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import GRPC_INFO_TAG

from huracan_assets.defs.launcher import MonitoredRunLauncher
from huracan_assets_tests.conftest import _free_port


def _run(instance: DagsterInstance, tags: dict[str, str]) -> DagsterRun:
    run = DagsterRun(job_name="symbol_day_job", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED, tags=tags)
    return instance.add_run(run)


def _launcher(instance: DagsterInstance, grace: int) -> MonitoredRunLauncher:
    launcher = MonitoredRunLauncher(unreachable_grace_seconds=grace)
    launcher.register_instance(instance)
    return launcher


def test_a_server_that_does_not_answer_fails_the_run_after_the_grace_only():
    with DagsterInstance.ephemeral() as instance:
        run = _run(instance, {GRPC_INFO_TAG: json.dumps({"host": "127.0.0.1", "port": _free_port()})})  # nobody there
        patient = _launcher(instance, grace=3600)
        first = patient.check_run_worker_health(run)
        assert first.status == WorkerStatus.RUNNING and "unreachable" in first.msg  # a restart may be under way
        impatient = _launcher(instance, grace=1)
        assert impatient.check_run_worker_health(run).status == WorkerStatus.RUNNING  # the first miss starts the clock
        time.sleep(1.1)
        verdict = impatient.check_run_worker_health(run)
        assert verdict.status == WorkerStatus.FAILED and "unreachable for 1 s" in verdict.msg


def test_a_run_without_a_recorded_server_is_unknown_and_the_launcher_supports_monitoring():
    with DagsterInstance.ephemeral() as instance:
        launcher = _launcher(instance, grace=60)
        assert launcher.supports_check_run_worker_health
        assert launcher.check_run_worker_health(_run(instance, {})).status == WorkerStatus.UNKNOWN
