"""The local Binance replay exchange, driven by the real ccxt ``binance`` client.

The server runs on a free loopback port over the bundled 1h test folder (24 coins, 2024-03-01..14). Nothing is
mocked: ccxt builds its real requests, the server answers Binance's shapes, ccxt parses them (or raises).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ccxt
import polars as pl
import pytest

from huracan_assets.exchange.replay import (
    ReplayError,
    ReplayExchange,
    binance_client,
    parse_time_ms,
    point_ccxt_at,
    running_replay_server,
)
from huracan_assets_tests.conftest import REPO, TEST_DATA

pytestmark = pytest.mark.integration

HOUR = 3_600_000
DAY = 24 * HOUR
DAY_START = parse_time_ms("2024-03-10T00:00:00Z")
WIF_FIRST = parse_time_ms("2024-03-05T14:00:00Z")  # first bar of WIF_USDT in the test folder
FOLDER_END = parse_time_ms("2024-03-15T00:00:00Z")  # close of the last bar (23:00) = default now
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def file_rows(symbol: str, lo: int, hi: int, folder: Path = TEST_DATA) -> list[list]:
    frame = pl.read_parquet(folder / "1h" / f"{symbol}.parquet").filter(pl.col("ts").is_between(lo, hi, closed="left"))
    return [list(r) for r in frame.select("ts", "open", "high", "low", "close", "volume").iter_rows()]


def raw_get(url: str) -> tuple[int, dict, bytes]:
    try:
        with NO_PROXY.open(url, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def fetch_day(ex: ccxt.binance, symbol: str = "BTC/USDT", start: int = DAY_START, limit: int = 10) -> list[list]:
    """A client's pagination loop: pages of ``limit`` bars from ``start`` until the day is covered."""
    out: list[list] = []
    since = start
    while since < start + DAY:
        page = ex.fetch_ohlcv(symbol, "1h", since=since, limit=limit)
        if not page:
            break
        out += [row for row in page if row[0] < start + DAY]
        since = page[-1][0] + HOUR
    return out


@pytest.fixture(scope="module")
def server():
    with running_replay_server(TEST_DATA) as handle:
        yield handle


@pytest.fixture(autouse=True)
def clean_server(server):
    server.clear_faults()
    server.set_now(FOLDER_END)
    server.reset_requests()
    yield
    server.clear_faults()
    server.set_now(FOLDER_END)


@pytest.fixture
def ex(server) -> ccxt.binance:
    return binance_client(server.url, timeout=3_000)


# ---- markets, clock -------------------------------------------------------------------------------------------------


def test_load_markets_with_default_options(server, ex):
    markets = ex.load_markets()
    assert len(markets) == 24
    btc = markets["BTC/USDT"]
    assert (btc["id"], btc["base"], btc["quote"], btc["type"]) == ("BTCUSDT", "BTC", "USDT", "spot")
    assert btc["active"] is True
    assert btc["precision"]["price"] == 0.01
    assert btc["limits"]["cost"]["min"] == 5.0
    counts = server.requests()
    assert counts["/api/v3/exchangeInfo"] == 1
    assert counts["/fapi/v1/exchangeInfo"] == 1  # the futures endpoints are asked and answered (empty)
    assert counts["/dapi/v1/exchangeInfo"] == 1
    assert ex.fetch_time() == FOLDER_END


def test_point_ccxt_at_rewrites_every_api_url(server):
    client = point_ccxt_at(ccxt.binance(), server.url)
    urls = client.urls["api"]
    assert urls["public"] == f"{server.url}/api/v3"
    assert urls["fapiPublic"] == f"{server.url}/fapi/v1"
    assert urls["dapiPublic"] == f"{server.url}/dapi/v1"
    assert urls["sapi"] == f"{server.url}/sapi/v1"
    assert all(u.startswith(server.url) for u in urls.values())


