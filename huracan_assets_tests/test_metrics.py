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
