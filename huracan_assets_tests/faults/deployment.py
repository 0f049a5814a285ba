"""A world deployed as compose deploys it, for the faults that kill processes.

Three processes, as the ``code``, ``webserver`` and ``daemon`` services run them: the code location's gRPC server
(``dagster api grpc``), which starts every run as a subprocess of its own (the run worker); ``dagster-webserver``,
through whose GraphQL API the tests launch runs and re-execute them from failure, as the UI's buttons do; and
``dagster-daemon``, which dequeues runs and monitors them. The instance is the repository's ``dagster.yaml`` (the
queued coordinator with its lanes, :class:`~huracan_assets.defs.launcher.MonitoredRunLauncher`, run monitoring)
with the world's database, shorter polling intervals and local folders for logs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from huracan_assets.names import LOCATION_NAME
from huracan_assets.settings import Settings, write_settings_folder
from huracan_assets_tests.conftest import REPO, _free_port, _kill_group
from huracan_assets_tests.faults.world import World

# polling intervals of the test deployment (production: dagster.yaml), so a fault is noticed in seconds
DEQUEUE_SECONDS, MONITOR_SECONDS, UNREACHABLE_GRACE_SECONDS = 1, 2, 60  # a restart (~10 s) is within the grace
LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } ... on RunConfigValidationInvalid {
  errors { message } } ... on InvalidSubsetError { message } ... on UnauthorizedError { message } } }"""
RELOAD = """mutation($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) { __typename
  ... on WorkspaceLocationEntry { locationOrLoadError { __typename } } } }"""
REEXECUTE = """mutation($params: ReexecutionParams!) { launchRunReexecution(reexecutionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""


def instance_config(world: World, root: Path) -> dict:
    """The repository's ``dagster.yaml`` on the world's database, polling faster, logs under ``root``."""
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    config["storage"] = {"postgres": {"postgres_url": world.instance_url}}
    config["run_coordinator"]["config"]["dequeue_interval_seconds"] = DEQUEUE_SECONDS
    config["run_launcher"].setdefault("config", {})["unreachable_grace_seconds"] = UNREACHABLE_GRACE_SECONDS
    config["run_monitoring"]["poll_interval_seconds"] = MONITOR_SECONDS
    config["local_artifact_storage"]["config"]["base_dir"] = str(root / "storage")
    config["compute_logs"]["config"]["base_dir"] = str(root / "storage" / "logs")
    return config


class WebserverError(RuntimeError):
    pass


@dataclass
class Deployment:
    world: World
    settings: Settings
    root: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    dates_run: set = field(default_factory=set)  # the dates a test has run (faults/test_faults.py)
    stale_connection_errors: int = 0

    def __post_init__(self) -> None:
        config = instance_config(self.world, self.root)
        self.dagster_home = self.world.dagster_home(self.root, {k: v for k, v in config.items() if k != "storage"})
        self.grpc_port, self.web_port = _free_port(), _free_port()
        self.workspace = self.root / "workspace.yaml"
        server = {"host": "127.0.0.1", "port": self.grpc_port, "location_name": LOCATION_NAME}
        self.workspace.write_text(yaml.safe_dump({"load_from": [{"grpc_server": server}]}))
        folder = write_settings_folder(self.settings, self.root / "config")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("HURACAN_", "DAGSTER_"))}
        self.env.update(self.world.environment())
        self.env.update(
            HURACAN_CONFIG_DIR=str(folder),
            HURACAN_ENV=self.settings.env,
            DAGSTER_HOME=str(self.dagster_home),
            DAGSTER_EVENT_BATCH_SIZE="1000",
            DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS="true",
        )
        self.url = f"http://127.0.0.1:{self.web_port}"

    # ------------------------------------------------------------------------------------------------ processes
    def _spawn(self, name: str, args: list[str]) -> None:
        self.logs[name] = self.root / f"{name}.log"
        with self.logs[name].open("ab") as log:
            self.procs[name] = subprocess.Popen(args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                                start_new_session=True)  # fmt: skip

    def start_code_server(self) -> None:
        bin_dir = Path(sys.executable).parent
        self._spawn("code", [str(bin_dir / "dagster"), "api", "grpc", "-m", "huracan_assets.definitions", "-h",
                             "127.0.0.1", "-p", str(self.grpc_port), "--location-name", LOCATION_NAME])  # fmt: skip
        self._wait_for(lambda: self._grpc_answers(), "the code server", 120)

    def kill_code_server(self) -> None:
        """SIGKILL the code server and everything it started (its run workers): a container restarting."""
        _kill_group(self.procs["code"], signal.SIGKILL)
        self.procs["code"].wait(timeout=30)

    def start(self) -> Deployment:
        bin_dir = Path(sys.executable).parent
        self.start_code_server()
        self._spawn("webserver", [str(bin_dir / "dagster-webserver"), "-w", str(self.workspace), "-h", "127.0.0.1",
                                  "-p", str(self.web_port)])  # fmt: skip
        self._spawn("daemon", [str(bin_dir / "dagster-daemon"), "run", "-w", str(self.workspace)])
        self._wait_for(self._web_answers, "the webserver", 120)
        return self

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                _kill_group(proc, signal.SIGKILL)
                proc.wait(timeout=30)

    def _grpc_answers(self) -> bool:
        from dagster._grpc.client import DagsterGrpcClient

        try:
            DagsterGrpcClient(port=self.grpc_port, host="127.0.0.1").ping("x")
            return True
        except Exception:
            return False

    def _web_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/server_info", timeout=5):
                return True
        except OSError:
            return False

    def _wait_for(self, ready, what: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not ready():
            dead = [name for name, proc in self.procs.items() if proc.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not come up ({dead or 'timeout'}):\n{self.tails()}")
            time.sleep(0.5)

    def tails(self, chars: int = 3000) -> str:
        return "\n".join(f"----- {name} -----\n{path.read_text(errors='replace')[-chars:]}"
                         for name, path in self.logs.items())  # fmt: skip

    # ----------------------------------------------------------------------------------------------------- runs
    def graphql(self, query: str, variables: dict) -> dict:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:  # the webserver's own error: its body says what went wrong
            raise WebserverError(f"HTTP {exc.code} from the webserver: {exc.read()[:3000]!r}") from exc
        if "errors" in answer:
            raise RuntimeError(f"GraphQL errors: {answer['errors']}")
        return answer["data"]

    @staticmethod
    def _run_id(result: dict) -> str:
        if result["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"the launch failed: {result}")
        return result["run"]["runId"]

    def _mutate(self, query: str, variables: dict, field_name: str) -> str:
        """A launching mutation; one retry per dead pooled connection. After a PostgreSQL restart the webserver's
        pooled connection is dead, and Dagster drops it only when a request fails on it (``optimize_for_webserver``:
        a pool without pre-ping), so the first request after the restart fails, before it creates anything, and
        the next one works. Counted in ``stale_connection_errors``."""
        for _ in range(3):
            try:
                return self._run_id(self.graphql(query, variables)[field_name])
            except WebserverError as exc:
                if "server closed the connection unexpectedly" not in str(exc):
                    raise
                self.stale_connection_errors += 1
        raise RuntimeError(f"the webserver kept failing on dead connections:\n{self.tails()}")

    def launch(self, job: str, tags: dict[str, str]) -> str:
        """Submit ``job`` with ``tags`` as the UI's launch button does (queued; the daemon starts it)."""
        params = {
            "selector": {"repositoryLocationName": LOCATION_NAME, "repositoryName": "__repository__", "jobName": job},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }
        return self._mutate(LAUNCH, {"params": params}, "launchRun")

    def reload(self) -> None:
        """Reload the code location (after its server was started again), as the UI's reload button does."""
        entry = self.graphql(RELOAD, {"name": LOCATION_NAME})["reloadRepositoryLocation"]
        if entry.get("locationOrLoadError", {}).get("__typename") != "RepositoryLocation":
            raise RuntimeError(f"the code location did not reload: {entry}\n{self.tails()}")

    def reexecute_from_failure(self, run_id: str) -> str:
        params = {"parentRunId": run_id, "strategy": "FROM_FAILURE"}
        return self._mutate(REEXECUTE, {"params": params}, "launchRunReexecution")

    def instance(self) -> DagsterInstance:
        return DagsterInstance.from_config(str(self.dagster_home))


