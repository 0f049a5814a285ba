"""Tests of the fake Telegram Bot API server, driven by the real python-telegram-bot client."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import telegram
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter
from telegram.ext import Application, ApplicationBuilder, CommandHandler, ContextTypes

from huracan_assets_tests.fakes.telegram_bot_api import FakeTelegramServer

TOKEN = "123456:TEST-fake-token"

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def server() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer(TOKEN) as fake:
        yield fake


def _bot(server: FakeTelegramServer, token: str = TOKEN) -> telegram.Bot:
    return telegram.Bot(token, base_url=f"{server.url}/bot", base_file_url=f"{server.url}/file/bot")


def _application(server: FakeTelegramServer) -> Application:
    return (
        ApplicationBuilder().token(TOKEN).base_url(f"{server.url}/bot").base_file_url(f"{server.url}/file/bot").build()
    )


async def _wait_until(predicate, timeout: float = 5.0) -> None:
    """Poll ``predicate`` from the event loop (without blocking it) until true, else fail."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


def test_get_me_and_wrong_token(server: FakeTelegramServer) -> None:
    async def scenario() -> None:
        async with _bot(server) as bot:
            me = await bot.get_me()
            assert me.username == "huracan_test_bot"
            assert me.id == server.bot_id
            assert me.is_bot
        # PTB maps HTTP 401 (and 404) to InvalidToken; Bot.initialize() calls getMe and re-raises it
        with pytest.raises(InvalidToken):
            async with _bot(server, token="999:wrong-token"):
                pass

    asyncio.run(scenario())
    assert [name for name, _ in server.calls()] == ["getMe", "getMe", "getMe"]


# PTB's own RetryAfter.__init__ reads its deprecated int-valued ``retry_after`` attribute
@pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")
def test_send_message_limits_and_injected_failures(server: FakeTelegramServer) -> None:
    async def scenario() -> None:
        async with _bot(server) as bot:
            message = await bot.send_message(7, "hello")
            assert message.text == "hello"
            assert message.chat.id == 7
            assert message.from_user.id == server.bot_id

            # PTB strips Telegram's "Bad Request: " prefix and capitalises the rest
            with pytest.raises(BadRequest, match=r"^Message is too long$"):
                await bot.send_message(7, "x" * 5000)
            with pytest.raises(BadRequest, match=r"^Message text is empty$"):
                await bot.send_message(7, "  ")

            # markup is not validated, only recorded
            await bot.send_message(7, "*bold", parse_mode="MarkdownV2")

            server.fail_next("sendMessage", 500)
            with pytest.raises(NetworkError) as raised:
                await bot.send_message(7, "lost")
            assert type(raised.value) is NetworkError  # 5xx -> plain NetworkError (BadRequest subclasses it)
            await bot.send_message(7, "after failure")

            server.fail_next("sendMessage", 429, retry_after=3)
            # (RetryAfter.retry_after is deprecated as an int in PTB 22.2+, so check the message)
            with pytest.raises(RetryAfter, match="Retry in 3 seconds"):
                await bot.send_message(7, "flood")

    asyncio.run(scenario())
    sent = server.sent(chat_id=7)
    assert [item["text"] for item in sent] == ["hello", "*bold", "after failure"]
    assert sent[1]["parse_mode"] == "MarkdownV2"
    assert [item["message_id"] for item in sent] == [1, 2, 3]
    assert server.sent(chat_id=8) == []
    assert len(server.calls("sendMessage")) == 7  # failed attempts are recorded as calls too


def test_get_updates_offsets_and_long_poll(server: FakeTelegramServer) -> None:
    first = server.push_message("/start", chat_id=5)
    second = server.push_message("hi", chat_id=5)

    async def scenario() -> None:
        async with _bot(server) as bot:
            updates = await bot.get_updates(timeout=0)
            assert [u.update_id for u in updates] == [first, second]
            assert updates[0].message.entities[0].type == "bot_command"
            assert updates[0].message.entities[0].length == len("/start")
            assert updates[1].message.entities == ()

            updates = await bot.get_updates(offset=second, timeout=0)
            assert [u.update_id for u in updates] == [second]
            assert server.confirmed_offset == second
            assert (await bot.get_webhook_info()).pending_update_count == 1

            # long poll: the call waits and returns as soon as an update arrives
            later = threading.Timer(0.2, server.push_message, args=("late", 5))
            later.start()
            started = time.monotonic()
            updates = await bot.get_updates(offset=second + 1, timeout=5)
            assert time.monotonic() - started < 1.5
            assert [u.message.text for u in updates] == ["late"]

            await bot.set_my_commands([("ping", "Ping the bot")])
            assert [c.command for c in await bot.get_my_commands()] == ["ping"]
            assert await bot.delete_my_commands()
            assert await bot.get_my_commands() == ()

    asyncio.run(scenario())
    _, params = server.calls("getUpdates")[1]
    assert params["offset"] == second


def test_raw_http_shapes(server: FakeTelegramServer) -> None:
    base = f"{server.url}/bot{TOKEN}"
    answer = httpx.post(f"{base}/sendMessage", json={"chat_id": 3, "text": "json", "reply_markup": {"k": 1}})
    assert answer.json()["result"]["text"] == "json"
    answer = httpx.get(f"{base}/sendMessage", params={"chat_id": "3", "text": "query"})
    assert answer.json()["result"]["chat"] == {"id": 3, "type": "private"}
    assert [(item["chat_id"], item["text"]) for item in server.sent(3)] == [(3, "json"), (3, "query")]
    assert server.sent(3)[0]["reply_markup"] == {"k": 1}

    answer = httpx.post(f"{base}/sendMessage", data={"chat_id": "3", "text": "x" * 4097})
    assert answer.status_code == 400
    assert answer.json() == {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}

    answer = httpx.post(f"{base}/noSuchMethod")
    assert answer.status_code == 404
    assert answer.json() == {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
    answer = httpx.post(f"{server.url}/botWRONG/getMe")
    assert answer.status_code == 401
    assert answer.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


def test_application_command_round_trip(server: FakeTelegramServer) -> None:
    async def ping(update: telegram.Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_text("pong " + " ".join(context.args or []))

    def pongs() -> list[str]:
        return [item["text"] for item in server.sent(chat_id=42)]

    app = _application(server)
    app.add_handler(CommandHandler("ping", ping))
    ids: list[int] = []

    async def scenario() -> None:
        async with app:
            await app.start()
            await app.updater.start_polling(poll_interval=0.0, timeout=1)
            ids.append(server.push_message("/ping 1 2", chat_id=42))
            await _wait_until(lambda: len(pongs()) >= 1)
            assert pongs() == ["pong 1 2"]

            ids.append(server.push_message("/ping 3", chat_id=42))
            await _wait_until(lambda: server.confirmed_offset > ids[1])  # PTB confirmed the second update
            await asyncio.sleep(0.1)
            await app.updater.stop()
            await app.stop()

    asyncio.run(scenario())
    assert pongs() == ["pong 1 2", "pong 3"]  # each update handled exactly once
    assert server.confirmed_offset == ids[1] + 1
    assert server.calls("getWebhookInfo") == []
    assert [name for name, _ in server.calls()][:3] == ["getMe", "deleteWebhook", "getUpdates"]
