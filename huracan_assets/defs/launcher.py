"""The run launcher of the compose deployment: Dagster's ``DefaultRunLauncher``, with a run worker health check.

``DefaultRunLauncher`` starts each run as a subprocess of the code location's gRPC server (the ``code`` container)
and does not support Dagster's run monitoring: a run whose worker died with its server (the container restarted,
the host rebooted, the OOM killer took the server) stays STARTED for ever, holds its lane of the run queue, and the
next date never runs. The gRPC server notices a dead worker only while it lives itself.

:class:`MonitoredRunLauncher` answers the run monitoring daemon's question "is this run's worker alive?" by asking
the server that started the run (recorded in the run's ``dagster/grpc_info`` tag) which runs it is executing:

- the server lists the run: RUNNING;
- the server answers without it (it is a new server, started after the old one died with the run): FAILED, and
  the daemon marks the run failed, so it can be re-executed from failure;
- the server does not answer: RUNNING for ``unreachable_grace_seconds`` after the first unanswered check (a
  server restarting, a network blip), FAILED after;
- the server answers that it does not list its runs (the ``dagster code-server`` proxy, whose current child may not
  be the one running an older run): RUNNING, never a verdict it cannot back. The deploy serves the code location
  with ``dagster api grpc``, which lists them.

Configured in ``dagster.yaml`` (``run_launcher: module: huracan_assets.defs.launcher, class:
MonitoredRunLauncher``), with ``run_monitoring: enabled: true``.
"""

import time
from collections.abc import Mapping
from typing import Any

from dagster import DefaultRunLauncher, Field, IntSource
from dagster._core.errors import DagsterUserCodeUnreachableError
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._grpc.types import GetCurrentRunsResult
from dagster._serdes import ConfigurableClassData, deserialize_value

DEFAULT_GRACE_SECONDS = 120
UNANSWERED = (
    "the server does not list its runs (a `dagster code-server` proxy; serve the location with `dagster api grpc`):"
    " the run is not judged"
)


class MonitoredRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` whose runs the run monitoring daemon can watch (see the module docstring)."""

    def __init__(
        self, inst_data: ConfigurableClassData | None = None, unreachable_grace_seconds: int = DEFAULT_GRACE_SECONDS
    ) -> None:
        super().__init__(inst_data=inst_data)
        self.unreachable_grace_seconds = unreachable_grace_seconds
        self._unreachable_since: dict[str, float] = {}

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {
            "unreachable_grace_seconds": Field(
                IntSource,
                is_required=False,
                default_value=DEFAULT_GRACE_SECONDS,
                description="How long a run's gRPC server may not answer before its run is marked failed.",
            )
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]):
        return cls(inst_data=inst_data, **config_value)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        client = self._get_grpc_client_for_termination(run.run_id)  # the server recorded in the run's tags
        if client is None:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "the run has no gRPC server recorded in its tags")
        try:
            current = deserialize_value(client.get_current_runs(), GetCurrentRunsResult)
        except DagsterUserCodeUnreachableError as exc:
            if client._is_unimplemented_error(exc):  # a `dagster code-server` proxy: it cannot tell
                return CheckRunHealthResult(WorkerStatus.RUNNING, UNANSWERED)
            return self._unreachable(run.run_id, f"{client.host}:{client.port or client.socket}", exc)
        self._unreachable_since.pop(run.run_id, None)
        if run.run_id in current.current_runs:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"the gRPC server at {client.host}:{client.port or client.socket} is not executing the run: its worker"
            " died with an earlier server, or exited without reporting an end",
        )

    def _unreachable(self, run_id: str, where: str, exc: Exception) -> CheckRunHealthResult:
        since = self._unreachable_since.setdefault(run_id, time.monotonic())
        waited = time.monotonic() - since
        if waited < self.unreachable_grace_seconds:
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"gRPC server {where} unreachable for {waited:.0f} s")
        self._unreachable_since.pop(run_id, None)
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"gRPC server {where} unreachable for {waited:.0f} s: {type(exc).__name__}"
        )
