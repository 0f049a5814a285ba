"""The Telegram bot end to end: the real python-telegram-bot client against a local fake Bot API server.

``/trade N`` from an allowed chat writes the selector from the latest real universe ranking, and the next
universe run of the Engine (Dagster) selects exactly those coins. Bad arguments, unknown commands and strangers
get clear answers and change nothing. ``/rollback`` then ``/confirm CODE`` re-points a coin at an earlier
champion. The daily summary is sent to the notification chats, and a Telegram failure is reported in the asset's
metadata without failing the run.
"""

import asyncio
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime

import polars as pl
import pytest
from dagster import AssetKey, build_sensor_context

from huracan_assets.core.market_data.universe import UniverseRules
from huracan_assets.defs.build import build_resources
from huracan_assets.publishing import read_pointer
from huracan_assets.registry.client import Registry, sqlite_url
from huracan_assets.runner import run_prelude
from huracan_assets.settings import config_dir
from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets.telegram.bot import build_application
from huracan_assets.telegram.commands import top_symbols
from huracan_assets.telegram.control import SELECTOR_KEY, EngineControl, latest_universe, read_selector
from huracan_assets_tests.defs.helpers import defs_for, local_settings, sqlite_instance
from huracan_assets_tests.fakes.telegram_bot_api import FakeTelegramServer
from huracan_assets_tests.publishing.test_champion import RECIPE, SYMBOL, _publish
from huracan_assets_tests.telegram.test_control import make_bundles

pytestmark = [pytest.mark.integration]
TOKEN = "123456:huracan-test-token"
ALLOWED, STRANGER = 4242, 999
CONFIG_DIR = config_dir()


GROUP = -100777
SENTINEL = 5555  # a private chat whose /help marks that the bot has dealt with everything before it


def _group_update(text: str, user_id: int | None) -> dict:
    """A message in a group chat, with a sender or (user_id None) sent by an anonymous admin."""
    chat = {"id": GROUP, "type": "supergroup", "title": "desk"}
    sender = {"from": {"id": user_id, "is_bot": False, "first_name": "op"}} if user_id else {"sender_chat": chat}
    entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}] if text.startswith("/") else []
    return {"message": {"message_id": int(time.time() * 1000) % 10**9, "date": int(time.time()), "chat": chat,
                        "text": text, "entities": entities, **sender}}  # fmt: skip


def _converse(server: FakeTelegramServer, control: EngineControl, messages: list) -> list[str | None]:
    """Send each message (``(chat_id, text)`` from a private chat, a whole update dict, or a function of the
    replies so far returning either) through the real PTB application; the bot's reply to each, or None when it
    (rightly) said nothing."""
    app = build_application(TOKEN, control, server.url)
    replies: list[str | None] = []

    async def scenario() -> None:
        async with app:
            await app.start()
            await app.updater.start_polling(poll_interval=0.0, timeout=1)
            for message in messages:
                if callable(message):
                    message = message(replies)
                before, marks = len(server.sent()), len(server.sent(SENTINEL))
                if isinstance(message, dict):
                    server.push_update(message)
                else:
                    server.push_message(message[1], chat_id=message[0])
                server.push_message("/help", chat_id=SENTINEL)  # updates are handled in order
                deadline = time.monotonic() + 10
                while len(server.sent(SENTINEL)) == marks:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"the bot did not get past {message!r}")
                    await asyncio.sleep(0.02)
                answers = [m["text"] for m in server.sent()[before:] if m["chat_id"] != SENTINEL]
                assert len(answers) <= 1, answers
                replies.append(answers[0] if answers else None)
            await app.updater.stop()
            await app.stop()

    asyncio.run(scenario())
    return replies


