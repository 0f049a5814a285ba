"""MonitoredRunLauncher's health check, where no code server answers (the fault suite covers a server that answers
without the run, and one that runs it: huracan_assets_tests/faults/test_faults.py)."""

import json
import signal
import time
import uuid

from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import GRPC_INFO_TAG

from huracan_assets.defs.launcher import MonitoredRunLauncher
from huracan_assets_tests.conftest import _free_port, _kill_group


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


def _serve(tmp_path, *command: str):
    """A code server of ``command`` on a free port, serving a one-asset definitions file: (process, port)."""
    import subprocess
    import sys
    from pathlib import Path

    from dagster._grpc.client import DagsterGrpcClient

    (tmp_path / "tiny.py").write_text("from dagster import Definitions, asset\n\n@asset\ndef one():\n    return 1\n\n"
                                      "defs = Definitions(assets=[one])\n")  # fmt: skip
    port = _free_port()
    args = [str(Path(sys.executable).parent / "dagster"), *command, "-f", str(tmp_path / "tiny.py"), "-h",
            "127.0.0.1", "-p", str(port)]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            DagsterGrpcClient(port=port, host="127.0.0.1").ping("x")
            return proc, port
        except Exception:
            time.sleep(0.3)
    _kill_group(proc, signal.SIGKILL)
    raise RuntimeError(f"{command} did not come up")


def test_a_server_that_answers_without_the_run_fails_it_and_a_proxy_is_never_judged(tmp_path):
    """``dagster api grpc`` lists its runs: a run it does not execute is FAILED at once. The ``dagster code-server``
    proxy does not list them: its runs stay RUNNING (the deploy serves the location with ``dagster api grpc``)."""
    with DagsterInstance.ephemeral() as instance:
        launcher = _launcher(instance, grace=0)
        cases = (
            (("api", "grpc"), WorkerStatus.FAILED, "is not executing the run"),
            (("code-server", "start"), WorkerStatus.RUNNING, "does not list its runs"),
        )
        for command, status, why in cases:
            proc, port = _serve(tmp_path, *command)
            try:
                run = _run(instance, {GRPC_INFO_TAG: json.dumps({"host": "127.0.0.1", "port": port})})
                verdict = launcher.check_run_worker_health(run)
                assert verdict.status == status and why in verdict.msg, (command, verdict)
            finally:
                _kill_group(proc, signal.SIGKILL)  # the proxy and the server it started
                proc.wait(timeout=30)
