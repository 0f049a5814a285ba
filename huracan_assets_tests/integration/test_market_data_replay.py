"""universe -> candles through the production path (ccxt) against the replay exchange, on real coins: the August
slice's reference coins, a delisting (DOGE), a listing (TON), a thin fan token (JUV) and a few large ones (the
whole 25-coin slice changes nothing these tests check, only their time)."""

import shutil
from datetime import date, timedelta

import polars as pl
import pytest

from huracan_assets.core.market_data.candles import day_bounds_ms
from huracan_assets.defs.partitions import SYMBOLS, range_tags
from huracan_assets.exchange.replay import binance_client, running_replay_server
from huracan_assets.registry.client import Registry
from huracan_assets.runner import backfill, run_prelude
from huracan_assets.settings import load_settings
from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets.storage.partitioned import PartitionWindow
from huracan_assets_tests.defs.helpers import defs_for, sqlite_instance

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPLAY_AUG = __import__("huracan_assets_tests.conftest", fromlist=["TEST_DATA"]).TEST_DATA.parent / "replay_aug"
REPLAY_LONG = REPLAY_AUG.parent / "replay_long"
H = 3_600_000


def _after(day: date) -> int:
    return day_bounds_ms(day)[1] + 2 * H


AUG_COINS = ("BTC", "ETH", "SOL", "XRP", "LINK", "DOGE", "TON", "JUV")


@pytest.fixture
def market(home, tmp_path):
    """Eight coins of the August slice, with DOGE delisted: its data stops after 2024-08-06."""
    data = tmp_path / "data"
    (data / "1h").mkdir(parents=True)
    for coin in AUG_COINS:
        shutil.copy(REPLAY_AUG / "1h" / f"{coin}_USDT.parquet", data / "1h")
    doge = data / "1h" / "DOGE_USDT.parquet"
    pl.read_parquet(doge).filter(pl.col("ts") < day_bounds_ms(date(2024, 8, 7))[0]).write_parquet(doge)
    with running_replay_server(data, now_ms=_after(date(2024, 8, 4))) as replay:
        settings = load_settings(
            "local",
            partitions={"start_date": "2024-08-01"},
            exchange={"kind": "ccxt", "exchange_id": "binance", "base_url": replay.url, "rate_limit_ms": 1},
        )
        yield settings, replay


def test_daily_runs_from_the_replay_exchange(market, tmp_path):
    settings, replay = market
    defs = defs_for(settings)
    instance = sqlite_instance(tmp_path)
    clock = lambda d: replay.set_now(_after(d))  # noqa: E731
    runs = []
    backfill(defs, instance, date(2024, 8, 1), date(2024, 8, 12), 1, clock=clock, progress=lambda *a: runs.append(a))
    assert len(runs) == 12  # one chunk (prelude + one ranged run + summary) per date

    symbols = instance.get_dynamic_partitions(SYMBOLS)
    assert len(symbols) == len(AUG_COINS) and "TONUSDT" in symbols and "DOGEUSDT" in symbols  # added, none removed
    store = LocalObjectStore(settings.store_root)
    uni = {
        d: PartitionWindow(store, "universe", [d.isoformat()])[d.isoformat()]
        for d in (date(2024, 8, 7), date(2024, 8, 8), date(2024, 8, 12))
    }
    assert "TONUSDT" not in uni[date(2024, 8, 7)]["symbol"].to_list()  # the exchange lists TON from 08-08 only
    assert "TONUSDT" not in uni[date(2024, 8, 8)].filter("selected")["symbol"].to_list()  # < 1 day of history
    assert "TONUSDT" in uni[date(2024, 8, 12)].filter("selected")["symbol"].to_list()
    assert "DOGEUSDT" not in uni[date(2024, 8, 12)]["symbol"].to_list()  # delisted: gone from the market
    assert store.exists("candles/DOGEUSDT/2024-08-05.parquet")  # its history is kept
    doge = PartitionWindow(store, "candles", ["2024-08-12|DOGEUSDT"]).status("2024-08-12|DOGEUSDT")
    assert doge.reason == "not in the universe of 2024-08-12"

    btc = pl.read_parquet(settings.store_root / "candles/BTCUSDT/2024-08-05.parquet")
    source = pl.read_parquet(REPLAY_AUG / "1h" / "BTC_USDT.parquet")
    assert btc.equals(source.filter((pl.col("ts") >= btc["ts"].min()) & (pl.col("ts") <= btc["ts"].max())))
    assert btc.height == 24

    # regimes through the whole path: no guess without the trailing history; the thin fan token is ILLIQUID
    regimes = PartitionWindow(store, "regimes", ["2024-08-05|BTCUSDT", "2024-08-10|JUVUSDT", "2024-08-10|BTCUSDT"])
    assert regimes.status("2024-08-05|BTCUSDT").reason == "insufficient history: 4/8 days"
    assert set(regimes["2024-08-10|JUVUSDT"]["regime"]) == {"ILLIQUID"}
    assert "ILLIQUID" not in set(regimes["2024-08-10|BTCUSDT"]["regime"])

    # re-ingesting identical data stores one copy and reports it unchanged
    day = date(2024, 8, 12)
    symbols_now = instance.get_dynamic_partitions(SYMBOLS)
    result = defs.resolve_job_def("symbol_day_job").execute_in_process(
        instance=instance, tags=range_tags(day, day, symbols_now)
    )
    assert result.success
    mats = result.asset_materializations_for_node("candles")
    assert all(m.metadata["run_objects_written"].value == 0 for m in mats)
    assert mats[0].metadata["run_objects_unchanged"].value == len(AUG_COINS) - 1  # DOGE is gone that day