def wait_for_status(instance: DagsterInstance, run_id: str, seconds: float = 600) -> DagsterRunStatus:
    """The run's status once it has finished (success, failure or canceled)."""
    deadline = time.monotonic() + seconds
    while True:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.is_finished:
            return run.status
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} still {run.status if run else 'unknown'} after {seconds:.0f} s")
        time.sleep(0.3)


def worker_pid(instance: DagsterInstance, run_id: str, seconds: float = 120) -> int:
    """The pid of the run's worker process, from the engine event the worker logs when it starts."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
            metadata = entry.dagster_event.engine_event_data.metadata or {}
            if "pid" in metadata:
                return int(metadata["pid"].value)
        time.sleep(0.2)
    raise TimeoutError(f"run {run_id} logged no worker pid in {seconds:.0f} s")


class RunEnded(RuntimeError):
    """The run ended before the step it was waited for logged its event."""

    def __init__(self, run_id: str, status: DagsterRunStatus, step: str, event: DagsterEventType) -> None:
        super().__init__(f"run {run_id} ended ({status}) before {step} logged {event}")
        self.status = status


def wait_for_step(instance: DagsterInstance, run_id: str, step: str, event: DagsterEventType, seconds: float = 600):
    """Block until ``step`` of the run has logged ``event`` (STEP_START, STEP_SUCCESS ...); :class:`RunEnded` if
    the run ends first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(e.step_key == step for e in instance.all_logs(run_id, of_type=event)):
            return
        run = instance.get_run_by_id(run_id)
        if run is not None and run.is_finished:
            raise RunEnded(run_id, run.status, step, event)
        time.sleep(0.1)
    raise TimeoutError(f"{step} logged no {event} in {seconds:.0f} s")