def test_listing_is_as_of_now(server):
    server.set_now(WIF_FIRST)  # WIF's first bar opens exactly now: not listed yet
    before = binance_client(server.url)
    markets = before.load_markets()
    assert "WIF/USDT" not in markets
    assert len(markets) == 23
    assert before.fetch_time() == WIF_FIRST

    server.set_now(WIF_FIRST + 1)
    after = binance_client(server.url)
    assert "WIF/USDT" in after.load_markets()
    # the one bar there is is the still-open candle
    (bar,) = after.fetch_ohlcv("WIF/USDT", "1h", since=WIF_FIRST - DAY, limit=100)
    assert bar[0] == WIF_FIRST

    # a client that loaded its markets later asks about WIF at a time before its listing: the server says BadSymbol
    server.set_now(WIF_FIRST)
    with pytest.raises(ccxt.BadSymbol):
        after.fetch_ohlcv("WIF/USDT", "1h", limit=5)
    with pytest.raises(ccxt.BadSymbol):
        after.fetch_ticker("WIF/USDT")


def test_unknown_symbol_is_bad_symbol(server, ex):
    with pytest.raises(ccxt.BadSymbol):
        ex.fetch_ohlcv("FOO/USDT", "1h")  # not in the markets: ccxt refuses
    ex.load_markets()
    ex.markets["FOO/USDT"] = dict(ex.markets["BTC/USDT"], id="FOOUSDT", symbol="FOO/USDT")
    ex.markets_by_id["FOOUSDT"] = [ex.markets["FOO/USDT"]]
    with pytest.raises(ccxt.BadSymbol, match="-1121"):  # asked anyway: the server answers -1121
        ex.fetch_ohlcv("FOO/USDT", "1h")
    status, _, body = raw_get(f"{server.url}/api/v3/klines?symbol=FOOUSDT&interval=1h")
    assert (status, json.loads(body)) == (400, {"code": -1121, "msg": "Invalid symbol."})
    status, _, body = raw_get(f"{server.url}/api/v3/klines?symbol=BTCUSDT&interval=5m")  # no 5m folder here
    assert status == 400 and json.loads(body)["code"] == -1121


def test_control_endpoints(server):
    assert server.set_now("2024-03-10T10:30:00Z") == DAY_START + 10 * HOUR + HOUR // 2
    assert server.now_ms() == DAY_START + 10 * HOUR + HOUR // 2
    faults = server.set_faults([{"kind": "http_5xx", "path": "/api/v3/klines", "count": 2}])
    assert faults[0]["remaining"] == 2
    server.clear_faults()
    assert server.faults() == []
    status, _, body = raw_get(f"{server.url}/_replay/info")
    assert status == 200 and json.loads(body)["timeframes"] == ["1h"]


# ---- klines ---------------------------------------------------------------------------------------------------------


def test_fetch_ohlcv_paginates_a_full_day(server, ex):
    ex.load_markets()
    server.reset_requests()
    rows = fetch_day(ex, "BTC/USDT", DAY_START, limit=10)
    assert server.requests()["/api/v3/klines"] >= 3
    assert rows == file_rows("BTC_USDT", DAY_START, DAY_START + DAY)  # exact floats, 24 bars
    assert len(rows) == 24


def test_ccxt_own_pagination(server, ex):
    rows = ex.fetch_ohlcv(
        "ETH/USDT",
        "1h",
        since=DAY_START,
        limit=24,
        params={"paginate": True, "maxEntriesPerRequest": 10, "until": DAY_START + DAY - 1},
    )
    assert rows == file_rows("ETH_USDT", DAY_START, DAY_START + DAY)
    assert server.requests()["/api/v3/klines"] == 3