def test_an_interrupted_day_resumes_from_its_watermark(market, tmp_path):
    settings, replay = market
    defs = defs_for(settings)
    instance = sqlite_instance(tmp_path)
    day = date(2024, 8, 13)
    replay.set_now(_after(day - timedelta(days=1)))
    backfill(defs, instance, day - timedelta(days=1), day - timedelta(days=1), 1)
    # the job runs at 10:30 on D (too early): 10 closed bars are stored, the key fails as incomplete
    replay.set_now(day_bounds_ms(day)[0] + 10 * H + 30 * 60_000)
    run_prelude(defs, instance, day, day)
    tags = range_tags(day, day, ["ETHUSDT"])
    assert defs.resolve_job_def("symbol_day_job").execute_in_process(instance=instance, tags=tags, raise_on_error=True)
    registry = Registry(f"sqlite:///{settings.sqlite_path}")

    def status():
        rows = registry.select("symbol_status", asset="candles", symbol="ETHUSDT", as_of=day)
        return rows[0]["status"], rows[0]["reason"], rows[0]["detail"]

    st, reason, detail = status()
    assert (st, detail["bars"]) == ("failed", 10) and reason.startswith("incomplete: 10/24")
    # later, after D: only what is missing is fetched, and the day completes
    replay.set_now(_after(day))
    replay.reset_requests()
    assert defs.resolve_job_def("symbol_day_job").execute_in_process(instance=instance, tags=tags)
    st, reason, detail = status()
    assert st == "ok" and detail["bars"] == 24 and detail["reused_bars"] == 10
    assert detail["fetched_from_ts"] == day_bounds_ms(day)[0] + 10 * H
    assert pl.read_parquet(settings.store_root / f"candles/ETHUSDT/{day}.parquet").height == 24


def test_a_backfill_of_past_dates_sees_a_coin_delisted_since(home, tmp_path):
    """ATOM's data end on 2024-07-15 at 14:00 (a mid-July delisting) and the exchange's clock is 'today', after the
    folder's end: ATOM is BREAK, yet a backfill of July through the stock ccxt client holds it in the universe of
    every day it traded, ingests its bars, and leaves it out from the day after its last."""
    data = tmp_path / "data"
    (data / "1h").mkdir(parents=True)
    for name in ("BTC_USDT", "ETH_USDT", "SOL_USDT", "ATOM_USDT"):
        shutil.copy(REPLAY_LONG / "1h" / f"{name}.parquet", data / "1h")
    last_day = date(2024, 7, 15)
    atom = data / "1h" / "ATOM_USDT.parquet"
    pl.read_parquet(atom).filter(pl.col("ts") < day_bounds_ms(last_day)[0] + 14 * H).write_parquet(atom)
    today = _after(date(2024, 8, 9))
    first, last = last_day - timedelta(days=3), last_day + timedelta(days=2)
    with running_replay_server(data, now_ms=today) as replay:
        assert binance_client(replay.url).load_markets()["ATOM/USDT"]["info"]["status"] == "BREAK"
        settings = load_settings(
            "local",
            partitions={"start_date": "2024-07-01"},
            exchange={"kind": "ccxt", "exchange_id": "binance", "base_url": replay.url, "rate_limit_ms": 1},
        )
        instance = sqlite_instance(tmp_path)
        backfill(defs_for(settings), instance, first, last, 10, with_summary=False, job="symbol_day_data_job")
        assert replay.now_ms() == today  # the whole backfill ran as of today

    store = LocalObjectStore(settings.store_root)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    universe = PartitionWindow(store, "universe", [d.isoformat() for d in days])
    for d in days:
        selected = universe[d.isoformat()].filter("selected")["symbol"].to_list()
        assert ("ATOMUSDT" in selected) == (d <= last_day), d
        assert {"BTCUSDT", "ETHUSDT", "SOLUSDT"} <= set(selected)
    assert "ATOMUSDT" in instance.get_dynamic_partitions(SYMBOLS)
    candles = PartitionWindow(store, "candles", [f"{d.isoformat()}|ATOMUSDT" for d in days])
    assert candles[f"{(last_day - timedelta(days=1)).isoformat()}|ATOMUSDT"].height == 24
    assert candles[f"{last_day.isoformat()}|ATOMUSDT"].height == 14  # its last day, up to the delisting
    after = candles.status(f"{(last_day + timedelta(days=1)).isoformat()}|ATOMUSDT")
    assert after.reason == f"not in the universe of {last_day + timedelta(days=1)}"
