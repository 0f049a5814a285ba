"""Our ccxt exchange client (the production code path) against the local Binance replay server."""

import shutil
from datetime import date, timedelta

import polars as pl
import pytest

from huracan_assets.core.market_data.candles import DAY_MS, day_bounds_ms
from huracan_assets.core.market_data.universe import UniverseRules
from huracan_assets.defs.market_data import universe_of_day
from huracan_assets.exchange.ccxt_exchange import CcxtExchange
from huracan_assets.exchange.files import BadSymbol, ExchangeError
from huracan_assets.exchange.replay import running_replay_server

pytestmark = pytest.mark.integration

DAY = date(2024, 3, 8)
START, END = day_bounds_ms(DAY)
H = 3_600_000


@pytest.fixture(scope="module")
def server(request):
    from huracan_assets_tests.conftest import TEST_DATA

    with running_replay_server(TEST_DATA, now_ms=day_bounds_ms(date(2024, 3, 14))[1]) as handle:
        yield handle


@pytest.fixture
def replay(server):
    server.clear_faults()
    server.reset_requests()
    server.set_now(day_bounds_ms(date(2024, 3, 14))[1])
    return server


def client(replay, **kw) -> tuple[CcxtExchange, list[float]]:
    delays: list[float] = []
    kw = {"page_limit": 10, "attempts": 4, "base_delay": 0.01, "timeout_ms": 800, "rate_limit_ms": 1, **kw}
    return CcxtExchange("binance", "1h", "USDT", base_url=replay.url, sleep=delays.append, **kw), delays


def _file_day(symbol_file: str) -> pl.DataFrame:
    from huracan_assets_tests.conftest import TEST_DATA

    frame = pl.read_parquet(TEST_DATA / "1h" / symbol_file)
    return frame.filter((pl.col("ts") >= START) & (pl.col("ts") < END))


def test_markets_map_exchange_symbols_to_partition_keys(replay):
    ex, _ = client(replay)
    assert "BTCUSDT" in ex.markets and ex.markets["BTCUSDT"].exchange_symbol == "BTC/USDT"
    assert len(ex.markets) == 24


def test_a_day_is_fetched_over_several_pages_exactly(replay):
    ex, _ = client(replay)
    got = ex.fetch_ohlcv("ETHUSDT", START, END)
    assert got.equals(_file_day("ETH_USDT.parquet"))
    assert replay.requests()["/api/v3/klines"] >= 3  # 24 bars, 10 per page


def test_the_still_open_candle_is_dropped(replay):
    replay.set_now(START + 10 * H + 30 * 60_000)  # 10:30 on D
    ex, _ = client(replay)
    got = ex.fetch_ohlcv("BTCUSDT", START, END)
    assert got["ts"].to_list() == [START + h * H for h in range(10)]  # the 10:00 bar is still open


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "http_5xx"},
        {"kind": "http_5xx", "body": {"code": -1001, "msg": "Internal error; unable to process your request."}},
        {"kind": "rate_limit_429", "retry_after": 1},
        {"kind": "timeout", "delay_s": 1.5},
        {"kind": "truncated_json"},
        {"kind": "truncated_json", "cut_connection": True},
        {"kind": "garbled_json"},
    ],
    ids=lambda f: f["kind"] + ("+code" if "body" in f else "") + ("+cut" if f.get("cut_connection") else ""),
)
def test_each_fault_is_retried_and_the_day_recovers(replay, fault):
    ex, delays = client(replay)
    replay.set_faults([{**fault, "path": "/api/v3/klines", "count": 2}])
    got = ex.fetch_ohlcv("SOLUSDT", START, END)
    assert got.equals(_file_day("SOL_USDT.parquet"))
    assert ex.retries == 2
    if fault["kind"] == "rate_limit_429":
        assert all(d >= 1.0 for d in delays)  # Retry-After honoured over the 10 ms base delay


def test_a_persistent_fault_fails_with_a_clear_message(replay):
    ex, _ = client(replay, attempts=3)
    replay.set_faults([{"kind": "http_5xx", "path": "/api/v3/klines", "count": 100}])
    with pytest.raises(
        ExchangeError, match=r"fetch_ohlcv SOL/USDT since \d+ failed after 3 attempts: ExchangeNotAvailable"
    ):
        ex.fetch_ohlcv("SOLUSDT", START, END)