def test_the_bar_containing_now_is_the_open_candle(server, ex):
    now = DAY_START + 10 * HOUR + 30 * 60_000  # 10:30
    server.set_now(now)
    rows = ex.fetch_ohlcv("BTC/USDT", "1h", limit=5)
    assert [r[0] for r in rows] == [DAY_START + h * HOUR for h in range(6, 11)]
    assert rows == file_rows("BTC_USDT", DAY_START + 6 * HOUR, DAY_START + 11 * HOUR)
    status, _, body = raw_get(f"{server.url}/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=2")
    assert status == 200
    done, live = json.loads(body)
    assert done[6] == DAY_START + 10 * HOUR - 1 < now  # closeTime = open + interval - 1
    assert live[0] == DAY_START + 10 * HOUR and live[6] == DAY_START + 11 * HOUR - 1 > now
    assert len(live) == 12 and isinstance(live[1], str) and isinstance(live[8], int)
    assert float(live[7]) == pytest.approx(float(live[4]) * float(live[5]))  # quote volume ~ close * volume

    server.set_now(DAY_START + 10 * HOUR)  # exactly at a bar open: that bar has not started
    assert ex.fetch_ohlcv("BTC/USDT", "1h", limit=5)[-1][0] == DAY_START + 9 * HOUR
    # nothing after now, even when asked for
    assert ex.fetch_ohlcv("BTC/USDT", "1h", since=DAY_START + 12 * HOUR, limit=5) == []


def test_klines_windows_without_http():
    replay = ReplayExchange(TEST_DATA, now_ms=DAY_START + DAY)
    assert replay.now_ms == DAY_START + DAY
    by_end = replay.klines("BTCUSDT", "1h", end_time=DAY_START + 5 * HOUR, limit=3)
    assert [r[0] for r in by_end] == [DAY_START + h * HOUR for h in (3, 4, 5)]
    assert len(replay.klines("BTCUSDT", "1h")) == 10 * 24  # the default 500, but only 10 days before now
    assert len(replay.klines("BTCUSDT", "1h", limit=5000)) == 10 * 24  # limits over 1000 are capped, not refused
    assert replay.klines("BTC/USDT", "1h", start_time=DAY_START, limit=1)[0][0] == DAY_START
    with pytest.raises(ReplayError) as info:
        replay.klines("BTCUSDT", "1h", limit=0)
    assert info.value.code == -1130
    assert ReplayExchange(TEST_DATA).now_ms == FOLDER_END  # default: the close of the last bar


# ---- tickers --------------------------------------------------------------------------------------------------------


def test_tickers_use_only_past_bars(server, tmp_path):
    now = DAY_START + 10 * HOUR + 30 * 60_000
    tampered = tmp_path / "ohlcv"
    shutil.copytree(TEST_DATA, tampered)
    for path in (tampered / "1h").glob("*.parquet"):
        frame = pl.read_parquet(path)
        future = pl.col("ts") + HOUR > now  # the open candle and everything after it
        frame = frame.with_columns(
            *(pl.when(future).then(pl.col(c) * 3).otherwise(pl.col(c)) for c in ("open", "high", "low", "close")),
            pl.when(future).then(pl.col("volume") * 10).otherwise(pl.col("volume")),
        )
        frame.write_parquet(path)

    server.set_now(now)
    keys = ("timestamp", "open", "high", "low", "close", "last", "bid", "ask", "baseVolume", "quoteVolume", "vwap")
    original = binance_client(server.url).fetch_tickers()
    with running_replay_server(tampered, now_ms=now) as other:
        changed = binance_client(other.url).fetch_tickers()
        assert original.keys() == changed.keys()
        assert len(original) == 24
        for symbol, ticker in original.items():
            assert {k: ticker[k] for k in keys} == {k: changed[symbol][k] for k in keys}, symbol

        past = file_rows("BTC_USDT", now - DAY, now - HOUR + 1)  # complete bars of the 24 h before now
        btc = original["BTC/USDT"]
        assert btc["last"] == past[-1][4]
        assert btc["baseVolume"] == pytest.approx(sum(r[5] for r in past))
        assert btc["high"] == max(r[2] for r in past) and btc["low"] == min(r[3] for r in past)
        assert btc["bid"] <= btc["last"] < btc["ask"]
        assert btc["timestamp"] < now

        # once the tampered bars are in the past, the tickers see them
        later = now + HOUR // 2
        server.set_now(later)
        other.set_now(later)
        single = binance_client(other.url).fetch_ticker("BTC/USDT")
        assert single["last"] == 3 * binance_client(server.url).fetch_ticker("BTC/USDT")["last"]


