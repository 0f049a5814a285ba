"""The Telegram bot end to end: the real python-telegram-bot client against a local fake Bot API server.

``/trade N`` from an allowed chat writes the selector from the latest real universe ranking, and the next
universe run of the Engine (Dagster) selects exactly those coins. Bad arguments, unknown commands and strangers
get clear answers and change nothing. The daily summary is sent to the notification chats, and a Telegram
failure is reported in the asset's metadata without failing the run.
"""

import asyncio
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date

import polars as pl
import pytest
from dagster import AssetKey, build_sensor_context

from huracan_assets.defs.build import build_resources
from huracan_assets.runner import run_prelude
from huracan_assets.settings import config_dir
from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets.telegram.bot import build_application
from huracan_assets.telegram.commands import top_symbols
from huracan_assets.telegram.control import SELECTOR_KEY, EngineControl, latest_universe, read_selector
from huracan_assets_tests.defs.helpers import defs_for, local_settings, sqlite_instance
from huracan_assets_tests.fakes.telegram_bot_api import FakeTelegramServer

pytestmark = [pytest.mark.integration]
TOKEN = "123456:huracan-test-token"
ALLOWED, STRANGER = 4242, 999
CONFIG_DIR = config_dir()


def _converse(server: FakeTelegramServer, control: EngineControl, messages: list[tuple[int, str]]) -> list[str]:
    """Send each message in turn through the real PTB application; the bot's reply to each, in order."""
    app = build_application(TOKEN, control, server.url)
    replies: list[str] = []

    async def scenario() -> None:
        async with app:
            await app.start()
            await app.updater.start_polling(poll_interval=0.0, timeout=1)
            for chat_id, text in messages:
                before = len(server.sent())
                server.push_message(text, chat_id=chat_id)
                deadline = time.monotonic() + 10
                while len(server.sent()) == before:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"no reply to {text!r}")
                    await asyncio.sleep(0.02)
                reply = server.sent()[-1]
                assert reply["chat_id"] == chat_id
                replies.append(reply["text"])
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
    ranking_day, ranking = latest_universe(store)
    expected = top_symbols(ranking, 3)
    assert ranking_day == date(2024, 3, 5) and len(expected) == 3

    control = EngineControl(store, frozenset({ALLOWED}), max_symbols=400)
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
            ],
        )
    refused, bad, traded, zero, symbols, status, unknown, text, helped = replies
    assert "may not control the Engine" in refused and bad.startswith("Usage: /trade N") and zero.startswith("Usage")
    assert "top 3 coins" in traded and ", ".join(expected) in traded
    assert ", ".join(expected) in symbols and status == "No daily summary yet."
    assert unknown.startswith("Unknown command.") and text.startswith("Unknown command.") and "/trade N" in helped
    assert read_selector(store) == (tuple(expected), None)

    # the Engine's next universe run takes the selection, with the sensor's report of the change
    sensor = defs.resolve_sensor_def("symbols_selector_sensor")
    resources = {"object_store": build_resources(settings)["object_store"]}
    ctx = build_sensor_context(instance=instance, definitions=defs, resources=resources)
    assert f"selector changed: 3 coins ({', '.join(expected)})" in sensor(ctx).skip_message
    again = build_sensor_context(instance=instance, definitions=defs, cursor=ctx.cursor, resources=resources)
    assert sensor(again).skip_message == "selector unchanged"
    run_prelude(defs, instance, date(2024, 3, 6), date(2024, 3, 6))
    universe = pl.read_parquet(io.BytesIO(store.get("universe/2024-03-06.parquet")))
    assert sorted(universe.filter(pl.col("selected"))["symbol"]) == sorted(expected)

    # a corrupt selector: the sensor says so at once (and the universe falls back to its ranking)
    store.put(SELECTOR_KEY, b'{"symbols": ')
    tick = sensor(build_sensor_context(instance=instance, definitions=defs, cursor=ctx.cursor, resources=resources))
    assert "selector unusable" in tick.skip_message


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
