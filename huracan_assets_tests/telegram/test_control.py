"""The Telegram commands' parsing and effects on a real local object store (no Telegram here: see
integration/test_telegram_bot.py for the real client against the fake Bot API server). The champion commands
run on real published LightGBM bundles and a SQLite registry."""

import json
import re
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from huracan_assets.core.market_data.universe import UniverseRules, parse_selector, rank_universe, selector_as_of
from huracan_assets.core.models import ModelBundle
from huracan_assets.publishing import latest_key, read_pointer
from huracan_assets.registry.client import Registry, sqlite_url
from huracan_assets.storage.object_store import LocalObjectStore, ObjectStore
from huracan_assets.telegram.commands import (
    MAX_MESSAGE,
    CommandError,
    Rollback,
    Trade,
    clip,
    parse_confirm,
    parse_rollback,
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
from huracan_assets_tests.publishing.test_champion import RECIPE, SYMBOL, _publish, make_bundles

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


# --------------------------------------------------------------------------------------------- champions
ADMIN, DEPUTY, MEMBER, DESK = 7, 8, 9, -100555  # two admins, an allowed user who is not one, a second chat
CODE = re.compile(r"Reply /confirm (\d{4}) within 5 minutes")


@pytest.fixture(scope="module")
def bundles() -> dict[str, ModelBundle]:
    return make_bundles()


class Clock:
    def __init__(self) -> None:
        self.now = AT

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def published(tmp_path, bundles):
    """A store where BTCUSDT had two champions (the first as of 2024-08-05, the current as of 2024-08-10)."""
    store = LocalObjectStore(tmp_path / "champions")
    first = _publish(store, bundles["2024-08-01"], "2024-08-05")
    second = _publish(store, bundles["2024-08-07"], "2024-08-10")
    registry = Registry(sqlite_url(tmp_path / "r.db"))
    yield store, registry, first, second
    registry.dispose()


def _admin_control(store, registry, clock=None, **kw) -> EngineControl:
    """A control where ADMIN and DEPUTY may roll back, in ALLOWED and DESK."""
    kw = {"admin_user_ids": frozenset({ADMIN, DEPUTY}), "registry_factory": lambda: registry,
          "recipe_hash": RECIPE.hash, "timeframe": "1h", **kw}  # fmt: skip
    return EngineControl(store, frozenset({ALLOWED, DESK}), clock=clock or Clock(), rules=RULES, **kw)


def _contents(store: ObjectStore) -> dict[str, bytes]:
    """Every object (by top-level prefix: a local store's ``list("")`` walks the folder above its root)."""
    return {
        key: store.get(key) for top in ("champion/", "models/", "challengers/", "control/") for key in store.list(top)
    }


def _code(reply: str) -> str:
    match = CODE.search(reply)
    assert match, reply
    return match.group(1)


def test_parse_rollback_and_confirm():
    assert parse_rollback(["btcusdt", "2024-08-05", "live", " drawdown"]) == Rollback(
        "BTCUSDT", "2024-08-05", "live drawdown")  # fmt: skip
    assert parse_rollback(["ETHUSDT", "ETHUSDT-2024-08-01-0123456789ab", "bad"]).to.endswith("0123456789ab")
    bad_args = {
        "SYMBOL is missing": [],
        "TO is missing": ["BTCUSDT"],
        "REASON is missing": ["BTCUSDT", "x"],
        "not a coin symbol": ["BTC/USDT", "x", "r"],
        "not a valid date": ["BTCUSDT", "2024-13-01", "r"],
        "neither a model id": ["BTCUSDT", "a/b", "r"],
        "at most 300": ["BTCUSDT", "x", "r" * 301],
    }
    for why, bad in bad_args.items():
        with pytest.raises(CommandError, match=why):
            parse_rollback(bad)
    assert parse_confirm(["1234"]) == "1234"
    for bad in ([], ["12"], ["abcd"], ["1234", "5"], ["١٢٣٤"]):
        with pytest.raises(CommandError, match="Usage: /confirm CODE"):
            parse_confirm(bad)


def test_champions_lists_every_coin_and_flags_an_invalid_pointer(published, tmp_path):
    store, registry, _, second = published
    store.put(latest_key("ETHUSDT"), b'{"model_id": ')
    control = _admin_control(store, registry)
    reply = control.reply("champions", [], ALLOWED, MEMBER)  # any allowed person may list
    assert reply.startswith("2 champions (1 INVALID):")
    assert f"BTCUSDT: {second.model_id}, as of 2024-08-10, promotion" in reply
    assert "ETHUSDT: INVALID (pointer is not valid JSON" in reply
    assert "may not control" in control.reply("champions", [], STRANGER, MEMBER)
    empty = EngineControl(LocalObjectStore(tmp_path / "empty"), frozenset({ALLOWED}))
    assert empty.reply("champions", [], ALLOWED, MEMBER).startswith("No champion yet")
    assert "/champions" in control.reply("help", [], STRANGER, None)


def test_rollback_is_for_admins_of_allowed_chats_and_needs_its_configuration(published):
    store, registry, first, _ = published
    before = _contents(store)
    args = ["BTCUSDT", first.model_id, "live", "drawdown"]
    control = _admin_control(store, registry)
    assert "Only admins may roll back: user 9" in control.reply("rollback", args, ALLOWED, MEMBER)
    assert "Only admins" in control.reply("confirm", ["1234"], ALLOWED, MEMBER)
    assert "may not control" in control.reply("rollback", args, STRANGER, ADMIN)  # not an allowed chat
    assert "need a sender" in control.reply("rollback", args, ALLOWED, None)
    nobody = _admin_control(store, registry, admin_user_ids=frozenset())  # the default: nobody may
    assert "Only admins" in nobody.reply("rollback", args, ALLOWED, ADMIN)
    bare = EngineControl(store, frozenset({ALLOWED}), admin_user_ids=frozenset({ADMIN}))
    assert "Rollback is not configured" in bare.reply("rollback", args, ALLOWED, ADMIN)
    assert "Rollback is not configured" in bare.reply("confirm", ["1234"], ALLOWED, ADMIN)
    assert _contents(store) == before and registry.select("promotions") == [] and not control.pending


def test_admin_rollback_then_confirm_rolls_back(published):
    store, registry, first, second = published
    before = _contents(store)
    calls = []
    control = _admin_control(store, registry, registry_factory=lambda: calls.append(1) or registry)
    asked = control.reply("rollback", ["btcusdt", "2024-08-07", "live", "drawdown"], ALLOWED, ADMIN)  # by date
    assert asked.startswith(f"BTCUSDT: champion {second.model_id} -> {first.model_id} (the champion as of 2024-08-05)")
    assert "recorded as of 2024-08-10" in asked and "Reason: live drawdown" in asked
    code = _code(asked)
    assert _contents(store) == before and registry.select("promotions") == [] and not calls  # nothing written yet

    done = control.reply("confirm", [code], ALLOWED, ADMIN)
    assert done.startswith(f"BTCUSDT rolled back to {first.model_id} as of 2024-08-10 (from {second.model_id})")
    pointer = read_pointer(store, SYMBOL)
    assert (pointer.model_id, pointer.sha256, pointer.kind) == (first.model_id, first.sha256, "rollback")
    assert pointer.reason == "live drawdown" and pointer.snapshot["requested_by"] == f"telegram:{ADMIN}"
    [row] = registry.select("promotions")
    assert (row["kind"], row["from_model_id"], row["to_model_id"], row["timeframe"]) == (
        "rollback", second.model_id, first.model_id, "1h")  # fmt: skip
    assert f"BTCUSDT: {first.model_id}, as of 2024-08-10, rollback" in control.reply("champions", [], ALLOWED, 9)
    assert "No rollback is waiting for code" in control.reply("confirm", [code], ALLOWED, ADMIN)  # used once

    # by date, 2024-08-10 now names the rollback itself: in place already, confirming would only record it again
    same = control.reply("rollback", ["BTCUSDT", "2024-08-10", "again"], ALLOWED, DEPUTY)
    assert f"champion {first.model_id} -> {first.model_id}" in same and "already in place" in same
    # by model id, another admin brings the second back
    again = control.reply("rollback", ["BTCUSDT", second.model_id, "back", "again"], ALLOWED, DEPUTY)
    assert f"-> {second.model_id} (the champion as of 2024-08-10)" in again
    assert f"BTCUSDT rolled back to {second.model_id}" in control.reply("confirm", [_code(again)], ALLOWED, DEPUTY)
    assert read_pointer(store, SYMBOL).sha256 == second.sha256 and len(registry.select("promotions")) == 2
    assert len(calls) == 1  # the registry is built once, on first use


def test_confirmation_codes_are_the_askers_own_expire_and_work_once(published, bundles):
    store, registry, first, second = published
    clock = Clock()
    control = _admin_control(store, registry, clock)
    args = ["BTCUSDT", first.model_id, "live", "drawdown"]
    before = _contents(store)
    code = _code(control.reply("rollback", args, ALLOWED, ADMIN))
    wrong = "0000"  # never issued (codes are 1000-9999)
    assert "No rollback is waiting for code 0000" in control.reply("confirm", [wrong], ALLOWED, ADMIN)
    assert "given to another person or chat: refused" in control.reply("confirm", [code], ALLOWED, DEPUTY)
    assert "given to another person or chat: refused" in control.reply("confirm", [code], DESK, ADMIN)
    # expired: refused, and gone
    clock.now = AT + timedelta(minutes=5, seconds=1)
    assert "has expired: send /rollback BTCUSDT again" in control.reply("confirm", [code], ALLOWED, ADMIN)
    assert "No rollback is waiting" in control.reply("confirm", [code], ALLOWED, ADMIN)
    assert _contents(store) == before and registry.select("promotions") == []

    # the others' attempts above did not use it up: a fresh code still works for its asker, in time, once
    code = _code(control.reply("rollback", args, ALLOWED, ADMIN))
    assert "another person" in control.reply("confirm", [code], ALLOWED, DEPUTY)
    clock.now += timedelta(minutes=4, seconds=59)
    assert "rolled back to" in control.reply("confirm", [code], ALLOWED, ADMIN)
    assert "No rollback is waiting" in control.reply("confirm", [code], ALLOWED, ADMIN)
    assert len(registry.select("promotions")) == 1

    # the champion moved between the question and the confirmation: refused, nothing written
    code = _code(control.reply("rollback", ["BTCUSDT", second.model_id, "undo"], ALLOWED, ADMIN))
    third = _publish(store, bundles["2024-08-09"], "2024-08-12")
    moved = _contents(store)
    reply = control.reply("confirm", [code], ALLOWED, ADMIN)
    assert f"has changed since (now {third.model_id})" in reply and "Nothing was changed" in reply
    assert _contents(store) == moved and len(registry.select("promotions")) == 1


def test_bad_rollbacks_get_a_clear_answer_and_write_nothing(published):
    store, registry, first, second = published
    store.put(latest_key("ETHUSDT"), b"{}")  # a coin with an invalid pointer and no history
    before = _contents(store)
    control = _admin_control(store, registry)

    def ask(*args: str) -> str:
        return control.reply("rollback", list(args), ALLOWED, ADMIN)

    assert ask().startswith("Usage: /rollback SYMBOL TO REASON") and "SYMBOL is missing" in ask()
    assert "TO is missing" in ask("BTCUSDT") and "REASON is missing" in ask("BTCUSDT", first.model_id)
    assert "not a coin symbol" in ask("BTC/USDT", first.model_id, "why")
    assert "not a valid date" in ask("BTCUSDT", "2024-02-30", "why")
    unknown = ask("BTCUSDT", "BTCUSDT-2020-01-01-000000000000", "why")
    assert unknown.startswith("Rollback of BTCUSDT refused: 'BTCUSDT-2020-01-01-000000000000' was never a champion")
    assert first.model_id in unknown and unknown.endswith("Nothing was changed.")
    assert "no champion as of 2024-07-01: the history starts 2024-08-05" in ask("BTCUSDT", "2024-07-01", "why")
    assert f"{second.model_id} is already the champion of BTCUSDT" in ask("BTCUSDT", second.model_id, "why")
    assert "ETHUSDT has no champion history" in ask("ETHUSDT", "2024-08-05", "why")
    assert "SOLUSDT has no champion history" in ask("SOLUSDT", "2024-08-05", "why")
    assert "Usage: /confirm CODE" in control.reply("confirm", [], ALLOWED, ADMIN)
    assert "Usage: /confirm CODE" in control.reply("confirm", ["soon"], ALLOWED, ADMIN)
    assert _contents(store) == before and registry.select("promotions") == [] and not control.pending

    # a target whose bundle no longer verifies is refused before anything is asked
    model_bin = first.bucket_path + "model.bin"
    store.put(model_bin, store.get(model_bin)[:-1] + b"x")
    tampered = _contents(store)
    assert "does not verify" in ask("BTCUSDT", first.model_id, "why") and not control.pending
    assert _contents(store) == tampered and registry.select("promotions") == []

    # a registry that cannot be opened: the answer says so, nothing is written, the bot goes on
    def unreachable() -> Registry:
        raise ConnectionError("registry unreachable")

    broken = _admin_control(store, registry, registry_factory=unreachable)
    store.put(model_bin, before[model_bin])
    code = _code(broken.reply("rollback", ["BTCUSDT", first.model_id, "why"], ALLOWED, ADMIN))
    reply = broken.reply("confirm", [code], ALLOWED, ADMIN)
    assert reply == "/confirm failed: ConnectionError: registry unreachable. Nothing was changed."
    assert _contents(store) == before and registry.select("promotions") == []