def test_tickers_for_some_symbols_and_book_tickers(server, ex):
    tickers = ex.fetch_tickers(["BTC/USDT", "ETH/USDT"])
    assert set(tickers) == {"BTC/USDT", "ETH/USDT"}
    book = ex.fetch_bids_asks(["BTC/USDT"])["BTC/USDT"]
    assert book["bid"] == tickers["BTC/USDT"]["bid"] and book["ask"] == tickers["BTC/USDT"]["ask"]


def test_tickers_for_100_symbols_are_fast(tmp_path):
    """100 symbols of 5m bars (links to the shared 5m files when present, else to the 1h test files)."""
    shared_5m = REPO.parent / "shared" / "data" / "ohlcv" / "binance_spot" / "5m"
    timeframe = "5m" if shared_5m.is_dir() else "1h"
    source = sorted((shared_5m if timeframe == "5m" else TEST_DATA / "1h").glob("*.parquet"))
    folder = tmp_path / timeframe
    folder.mkdir()
    for i in range(100):
        (folder / f"C{i:03d}_USDT.parquet").symlink_to(source[i % len(source)])
    with running_replay_server(tmp_path, preload=True) as handle:
        started = time.perf_counter()
        status, _, body = raw_get(f"{handle.url}/api/v3/ticker/24hr")
        elapsed = time.perf_counter() - started
    assert status == 200 and len(json.loads(body)) == 100
    assert elapsed < 0.5


# ---- faults ---------------------------------------------------------------------------------------------------------

NETWORK_FAULTS = [
    pytest.param({"kind": "http_5xx"}, ccxt.ExchangeNotAvailable, id="503"),
    pytest.param({"kind": "http_5xx", "status": 502}, ccxt.ExchangeNotAvailable, id="502"),
    pytest.param({"kind": "rate_limit_429", "retry_after": 2}, ccxt.DDoSProtection, id="429"),
    pytest.param({"kind": "rate_limit_429", "status": 418}, ccxt.DDoSProtection, id="418"),
    pytest.param({"kind": "timeout", "delay_s": 1.5}, ccxt.RequestTimeout, id="timeout"),
    pytest.param({"kind": "truncated_json", "cut_connection": True}, ccxt.NetworkError, id="cut-connection"),
]


@pytest.mark.parametrize(("spec", "error"), NETWORK_FAULTS)
def test_network_faults_raise_and_then_clear(server, spec, error):
    ex = binance_client(server.url, timeout=500)
    ex.load_markets()
    server.set_faults([{**spec, "path": "/api/v3/klines", "count": 2}])
    server.reset_requests()
    for _ in range(2):
        with pytest.raises(error) as info:
            ex.fetch_ohlcv("BTC/USDT", "1h", limit=3)
        assert type(info.value) is error  # the exact class, not a subclass
        assert isinstance(info.value, ccxt.NetworkError)
    assert len(ex.fetch_ohlcv("BTC/USDT", "1h", limit=3)) == 3  # the fault count is used up
    log = [e for e in server.request_log() if e["path"] == "/api/v3/klines"]
    assert [e["fault"] for e in log] == [spec["kind"], spec["kind"], None]
    assert server.requests()["/api/v3/klines"] == 3


def test_rate_limit_answer_shape(server):
    server.set_faults([{"kind": "rate_limit_429", "retry_after": 7, "count": 1}])
    status, headers, body = raw_get(f"{server.url}/api/v3/ticker/24hr?symbol=BTCUSDT")
    assert status == 429 and headers["Retry-After"] == "7" and json.loads(body)["code"] == -1003
    assert raw_get(f"{server.url}/api/v3/ticker/24hr?symbol=BTCUSDT")[0] == 200


