"""The Telegram bot (python-telegram-bot): commands in, replies out; the effects live in ``control.py``.

Every command gets an answer: its result, the reason it was refused (a chat or person that is not allowed,
bad arguments), or the help; so does any text in a private chat. In groups, plain text and commands addressed
to another bot (``/status@OtherBot``) are left alone, and edited messages never run a command again. A
failure inside a command (the store unreachable, say) is answered with its error
and logged; it never stops the bot. ``send_text`` posts the daily summary to the notification chats.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Sequence

from telegram import Bot, Update
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder, CommandHandler, ContextTypes, MessageHandler, filters

from huracan_assets.telegram.commands import HELP, clip
from huracan_assets.telegram.control import EngineControl

log = logging.getLogger(__name__)
COMMANDS = ("trade", "symbols", "status", "champions", "rollback", "confirm", "help", "start")


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
        message, chat, user = update.message, update.effective_chat, update.effective_user
        if message is None or chat is None or not message.text:
            return  # edits, captions, stickers ... : not commands
        words = message.text.split()
        private = chat.type == "private"
        if not words or not words[0].startswith("/"):
            if private:
                await message.reply_text("Unknown command.\n" + HELP)
            return  # plain chatter in a group is not for the bot
        name, _, addressee = words[0][1:].partition("@")
        if addressee and addressee.lower() != (context.bot.username or "").lower():
            return  # a command for another bot in the same group
        reply = control.reply(name.lower(), words[1:], chat.id, user.id if user and not user.is_bot else None)
        await message.reply_text(clip(reply))

    only_new = filters.UpdateType.MESSAGE  # an edited message never runs a command twice
    app.add_handler(CommandHandler(COMMANDS, handle, filters=only_new))
    app.add_handler(MessageHandler(only_new & (filters.COMMAND | filters.TEXT), handle))

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


class RedactToken(logging.Filter):
    """A log handler filter that removes the bot token from every record, its traceback included (PTB logs a
    rejected token's error, which quotes it)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            record.exc_info, record.exc_text = None, None
        if record.stack_info:
            message += "\n" + record.stack_info
            record.stack_info = None
        record.msg, record.args = redact(message, self.token), ()
        return True


def redact(text: str, token: str) -> str:
    """``text`` without the bot token (Telegram's errors quote a rejected token, and URLs carry it)."""
    return text.replace(token, "<token>") if token else text


def send_text(token: str, chat_ids: Sequence[int], text: str, base_url: str | None = None) -> dict[int, str]:
    """Send ``text`` to each chat; returns the errors by chat (empty: all sent), never holding the token. Never
    raises, so a notification cannot fail the work that produced it."""
    if not chat_ids:
        return {0: "no chat to notify (telegram.notify_chat_ids is empty)"}
    try:
        errors = asyncio.run(_send_all(Bot(token, **_urls(base_url)), chat_ids, text))
    except Exception as exc:  # a rejected token when the bot starts, a bad URL, a running event loop ...
        errors = dict.fromkeys(chat_ids, f"{type(exc).__name__}: {exc}")
    return {chat: redact(error, token) for chat, error in errors.items()}
