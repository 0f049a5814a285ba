"""The ``spreads`` asset through Dagster: D's spread from the exchange's 5m bars when it serves them, else from the
training candles, flagged coarse (in the row, the registry detail and the ``spreads_from_finest_bars`` check).

Data: ``huracan_assets_tests/data/spreads`` (1h bars of BTC, ETH, SOL, JUV; 5m bars of BTC, SOL, JUV only), and
``huracan_assets_tests/data/ohlcv`` (1h only: no coin has 5m bars)."""

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey

from huracan_assets.core.costs import SPREAD_SCHEMA
from huracan_assets.defs.partitions import SYMBOLS, range_tags
from huracan_assets.registry.client import Registry
from huracan_assets.runner import run_prelude
from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets.storage.partitioned import PartitionWindow
from huracan_assets_tests.defs.helpers import defs_for, local_settings, sqlite_instance

SPREADS_DATA = Path(__file__).resolve().parents[1] / "data" / "spreads"
FIRST, LAST = date(2024, 3, 1), date(2024, 3, 2)


def _run(tmp_path, data_dir: Path, symbols: str):
    settings = local_settings(data_dir, universe={"symbols": symbols.split(",")})
    defs = defs_for(settings)
    instance = sqlite_instance(tmp_path)
    run_prelude(defs, instance, FIRST, LAST)
    keys = sorted(instance.get_dynamic_partitions(SYMBOLS))
    assert keys == sorted(symbols.split(","))
    result = defs.resolve_job_def("symbol_day_data_job").execute_in_process(
        instance=instance,
        tags=range_tags(FIRST, LAST, keys),
        asset_selection=[AssetKey("candles"), AssetKey("spreads")],
    )
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    store = LocalObjectStore(settings.store_root)
    window = PartitionWindow(store, "spreads", [f"{d}|{s}" for d in (FIRST, LAST) for s in keys])
    return settings, checks, window


@pytest.mark.slow
def test_spreads_from_5m_bars_and_the_coarse_fallback(home, tmp_path):
    settings, checks, window = _run(tmp_path, SPREADS_DATA, "BTCUSDT,ETHUSDT")
    assert settings.timeframe == "1h" and settings.costs.spread_timeframe == "5m"
    btc, eth = window["2024-03-01|BTCUSDT"], window["2024-03-01|ETHUSDT"]
    assert btc.schema == pl.Schema(SPREAD_SCHEMA) and btc.height == eth.height == 1
    # BTC: the exchange serves 5m bars: 288 of them, not coarse
    assert btc.select("estimator", "bar_minutes", "n_bars", "n_pairs", "coarse", "note").row(0) == (
        "abdi_ranaldo",
        5,
        288,
        287,
        False,
        "",
    )
    assert 0.0 <= btc["spread_bps"][0] < 10.0 and 0.001 < btc["tick_bps"][0] < 0.003  # 0.01 USDT at ~62k
    # ETH: no 5m file: the 24 training bars of D, flagged coarse with the reason
    assert eth.select("bar_minutes", "n_bars", "coarse").row(0) == (60, 24, True)
    assert eth["note"][0].startswith("no 5m bars:") and "ETH" in eth["note"][0]
    coarse = checks["spreads_from_finest_bars"]
    assert not coarse.passed and coarse.severity.value == "WARN"
    assert set(coarse.metadata["offending_keys"].value) == {"2024-03-01|ETHUSDT", "2024-03-02|ETHUSDT"}
    assert checks["spreads_all_symbols_ok"].passed
    rows = Registry(f"sqlite:///{settings.sqlite_path}").select("symbol_status", asset="spreads")
    detail = {(r["as_of"], r["symbol"]): r["detail"] for r in rows}
    assert detail[(FIRST, "ETHUSDT")]["coarse"] is True and detail[(FIRST, "BTCUSDT")]["coarse"] is False
    assert detail[(FIRST, "BTCUSDT")]["bar_minutes"] == 5


@pytest.mark.slow
def test_an_exchange_without_5m_bars_gives_coarse_spreads(home, tmp_path, test_data_dir):
    assert not (test_data_dir / "5m").exists()
    _, checks, window = _run(tmp_path, test_data_dir, "SOLUSDT")
    for key in window:
        row = window[key]
        assert row.select("bar_minutes", "n_bars", "coarse").row(0) == (60, 24, True)
        assert row["note"][0].startswith("no 5m bars: no candle folder")
    assert not checks["spreads_from_finest_bars"].passed