def test_5xx_with_a_binance_error_code_is_not_a_network_error(server, ex):
    # with Binance's -1001 body, ccxt maps the code first: OperationFailed, which is not a NetworkError
    body = json.dumps({"code": -1001, "msg": "Internal error; unable to process your request. Please try again."})
    server.set_faults([{"kind": "http_5xx", "path": "/api/v3/klines", "count": 1, "body": body}])
    ex.load_markets()
    with pytest.raises(ccxt.OperationFailed) as info:
        ex.fetch_ohlcv("BTC/USDT", "1h", limit=3)
    assert not isinstance(info.value, ccxt.NetworkError)


@pytest.mark.parametrize("kind", ["truncated_json", "garbled_json"])
def test_bad_json_over_http_200_is_not_raised_by_ccxt(server, kind):
    """ccxt 4.5.90 returns the unparsable text as the response: klines become rows of None, tickers fail with a
    plain AttributeError, a markets reload silently leaves no markets. A client must validate what it gets."""
    ex = binance_client(server.url)
    ex.load_markets()
    server.set_faults([{"kind": kind, "path": "/api/v3/klines", "count": 1}])
    rows = ex.fetch_ohlcv("BTC/USDT", "1h", limit=3)
    assert rows and all(None in row[1:] for row in rows)
    assert ex.fetch_ohlcv("BTC/USDT", "1h", limit=3) == file_rows("BTC_USDT", FOLDER_END - 3 * HOUR, FOLDER_END)

    server.set_faults([{"kind": kind, "path": "/api/v3/ticker/24hr", "count": 1}])
    with pytest.raises(AttributeError):
        ex.fetch_tickers()
    assert len(ex.fetch_tickers()) == 24

    server.set_faults([{"kind": kind, "path": "/api/v3/exchangeInfo", "count": 1}])
    assert ex.load_markets(reload=True) == {}
    assert len(ex.load_markets(reload=True)) == 24


def test_faults_by_symbol_and_probability(server, ex):
    ex.load_markets()
    server.set_faults([{"kind": "http_5xx", "path": "/api/v3/klines", "symbol": "ETH/USDT"}])
    assert len(ex.fetch_ohlcv("BTC/USDT", "1h", limit=2)) == 2
    with pytest.raises(ccxt.ExchangeNotAvailable):
        ex.fetch_ohlcv("ETH/USDT", "1h", limit=2)

    def pattern() -> list[bool]:
        server.set_faults([{"kind": "http_5xx", "path": "/api/v3/klines", "probability": 0.5, "seed": 7}])
        hits = []
        for _ in range(16):
            try:
                ex.fetch_ohlcv("BTC/USDT", "1h", limit=2)
                hits.append(False)
            except ccxt.ExchangeNotAvailable:
                hits.append(True)
        return hits

    first = pattern()
    assert 0 < sum(first) < 16
    assert pattern() == first  # seeded: the same requests fail again


def one_day(ex: ccxt.binance) -> list[list]:
    return ex.fetch_ohlcv("BTC/USDT", "1h", since=DAY_START, limit=100, params={"until": DAY_START + DAY - 1})


def test_missing_bars(server, ex):
    ex.load_markets()
    full = file_rows("BTC_USDT", DAY_START, DAY_START + DAY)
    dropped = [DAY_START + 3 * HOUR, DAY_START + 17 * HOUR]
    server.set_faults([{"kind": "missing_bars", "path": "/api/v3/klines", "open_times": dropped, "count": 1}])
    assert one_day(ex) == [r for r in full if r[0] not in dropped]

    server.set_faults([{"kind": "missing_bars", "symbol": "BTCUSDT", "fraction": 0.25, "count": 1, "seed": 3}])
    rows = one_day(ex)
    assert len(rows) == 18 and all(r in full for r in rows)
    assert one_day(ex) == full  # count used up