def test_unknown_symbol_fails_at_once(replay):
    ex, _ = client(replay)
    with pytest.raises(BadSymbol, match="NOPEUSDT"):
        ex.fetch_ohlcv("NOPEUSDT", START, END)
    assert ex.retries == 0


def test_missing_and_duplicate_bars_come_through_raw(replay):
    ex, _ = client(replay)
    replay.set_faults(
        [
            {"kind": "missing_bars", "path": "/api/v3/klines", "open_times": [START + 3 * H, START + 4 * H]},
            {"kind": "duplicate_bars", "path": "/api/v3/klines", "open_times": [START + 7 * H]},
        ]
    )
    got = ex.fetch_ohlcv("XRPUSDT", START, END)
    assert START + 3 * H not in got["ts"].to_list()
    assert got.filter(pl.col("ts") == START + 7 * H).height == 2  # the cleaner dedups, not the client


def test_listing_stats_know_only_the_past(replay):
    ex, _ = client(replay, page_limit=1000)
    before = ex.listing_stats(day_bounds_ms(date(2024, 3, 4))[1], 3 * DAY_MS)[0]
    assert "WIFUSDT" not in before["symbol"].to_list()  # lists 2024-03-05 14:00
    after = ex.listing_stats(day_bounds_ms(date(2024, 3, 6))[1], 3 * DAY_MS)[0]
    wif = after.filter(pl.col("symbol") == "WIFUSDT")
    assert wif["first_bar_ts"].item() == day_bounds_ms(date(2024, 3, 5))[0] + 14 * H
    btc = after.filter(pl.col("symbol") == "BTCUSDT")
    assert btc["quote_volume"].item() > 1e9 and 0 < btc["spread_bps"].item() < 100


def test_inactive_markets_are_kept_with_their_status(replay):
    replay.set_now(day_bounds_ms(date(2024, 3, 14))[1] + 4 * DAY_MS)  # no bar for 4 days: every coin is BREAK
    ex, _ = client(replay)
    assert len(ex.markets) == 24
    assert {(m.active, m.status) for m in ex.markets.values()} == {(False, "BREAK")}
    assert ex.fetch_ohlcv("ETHUSDT", START, END).equals(_file_day("ETH_USDT.parquet"))  # its history is served


def test_a_past_universe_sees_a_coin_delisted_since(tmp_path):
    """DOGE's data end on 2024-03-09 at 12:00 and the exchange's clock is 'today' (2024-03-15, DOGE is BREAK):
    the universes of the days it traded hold it, the days after do not."""
    from huracan_assets_tests.conftest import TEST_DATA

    shutil.copytree(TEST_DATA / "1h", tmp_path / "1h")
    doge = tmp_path / "1h" / "DOGE_USDT.parquet"
    last_day = date(2024, 3, 9)
    pl.read_parquet(doge).filter(pl.col("ts") < day_bounds_ms(last_day)[0] + 12 * H).write_parquet(doge)
    rules = UniverseRules(max_symbols=400, min_history_days=1)
    with running_replay_server(tmp_path, now_ms=day_bounds_ms(date(2024, 3, 14))[1]) as server:
        ex = CcxtExchange("binance", "1h", "USDT", base_url=server.url, rate_limit_ms=1, sleep=lambda _: None)
        assert (ex.markets["DOGEUSDT"].active, ex.markets["DOGEUSDT"].status) == (False, "BREAK")
        selected = {}
        for day in (last_day - timedelta(days=2), last_day - timedelta(days=1), last_day, last_day + timedelta(days=1)):
            ranked, errors = universe_of_day(ex, day, 3, rules)
            assert errors == {}
            selected[day] = set(ranked.filter("selected")["symbol"].to_list())
    assert all("DOGEUSDT" in selected[d] for d in selected if d <= last_day)
    assert "DOGEUSDT" not in selected[last_day + timedelta(days=1)]
    assert len(selected[last_day + timedelta(days=1)]) == 23  # everyone else still trades