def test_trade_command_selects_the_coins_of_the_next_universe_run(home, tmp_path, test_data_dir):
    settings = local_settings(test_data_dir)
    defs = defs_for(settings)
    instance = sqlite_instance(tmp_path)
    run_prelude(defs, instance, date(2024, 3, 5), date(2024, 3, 5))
    store = LocalObjectStore(settings.store_root)
    u = settings.universe
    rules = UniverseRules(u.max_symbols, u.min_history_days, u.min_quote_volume, u.max_spread_bps)
    ranking_day, ranking = latest_universe(store)
    expected = top_symbols(ranking, 3, rules)
    assert ranking_day == date(2024, 3, 5) and expected == ranking.sort("rank")["symbol"].head(3).to_list()

    # the command is given on 2024-03-06 at 10:00 UTC: it applies from the run of 03-06 (at 02:00 on 03-07)
    clock = lambda: datetime(2024, 3, 6, 10, tzinfo=UTC)  # noqa: E731
    control = EngineControl(store, frozenset({ALLOWED, GROUP}), 400, clock, rules, frozenset({ALLOWED, 31}))
    with FakeTelegramServer(TOKEN) as server:
        replies = _converse(
            server,
            control,
            [
                (STRANGER, "/trade 2"),
                (ALLOWED, "/trade abc"),
                (ALLOWED, "/trade 3"),
                (ALLOWED, "/trade 0"),
                (ALLOWED, "/symbols"),
                (ALLOWED, "/status"),
                (ALLOWED, "/launch"),
                (ALLOWED, "hello"),
                (STRANGER, "/help"),
                _group_update("/status@OtherBot", 31),  # for another bot: silence
                _group_update("good morning", 31),  # group chatter: silence
                _group_update("/trade 1", None),  # an anonymous admin: refused
                _group_update("/trade 1", 32),  # a member who may not command: refused
                _group_update("/symbols@huracan_test_bot", 31),  # addressed to us by name
            ],
        )
    refused, bad, traded, zero, symbols, status, unknown, text, helped, other, chatter, anon, member, named = replies
    assert "may not control the Engine" in refused and bad.startswith("Usage: /trade N") and zero.startswith("Usage")
    assert "top 3 coins" in traded and ", ".join(expected) in traded
    assert ", ".join(expected) in symbols and status == "No daily summary yet."
    assert unknown.startswith("Unknown command.") and text.startswith("Unknown command.") and "/trade N" in helped
    assert other is None and chatter is None and "need a sender" in anon and "may not control" in member
    assert ", ".join(expected) in named
    assert read_selector(store) == (tuple(expected), None)

    # the sensor reports the change; the universe of 03-06 takes the selection, a rerun of 03-05 does not
    sensor = defs.resolve_sensor_def("symbols_selector_sensor")
    resources = {"object_store": build_resources(settings)["object_store"]}
    ctx = build_sensor_context(instance=instance, definitions=defs, resources=resources)
    assert f"selector changed: 3 coins ({', '.join(expected)})" in sensor(ctx).skip_message
    again = build_sensor_context(instance=instance, definitions=defs, cursor=ctx.cursor, resources=resources)
    assert sensor(again).skip_message == "selector unchanged"
    run_prelude(defs, instance, date(2024, 3, 5), date(2024, 3, 6))

    def selected(day: str) -> list[str]:
        frame = pl.read_parquet(io.BytesIO(store.get(f"universe/{day}.parquet")))
        return sorted(frame.filter(pl.col("selected"))["symbol"])

    assert selected("2024-03-06") == sorted(expected)
    assert selected("2024-03-05") == sorted(ranking.filter(pl.col("selected"))["symbol"])  # the past stays
    assert len(selected("2024-03-05")) > 3

    # a corrupt selector: the sensor says so at once, and the universe falls back to its own ranking
    store.put(SELECTOR_KEY, b'{"symbols": ')
    tick = sensor(build_sensor_context(instance=instance, definitions=defs, cursor=ctx.cursor, resources=resources))
    assert "selector unusable" in tick.skip_message
    run_prelude(defs, instance, date(2024, 3, 6), date(2024, 3, 6))
    assert len(selected("2024-03-06")) > 3
    meta = instance.get_latest_materialization_event(AssetKey("universe")).asset_materialization.metadata
    assert "not JSON" in meta["selector_error"].value and meta["source"].value == {"2024-03-06": "ranking"}


def test_rollback_then_confirm_over_the_wire(tmp_path):
    """An admin rolls a coin back to its earlier champion: the bot checks and asks, the code confirms it."""
    bundles = make_bundles()
    store = LocalObjectStore(tmp_path / "store")
    first = _publish(store, bundles["2024-08-01"], "2024-08-05")
    second = _publish(store, bundles["2024-08-07"], "2024-08-10")
    registry = Registry(sqlite_url(tmp_path / "r.db"))
    deputy = 4343  # another admin, in their own chat
    control = EngineControl(store, frozenset({ALLOWED, STRANGER, deputy}), admin_user_ids=frozenset({ALLOWED, deputy}),
                            registry_factory=lambda: registry, recipe_hash=RECIPE.hash, timeframe="1h")  # fmt: skip

    def code(replies: list[str | None]) -> str:
        return re.search(r"Reply /confirm (\d{4}) within 5 minutes", replies[1] or "").group(1)

    with FakeTelegramServer(TOKEN) as server:
        replies = _converse(
            server,
            control,
            [
                (STRANGER, f"/rollback {SYMBOL} {first.model_id} not mine to do"),  # allowed, not an admin
                (ALLOWED, f"/rollback {SYMBOL.lower()} {first.model_id} live   drawdown"),
                lambda replies: (deputy, f"/confirm {code(replies)}"),  # a code given to someone else
                lambda replies: (ALLOWED, f"/confirm {code(replies)}"),
                lambda replies: (ALLOWED, f"/confirm {code(replies)}"),  # used already
                (ALLOWED, "/champions"),
            ],
        )
    refused, asked, stolen, done, reused, champions = replies
    assert refused.startswith(f"Only admins may roll back: user {STRANGER}")
    assert asked.startswith(f"{SYMBOL}: champion {second.model_id} -> {first.model_id}")
    assert "Reason: live drawdown" in asked and "Nothing is changed until then" in asked
    assert "given to another person or chat: refused" in stolen
    assert done.startswith(f"{SYMBOL} rolled back to {first.model_id} as of 2024-08-10 (from {second.model_id})")
    assert reused.startswith("No rollback is waiting for code")
    assert f"{SYMBOL}: {first.model_id}, as of 2024-08-10, rollback" in champions
    pointer = read_pointer(store, SYMBOL)
    assert (pointer.model_id, pointer.kind, pointer.snapshot["requested_by"]) == (
        first.model_id, "rollback", f"telegram:{ALLOWED}")  # fmt: skip
    [row] = registry.select("promotions")
    assert (row["kind"], row["to_model_id"], row["reason"]) == ("rollback", first.model_id, "live drawdown")
    registry.dispose()


