"""The Telegram commands' parsing and effects on a real local object store (no Telegram here: see
integration/test_telegram_bot.py for the real client against the fake Bot API server)."""

import json
from datetime import UTC, date, datetime

import polars as pl
import pytest

from huracan_assets.core.market_data.universe import UNIVERSE_SCHEMA, parse_selector
from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets.telegram.commands import (
    MAX_MESSAGE,
    CommandError,
    Trade,
    clip,
    parse_trade,
    status_reply,
    top_symbols,
)
from huracan_assets.telegram.control import (
    HISTORY_PREFIX,
    SELECTOR_KEY,
    EngineControl,
    latest_universe,
    read_selector,
    write_selector,
)

ALLOWED, STRANGER = 1001, 2002
AT = datetime(2024, 8, 10, 7, 30, tzinfo=UTC)


def _universe(day: date) -> pl.DataFrame:
    rows = [  # symbol, rank, reason: what rank_universe writes (see core/market_data/universe.py)
        ("BTCUSDT", 1, "top by quote volume"),
        ("ETHUSDT", 2, "top by quote volume"),
        ("NEWUSDT", 3, "history < 30 days"),
        ("SOLUSDT", 4, "top by quote volume"),
        ("THINUSDT", 5, "spread > 50 bps"),
        ("XRPUSDT", 6, "below top 3"),
        ("GONEUSDT", None, "not listed as of D"),
    ]
    frame = pl.DataFrame(
        {
            "symbol": [r[0] for r in rows],
            "rank": [r[1] for r in rows],
            "quote_volume": [1e9 / (i + 1) for i in range(len(rows))],
            "spread_bps": [2.0] * len(rows),
            "first_bar_ts": [0] * len(rows),
            "history_days": [100.0] * len(rows),
            "selected": [r[2] == "top by quote volume" for r in rows],
            "reason": [r[2] for r in rows],
        }
    )
    return frame.select([pl.col(c).cast(t) for c, t in UNIVERSE_SCHEMA.items()])


@pytest.fixture
def store(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    for day in (date(2024, 8, 8), date(2024, 8, 9)):
        frame = _universe(day) if day == date(2024, 8, 9) else _universe(day).reverse()
        path = tmp_path / f"{day}.parquet"
        frame.write_parquet(path)
        store.put(f"universe/{day}.parquet", path.read_bytes())
    return store


def _control(store, **kw):
    return EngineControl(store, frozenset({ALLOWED}), max_symbols=kw.pop("max_symbols", 400), clock=lambda: AT)


def test_parse_trade():
    assert parse_trade(["10"], 400) == Trade(10) and parse_trade(["ALL"], 400) == Trade(None)
    for bad in ([], ["0"], ["401"], ["-3"], ["ten"], ["1.5"], ["1", "2"]):
        with pytest.raises(CommandError, match="Usage: /trade N"):
            parse_trade(bad, 400)


def test_top_symbols_skips_coins_the_filters_rule_out():
    frame = _universe(date(2024, 8, 9))
    assert top_symbols(frame, 3) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]  # NEW (history) is ruled out
    assert top_symbols(frame, 10) == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]  # THIN, GONE never


def test_trade_writes_the_selector_from_the_latest_ranking_and_keeps_history(store):
    control = _control(store)
    assert latest_universe(store)[0] == date(2024, 8, 9)
    reply = control.reply("trade", ["2"], ALLOWED, 7)
    assert "top 2 coins" in reply and "BTCUSDT, ETHUSDT" in reply and "2024-08-09" in reply
    doc = json.loads(store.get(SELECTOR_KEY))
    assert doc["symbols"] == ["BTCUSDT", "ETHUSDT"] and doc["requested_by"] == 7 and doc["chat_id"] == ALLOWED
    assert parse_selector(doc) == ("BTCUSDT", "ETHUSDT") and read_selector(store) == (("BTCUSDT", "ETHUSDT"), None)
    # more than the ranking holds: what there is, and the reply says so
    reply = control.reply("trade", ["9"], ALLOWED, 7)
    assert "only 4 of the 9 requested" in reply
    # /trade all clears the override; every version stays in the history
    assert "Override removed" in control.reply("trade", ["all"], ALLOWED, 7)
    assert read_selector(store) == (None, None)
    history = sorted(store.list(HISTORY_PREFIX))
    assert len(history) == 3
    assert sorted(len(json.loads(store.get(k))["symbols"]) for k in history) == [0, 2, 4]
    assert "No override" in control.reply("symbols", [], ALLOWED, 7)


