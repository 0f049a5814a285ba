"""The Telegram bot (python-telegram-bot): commands in, replies out; the effects live in ``control.py``.

Every message gets an answer: a command's result, the reason it was refused (a chat that is not allowed, bad
arguments), or the help. A failure inside a command (the store unreachable, say) is answered with its error
and logged; it never stops the bot. ``send_text`` posts the daily summary to the notification chats.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from telegram import Bot, Update
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder, CommandHandler, ContextTypes, MessageHandler, filters

from huracan_assets.telegram.commands import clip
from huracan_assets.telegram.control import EngineControl

log = logging.getLogger(__name__)
COMMANDS = ("trade", "symbols", "status", "help", "start")


def _urls(base_url: str | None) -> dict[str, str]:
    """PTB's endpoint arguments for a Bot API server other than api.telegram.org (a local one in tests)."""
    if not base_url:
        return {}
    root = base_url.rstrip("/")
    return {"base_url": f"{root}/bot", "base_file_url": f"{root}/file/bot"}


def build_application(token: str, control: EngineControl, base_url: str | None = None) -> Application:
    """The bot's PTB application, with a handler per command; run it with ``run_polling`` (see ``run_bot``)."""
    builder = ApplicationBuilder().token(token)
    urls = _urls(base_url)
    if urls:
        builder = builder.base_url(urls["base_url"]).base_file_url(urls["base_file_url"])
    app = builder.build()

    async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat, user = update.effective_message, update.effective_chat, update.effective_user
        if message is None or chat is None:
            return
        text = message.text or ""
        name = text.split()[0][1:].split("@")[0].lower() if text.startswith("/") else ""
        reply = control.reply(name, list(context.args or []), chat.id, user.id if user else chat.id)
        await message.reply_text(clip(reply))

    app.add_handler(CommandHandler(COMMANDS, handle))
    app.add_handler(MessageHandler(filters.COMMAND | filters.TEXT, handle))  # anything else: the help

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram update %s failed: %s", getattr(update, "update_id", "?"), context.error)

    app.add_error_handler(on_error)
    return app


def run_bot(token: str, control: EngineControl, base_url: str | None = None) -> None:  # pragma: no cover - blocks
    """Poll for commands until interrupted (``huracan bot``)."""
    build_application(token, control, base_url).run_polling(allowed_updates=["message"])


async def _send_all(bot: Bot, chat_ids: Sequence[int], text: str) -> dict[int, str]:
    errors: dict[int, str] = {}
    async with bot:
        for chat_id in chat_ids:
            try:
                await bot.send_message(chat_id=chat_id, text=clip(text))
            except TelegramError as exc:
                errors[chat_id] = f"{type(exc).__name__}: {exc}"
    return errors


def send_text(token: str, chat_ids: Sequence[int], text: str, base_url: str | None = None) -> dict[int, str]:
    """Send ``text`` to each chat; returns the errors by chat (empty: all sent). Never raises for Telegram errors,
    so a notification cannot fail the work that produced it."""
    if not chat_ids:
        return {}
    try:
        return asyncio.run(_send_all(Bot(token, **_urls(base_url)), chat_ids, text))
    except TelegramError as exc:  # e.g. a rejected token when the bot starts
        return dict.fromkeys(chat_ids, f"{type(exc).__name__}: {exc}")