def test_daily_summary_goes_to_telegram_and_a_failure_does_not_fail_the_run(home, tmp_path, test_data_dir, monkeypatch):
    monkeypatch.setenv("HURACAN_TEST_TELEGRAM_TOKEN", TOKEN)
    with FakeTelegramServer(TOKEN) as server:
        settings = local_settings(
            test_data_dir,
            symbols="BTCUSDT,ETHUSDT",
            telegram={"notify": True, "token_env": "HURACAN_TEST_TELEGRAM_TOKEN", "base_url": server.url,
                      "notify_chat_ids": [ALLOWED]},
        )  # fmt: skip
        defs = defs_for(settings)
        instance = sqlite_instance(tmp_path)
        run_prelude(defs, instance, date(2024, 3, 5), date(2024, 3, 5))
        job = defs.resolve_job_def("daily_summary_job")

        def summary_run() -> str:
            assert job.execute_in_process(instance=instance, partition_key="2024-03-05").success
            event = instance.get_latest_materialization_event(AssetKey("daily_summary"))
            return event.asset_materialization.metadata["telegram"].value

        assert summary_run() == "sent"
        (message,) = server.sent(ALLOWED)
        assert message["text"].startswith("Huracan daily summary 2024-03-05 (1h)")

        server.fail_next("sendMessage", 500)
        outcome = summary_run()
        assert outcome.startswith("failed") and str(ALLOWED) in outcome and len(server.sent(ALLOWED)) == 1
        assert summary_run() == "sent" and len(server.sent(ALLOWED)) == 2  # and the next one goes through

        # a rejected token: reported without the token itself; no token at all: reported, the run still succeeds
        monkeypatch.setenv("HURACAN_TEST_TELEGRAM_TOKEN", "999:WRONGSECRET")
        outcome = summary_run()
        assert outcome.startswith("failed") and "InvalidToken" in outcome and "WRONGSECRET" not in outcome
        monkeypatch.delenv("HURACAN_TEST_TELEGRAM_TOKEN")
        assert "HURACAN_TEST_TELEGRAM_TOKEN is not set" in summary_run()
        assert len(server.sent(ALLOWED)) == 2


def test_huracan_bot_command_answers_and_stops_cleanly(home, tmp_path, test_data_dir):
    """``huracan bot`` as an operator runs it: config from files, the token from the environment only."""
    run_prelude(defs_for(local_settings(test_data_dir)), sqlite_instance(tmp_path), date(2024, 3, 5), date(2024, 3, 5))
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    with FakeTelegramServer(TOKEN) as server:
        (config / "local.yaml").write_text(
            (config / "local.yaml").read_text()
            + f"telegram:\n  base_url: {server.url}\n  allowed_chat_ids: [{ALLOWED}]\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HURACAN_", "DAGSTER_"))}
        env.update(HURACAN_CONFIG_DIR=str(config), HURACAN_DATA_DIR=str(test_data_dir))
        cmd = [sys.executable, "-m", "huracan_assets.cli", "bot", "--home", str(home)]
        missing = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert missing.returncode == 2 and "HURACAN_TELEGRAM_TOKEN" in missing.stderr  # no token: a clear error
        wrong = subprocess.run(cmd, env={**env, "HURACAN_TELEGRAM_TOKEN": "999:WRONGSECRET"}, capture_output=True,
                               text=True, timeout=120)  # fmt: skip
        assert wrong.returncode == 2 and "InvalidToken" in wrong.stderr, wrong.stderr[-2000:]
        assert "WRONGSECRET" not in wrong.stdout + wrong.stderr  # Telegram's error quotes it: redacted
        proc = subprocess.Popen(cmd, env={**env, "HURACAN_TELEGRAM_TOKEN": TOKEN}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            server.push_message("/trade 2", chat_id=ALLOWED)
            (reply,) = server.wait_for_sent(1, chat_id=ALLOWED, timeout=60)
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
    assert "top 2 coins" in reply["text"], (reply, err[-2000:])
    assert TOKEN not in out + err  # the secret never reaches the logs
    assert read_selector(LocalObjectStore(home / "store"))[0] is not None