def test_duplicate_bars(server, ex):
    ex.load_markets()
    full = file_rows("BTC_USDT", DAY_START, DAY_START + DAY)
    doubled = [DAY_START + 5 * HOUR, DAY_START + 6 * HOUR]
    server.set_faults([{"kind": "duplicate_bars", "path": "/api/v3/klines", "open_times": doubled, "count": 1}])
    rows = one_day(ex)
    assert len(rows) == 26
    assert [r[0] for r in rows].count(DAY_START + 5 * HOUR) == 2
    assert sorted({tuple(r) for r in rows}) == sorted(tuple(r) for r in full)
    assert one_day(ex) == full


def test_symbols_whose_data_ended_are_inactive(server):
    server.set_now(FOLDER_END + 4 * DAY)  # no bar for 4 days: delisted, listed as BREAK like on Binance
    ex = binance_client(server.url)
    markets = ex.load_markets()
    assert len(markets) == 24 and not any(m["active"] for m in markets.values())
    btc = ex.fetch_ticker("BTC/USDT")
    assert btc["baseVolume"] == 0 and btc["last"] == file_rows("BTC_USDT", FOLDER_END - HOUR, FOLDER_END)[0][4]


def test_a_coin_whose_data_ended_mid_folder_is_break_and_keeps_its_klines(tmp_path):
    """A delisting: DOGE's file stops on 2024-03-10 at 00:00. With the clock more than 3 days later it is listed as
    BREAK (ccxt: inactive) while the others trade; its whole history is still served, as Binance does."""
    shutil.copytree(TEST_DATA / "1h", tmp_path / "1h")
    doge = tmp_path / "1h" / "DOGE_USDT.parquet"
    pl.read_parquet(doge).filter(pl.col("ts") < DAY_START).write_parquet(doge)
    with running_replay_server(tmp_path, now_ms=FOLDER_END) as handle:  # 5 days after DOGE's last bar
        ex = binance_client(handle.url)
        markets = ex.load_markets()
        assert (markets["DOGE/USDT"]["active"], markets["DOGE/USDT"]["info"]["status"]) == (False, "BREAK")
        assert all(m["active"] and m["info"]["status"] == "TRADING" for s, m in markets.items() if s != "DOGE/USDT")
        assert ex.fetch_ohlcv("DOGE/USDT", "1h", since=DAY_START - DAY, limit=100) == file_rows(
            "DOGE_USDT", DAY_START - DAY, DAY_START, tmp_path
        )
        assert ex.fetch_ohlcv("DOGE/USDT", "1h", limit=1)[0][0] == DAY_START - HOUR  # the latest page: its last bar

        handle.set_now(DAY_START + DAY)  # one day after its last bar: not stale yet
        assert binance_client(handle.url).load_markets()["DOGE/USDT"]["active"] is True


# ---- load ----------------------------------------------------------------------------------------------------------


def test_twenty_concurrent_clients_get_every_answer_right(server):
    """20 ccxt clients at once, each its own coin, each paging through 4 days of bars (10 bars a page) and asking
    for tickers in between: every bar is the file's, bit for bit, and no request fails."""
    symbols = sorted(p.stem for p in (TEST_DATA / "1h").glob("*_USDT.parquet") if p.stem != "WIF_USDT")[:20]
    assert len(symbols) == 20
    days = [DAY_START - k * DAY for k in range(4)]
    server.reset_requests()
    barrier = threading.Barrier(len(symbols))

    def client(stem: str) -> tuple[str, list[str]]:
        ex = binance_client(server.url, timeout=10_000)
        ex.load_markets()
        barrier.wait()  # all 20 start their pages together
        wrong = []
        for day in days:
            if fetch_day(ex, stem.replace("_", "/"), day, limit=10) != file_rows(stem, day, day + DAY):
                wrong.append(f"{stem} {day}")
            ex.fetch_ticker(stem.replace("_", "/"))
        return stem, wrong

    with ThreadPoolExecutor(max_workers=len(symbols)) as pool:
        results = list(pool.map(client, symbols))
    assert [stem for stem, _ in results] == symbols
    assert [w for _, wrong in results for w in wrong] == []
    requests = server.requests()
    assert requests["/api/v3/klines"] == len(symbols) * len(days) * 3  # 24 bars in pages of 10: 3 per day
