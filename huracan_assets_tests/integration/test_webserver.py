"""The Dagster webserver serves our code location: the asset graph, jobs, schedule and sensors over GraphQL."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from huracan_assets_tests.conftest import REPO, _free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUERY = """
{
  assetNodes { assetKey { path } groupName isPartitioned partitionDefinition { dimensionTypes { name } } }
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes { jobs { name } schedules { name cronSchedule } sensors { name } }
    }
  }
}
"""


def _graphql(port: int, query: str) -> dict:
    body = json.dumps({"query": query}).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


@pytest.fixture
def webserver(tmp_path):
    home = tmp_path / "home"
    (home / "dagster").mkdir(parents=True)
    (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HURACAN_", "DAGSTER_"))}
    env.update(DAGSTER_HOME=str(home / "dagster"), HURACAN_HOME=str(home), HURACAN_ENV="local")
    port = _free_port()
    binary = Path(sys.executable).parent / "dagster-webserver"
    log = (tmp_path / "webserver.log").open("wb")
    proc = subprocess.Popen(
        [str(binary), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # end the whole group: the webserver spawns a code server
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                break
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                pytest.fail("webserver did not start:\n" + (tmp_path / "webserver.log").read_text()[-3000:])
            time.sleep(1)
    yield port
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def test_webserver_serves_the_asset_graph(webserver):
    data = _graphql(webserver, QUERY)
    assert "errors" not in data, data
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["data"]["assetNodes"]}
    assert set(nodes) == {
        "universe",
        "reference_candles",
        "candles",
        "spreads",
        "features",
        "labels",
        "regimes",
        "meta_weights",
        "engine_signals",
        "challenger_model",
        "walk_forward_report",
        "shadow_trades",
        "champion_pointer",
        "daily_equity",
        "param_posteriors",
        "daily_summary",
    }
    dims = {d["name"] for d in nodes["candles"]["partitionDefinition"]["dimensionTypes"]}
    assert dims == {"date", "symbol"}
    assert nodes["features"]["groupName"] == "features"
    repo = data["data"]["repositoriesOrError"]["nodes"][0]
    assert {j["name"] for j in repo["jobs"]} >= {"daily_prelude_job", "symbol_day_job", "daily_summary_job"}
    assert repo["schedules"] == [{"name": "daily_0200_utc", "cronSchedule": "0 2 * * *"}]
    assert {s["name"] for s in repo["sensors"]} == {
        "symbol_day_sensor",
        "daily_summary_sensor",
        "symbols_selector_sensor",
        "alert_on_run_failure",
        "alert_on_run_success",
        "alert_on_stale_data",
        "alert_on_rollback",
    }
    with urllib.request.urlopen(f"http://127.0.0.1:{webserver}/assets", timeout=30) as resp:
        assert resp.status == 200 and b"<html" in resp.read().lower()
