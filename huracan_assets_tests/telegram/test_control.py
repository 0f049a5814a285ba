"""The Telegram commands' parsing and effects on a real local object store (no Telegram here: see
integration/test_telegram_bot.py for the real client against the fake Bot API server)."""

import json
from datetime import UTC, date, datetime

import polars as pl
import pytest

from huracan_assets.core.market_data.universe import UniverseRules, parse_selector, rank_universe, selector_as_of
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


RULES = UniverseRules(max_symbols=3, min_history_days=1.0, max_spread_bps=50.0)
END_MS = 1_723_248_000_000  # 2024-08-10 00:00 UTC
DAY_MS = 86_400_000


def _universe(explicit=None) -> pl.DataFrame:
    """A ranking as the universe asset stores it (rank_universe), with coins the filters rule out."""
    stats = pl.DataFrame(
        {
            "symbol": ["BTCUSDT", "ETHUSDT", "NEWUSDT", "SOLUSDT", "THINUSDT", "XRPUSDT"],
            "quote_volume": [1e9, 5e8, 4e8, 3e8, 2e8, 1e8],
            "first_bar_ts": [0, 0, END_MS - DAY_MS // 2, 0, 0, 0],  # NEW: half a day of history
            "spread_bps": [2.0, 3.0, 5.0, 4.0, 80.0, 6.0],  # THIN: a thin book
        }
    )
    return rank_universe(stats, as_of_end_ms=END_MS, rules=RULES, explicit=explicit)


@pytest.fixture
def store(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    for day in (date(2024, 8, 8), date(2024, 8, 9)):
        frame = _universe() if day == date(2024, 8, 9) else _universe(("XRPUSDT",))
        path = tmp_path / f"{day}.parquet"
        frame.write_parquet(path)
        store.put(f"universe/{day}.parquet", path.read_bytes())
    return store


def _control(store, **kw):
    return EngineControl(store, frozenset({ALLOWED}), max_symbols=400, clock=lambda: AT, rules=RULES, **kw)


def test_parse_trade():
    assert parse_trade(["10"], 400) == Trade(10) and parse_trade(["ALL"], 400) == Trade(None)
    for bad in ([], ["0"], ["401"], ["-3"], ["ten"], ["1.5"], ["1", "2"]):
        with pytest.raises(CommandError, match="Usage: /trade N"):
            parse_trade(bad, 400)


def test_top_symbols_skips_coins_the_filters_rule_out_even_when_a_selector_bypassed_them():
    plain = _universe()
    assert sorted(plain.filter("selected")["symbol"]) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert top_symbols(plain, 3, RULES) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]  # NEW (history) is ruled out
    assert top_symbols(plain, 10, RULES) == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]  # THIN never
    # a ranking made while a selector named NEW and THIN: they were selected, but they still fail the filters
    named = _universe(("NEWUSDT", "THINUSDT", "GONEUSDT"))
    assert sorted(named.filter("selected")["symbol"]) == ["NEWUSDT", "THINUSDT"]
    assert top_symbols(named, 10, RULES) == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]  # GONE: not listed


def test_selector_as_of_keeps_the_past():
    def doc(symbols, at=None):
        return {"symbols": symbols, **({"at": at} if at else {})}

    v1, v2 = doc(["BTCUSDT"], "2024-08-05T10:00:00+00:00"), doc([], "2024-08-07T09:00:00+00:00")
    v3 = doc(["ETHUSDT"], "2024-08-08T01:00:00+00:00")
    run = lambda d: int(datetime(2024, 8, d + 1, 2, tzinfo=UTC).timestamp() * 1000)  # noqa: E731  D's run
    assert selector_as_of(v3, [v1, v2, v3], run(4)) is None  # before any command: the ranking
    assert selector_as_of(v3, [v1, v2, v3], run(5)) == v1 and selector_as_of(v3, [v1, v2], run(6)) == v1
    assert selector_as_of(v3, [v1, v2, v3], run(7)) == v3  # 01:00 on the 8th: before the 02:00 run of the 7th
    assert selector_as_of(v2, [v1, v2], run(7)) == v2  # "/trade all": no override from then on
    manual = doc(["SOLUSDT"])
    assert selector_as_of(manual, [v1], run(1)) == manual  # a hand-written file applies to every day


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
    assert "only 4 of the 9 requested" in reply and "days old" not in reply
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


def test_people_hand_written_files_and_odd_input(store):
    # a message without a sender (anonymous group admin, channel) is refused; so is someone not on the list
    assert "need a sender" in _control(store).reply("trade", ["2"], ALLOWED, None)
    team = _control(store, allowed_user_ids=frozenset({7}))
    assert "may not control" in team.reply("trade", ["2"], ALLOWED, 8) and not store.exists(SELECTOR_KEY)
    # a hand-written selector is kept in the history when the bot replaces it
    store.put(SELECTOR_KEY, b'{"symbols": ["DOGEUSDT"]}\n')
    assert "top 2 coins" in team.reply("trade", ["2"], ALLOWED, 7)
    kept = [k for k in store.list(HISTORY_PREFIX) if "replaced-" in k]
    assert len(kept) == 1 and store.get(kept[0]) == b'{"symbols": ["DOGEUSDT"]}\n'
    # digits that are not ASCII, names that clean to nothing, an old ranking
    assert team.reply("trade", ["²"], ALLOWED, 7).startswith("Usage: /trade N")
    with pytest.raises(ValueError, match="names no coin"):
        parse_selector({"symbols": ["!!!"]})
    late = EngineControl(store, frozenset({ALLOWED}), clock=lambda: datetime(2024, 8, 20, tzinfo=UTC), rules=RULES)
    assert "that ranking is 11 days old" in late.reply("trade", ["1"], ALLOWED, 7)