def test_bad_commands_and_strangers_change_nothing(store):
    control = _control(store)
    control.reply("trade", ["3"], ALLOWED, 7)
    before = store.get(SELECTOR_KEY)
    replies = [
        control.reply("trade", ["abc"], ALLOWED, 7),
        control.reply("trade", ["0"], ALLOWED, 7),
        control.reply("trade", [], ALLOWED, 7),
        control.reply("trade", ["2"], STRANGER, 9),
        control.reply("status", [], STRANGER, 9),
    ]
    assert all(r.startswith("Usage: /trade N") for r in replies[:3])
    assert all("may not control the Engine" in r for r in replies[3:])
    assert control.reply("nonsense", [], ALLOWED, 7).startswith("Unknown command.")
    assert "/trade N" in control.reply("help", [], STRANGER, 9)  # help is for everyone
    assert store.get(SELECTOR_KEY) == before and len(list(store.list(HISTORY_PREFIX))) == 1


def test_a_corrupt_selector_is_reported_and_a_failing_store_answers_with_its_error(store, tmp_path):
    store.put(SELECTOR_KEY, b'{"symbols": "BTCUSDT"')
    assert "unusable" in _control(store).reply("symbols", [], ALLOWED, 7)
    with pytest.raises(ValueError):
        write_selector(store, {"symbols": "BTCUSDT"})  # never written in a shape the universe would refuse
    # a store that cannot be written (its control/ folder is a file): the reply says so, nothing is written
    blocked = LocalObjectStore(tmp_path / "blocked")
    blocked.put("universe/2024-08-09.parquet", store.get("universe/2024-08-09.parquet"))
    (tmp_path / "blocked" / "control").write_text("not a directory")
    reply = EngineControl(blocked, frozenset({ALLOWED}), clock=lambda: AT).reply("trade", ["2"], ALLOWED, 7)
    assert reply.startswith("/trade failed:") and "Nothing was changed" in reply
    assert not blocked.exists(SELECTOR_KEY)
    no_ranking = EngineControl(LocalObjectStore(tmp_path / "empty"), frozenset({ALLOWED}), clock=lambda: AT)
    assert "No universe ranking yet" in no_ranking.reply("trade", ["2"], ALLOWED, 7)


def test_status_and_clip():
    assert status_reply(None) == "No daily summary yet."
    summary = {
        "date": "2024-08-09",
        "timeframe": "1h",
        "symbols_done": 20,
        "skipped": {"TONUSDT": "short history"},
        "failed": {"XUSDT": "exchange error"},
        "trades": {"challenger_trades": 40, "champion_trades": 12, "hit_rate": 0.55, "net_bps_per_trade": -3.25},
        "walk_forward": {"models": 20, "mean_oos_auc": 0.512},
        "promotions": {"BTCUSDT": {"to": "BTCUSDT-2024-08-09-abc"}},
    }
    text = status_reply(summary)
    assert "2024-08-09" in text and "coins done 20, skipped 1, failed 1" in text and "hit rate 55%" in text
    assert "net -3.2 bps/trade" in text and "promotions: BTCUSDT" in text and "XUSDT: exchange error" in text
    long = clip("x" * (MAX_MESSAGE + 50))
    assert len(long) == MAX_MESSAGE and long.endswith("(cut)")
