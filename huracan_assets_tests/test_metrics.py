"""The Engine's Prometheus metrics, read at scrape time from a real (SQLite) registry and a local store."""

from datetime import UTC, date, datetime

from prometheus_client import CollectorRegistry, generate_latest

from huracan_assets.metrics import EngineCollector
from huracan_assets.registry.client import Registry, sqlite_url
from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets_tests.publishing.test_champion import _publish, make_bundles

NOW = datetime(2024, 8, 12, 4, 0, tzinfo=UTC)


def _scrape(collector) -> str:
    reg = CollectorRegistry()
    reg.register(collector)
    return generate_latest(reg).decode()


def _status(asset, symbol, day, status):
    return {"asset": asset, "symbol": symbol, "as_of": day, "timeframe": "1h", "status": status, "reason": None,
            "detail": None, "run_id": "r", "updated_at": NOW}  # fmt: skip


def _trade(i, symbol, net):
    return {"trade_id": f"{symbol}:champion:{i}", "time": datetime(2024, 8, 11, i, tzinfo=UTC), "symbol": symbol,
            "side": "buy", "size": 1.0, "entry": 1.0, "exit": 1.0, "fees": 0.0, "net_pnl": 0.0,
            "model_id": "m", "sha256": None, "role": "champion", "net_bps": net, "as_of": date(2024, 8, 11),
            "timeframe": "1h"}  # fmt: skip


def test_metrics_from_the_registry_and_the_store(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    registry = Registry(sqlite_url(tmp_path / "r.db"))
    _publish(store, make_bundles()["2024-08-07"], "2024-08-10")
    d = date(2024, 8, 11)
    registry.upsert("symbol_status", [_status("candles", "BTCUSDT", d, "ok"), _status("candles", "ETHUSDT", d, "ok"),
                                      _status("candles", "SOLUSDT", d, "failed"),
                                      _status("features", "BTCUSDT", d, "skipped")])  # fmt: skip
    registry.upsert("shadow_trades", [_trade(1, "BTCUSDT", 10.0), _trade(2, "BTCUSDT", -4.0)])
    text = _scrape(EngineCollector(store, lambda: registry, days=3, clock=lambda: NOW))
    for line in (
        'huracan_keys{asset="candles",date="2024-08-11",status="ok"} 2.0',
        'huracan_keys{asset="candles",date="2024-08-11",status="failed"} 1.0',
        'huracan_keys{asset="features",date="2024-08-11",status="skipped"} 1.0',
        'huracan_promotions{kind="promotion"} 0.0',
        'huracan_champion_age_days{symbol="BTCUSDT"} 2.0',
        'huracan_champion_shadow_net_bps{symbol="BTCUSDT"} 3.0',
        'huracan_champion_shadow_trades{symbol="BTCUSDT"} 2.0',
        "huracan_data_age_seconds 14400.0",
    ):
        assert line in text, line
    assert "huracan_metrics_errors{" not in text


def test_a_source_that_fails_is_reported_not_raised(tmp_path):
    def broken():
        raise ConnectionError("registry down")

    text = _scrape(EngineCollector(LocalObjectStore(tmp_path), broken, clock=lambda: NOW))
    for source in ("symbol_status", "promotions", "shadow_trades"):
        assert f'huracan_metrics_errors{{source="{source}"}} 1.0' in text


def record_runs(instance, outcomes: list[tuple[str, bool]]) -> None:
    """Real runs on ``instance``, in order: one per (date, check passes), of a daily asset with a WARN check."""
    from dagster import (
        AssetCheckResult,
        AssetCheckSeverity,
        AssetCheckSpec,
        DailyPartitionsDefinition,
        MaterializeResult,
        asset,
        materialize,
    )

    passes = [True]

    @asset(partitions_def=DailyPartitionsDefinition("2024-08-01"), check_specs=[AssetCheckSpec("fresh", asset="data")])
    def data():
        return MaterializeResult(
            check_results=[AssetCheckResult(check_name="fresh", passed=passes[0], severity=AssetCheckSeverity.WARN)]
        )

    for day, ok in outcomes:
        passes[0] = ok
        assert materialize([data], instance=instance, partition_key=day).success


def test_stage_seconds_and_failing_checks_from_the_dagster_runs(tmp_path):
    """Each date's latest run says how long each stage took and which checks failed: a rerun that passes clears the
    date's failure, another date's stays."""
    from huracan_assets_tests.defs.helpers import sqlite_instance

    instance = sqlite_instance(tmp_path / "dagster")
    record_runs(instance, [("2024-08-10", False), ("2024-08-11", False), ("2024-08-11", True)])
    registry = Registry(sqlite_url(tmp_path / "r.db"))
    collector = EngineCollector(LocalObjectStore(tmp_path / "store"), lambda: registry, days=3, clock=lambda: NOW,
                                instance_factory=lambda: instance)  # fmt: skip
    text = _scrape(collector)
    for line in (
        'huracan_failing_checks{date="2024-08-10",severity="warn"} 1.0',
        'huracan_failing_checks{date="2024-08-11",severity="warn"} 0.0',
        'huracan_failing_checks{date="2024-08-11",severity="error"} 0.0',
    ):
        assert line in text, line
    stages = [ln for ln in text.splitlines() if ln.startswith("huracan_stage_seconds{")]
    assert {ln.split("{")[1].split("}")[0] for ln in stages} == {
        'date="2024-08-10",stage="data"',
        'date="2024-08-11",stage="data"',
    }
    assert all(0 < float(ln.rsplit(" ", 1)[1]) < 60 for ln in stages)
    assert "huracan_metrics_errors{" not in text
    instance.dispose()


def test_the_exporter_serves_the_engine_metrics_of_a_home(tmp_path):
    """`huracan metrics --home`: the exporter process scrapes the home's registry, store and Dagster instance."""
    import os
    import subprocess
    import sys
    import time
    from datetime import timedelta

    import httpx

    from huracan_assets_tests.conftest import _free_port
    from huracan_assets_tests.defs.helpers import sqlite_instance

    home = tmp_path / "home"
    instance = sqlite_instance(home / "dagster")  # <home>/dagster/dagster_home: point DAGSTER_HOME there
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    record_runs(instance, [(yesterday, False)])
    instance.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HURACAN_", "DAGSTER_HOME"))}
    env["DAGSTER_HOME"] = str(home / "dagster" / "dagster_home")
    port = _free_port()
    cmd = [sys.executable, "-m", "huracan_assets.cli", "metrics", "--home", str(home), "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        text = ""
        for _ in range(120):
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert f'huracan_failing_checks{{date="{yesterday}",severity="warn"}} 1.0' in text, text[-2000:]
        assert f'huracan_stage_seconds{{date="{yesterday}",stage="data"}}' in text
        assert 'huracan_promotions{kind="promotion"} 0.0' in text and "huracan_metrics_errors{" not in text
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert "Huracan metrics · http://127.0.0.1:" in out
