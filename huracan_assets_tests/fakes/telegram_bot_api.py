"""A local fake of the Telegram Bot API HTTP server, for testing the real python-telegram-bot client.

The fake stands at the network boundary only: the real PTB client (``telegram.Bot`` or a whole
``telegram.ext.Application``) talks HTTP to it exactly as it would to ``api.telegram.org``::

    with FakeTelegramServer(TOKEN) as server:
        app = (
            ApplicationBuilder()
            .token(TOKEN)
            .base_url(f"{server.url}/bot")
            .base_file_url(f"{server.url}/file/bot")
            .build()
        )
        ...
        server.push_message("/ping 1 2", chat_id=42)
        server.wait_for_sent(1, chat_id=42)

Only the standard library is used: a ``http.server.ThreadingHTTPServer`` bound to 127.0.0.1 on a
free port, served from a daemon thread. Every public method is thread-safe, so tests can drive the
fake from the main thread while PTB runs its asyncio loop in the same process.

Implemented Bot API methods (names are matched case-insensitively, as Telegram does): ``getMe``,
``getUpdates`` (offset / limit / long-poll timeout / allowed_updates), ``sendMessage`` (with
Telegram's empty-text and 4096-character limits), ``deleteWebhook``, ``getWebhookInfo``,
``setMyCommands``, ``getMyCommands``, ``deleteMyCommands``, ``close`` and ``logOut``. Anything else
answers 404 ``Not Found: method not found``, a wrong token answers 401 ``Unauthorized``, and
:meth:`FakeTelegramServer.fail_next` injects errors (including 429 with ``retry_after``).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["FakeTelegramServer"]

_LOGGER = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 4096
"""Telegram's limit on a text message, in characters (after entity parsing)."""

# Parameters the Bot API defines as objects or arrays; in form-encoded bodies they arrive as JSON strings.
_JSON_PARAMS = frozenset(
    {
        "allowed_updates",
        "commands",
        "entities",
        "caption_entities",
        "link_preview_options",
        "media",
        "reply_markup",
        "reply_parameters",
        "results",
        "scope",
    }
)
# Integer parameters, converted from their form-encoded text when they look like integers.
_INT_PARAMS = frozenset(
    {
        "chat_id",
        "from_chat_id",
        "limit",
        "message_id",
        "message_thread_id",
        "offset",
        "reply_to_message_id",
        "user_id",
    }
)
_FLOAT_PARAMS = frozenset({"timeout"})
_BOOL_PARAMS = frozenset(
    {
        "allow_sending_without_reply",
        "disable_notification",
        "disable_web_page_preview",
        "drop_pending_updates",
        "protect_content",
    }
)
# Update types Telegram delivers when allowed_updates is empty (the documented default).
_NOT_DELIVERED_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_INT_RE = re.compile(r"-?\d+")
_PATH_RE = re.compile(r"^/bot(?P<token>[^/]*)/(?P<method>[^/]*)$")


class _ApiError(Exception):
    """An error answer in Telegram's shape: ``{"ok": false, "error_code": ..., "description": ...}``."""

    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad_request(what: str) -> _ApiError:
    return _ApiError(HTTPStatus.BAD_REQUEST, f"Bad Request: {what}")


def _utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram uses for entity offsets and lengths."""
    return len(text.encode("utf-16-le")) // 2


# --------------------------------------------------------------------------------------------- request parsing


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """Parse a multipart/form-data body; file parts become ``{"filename", "content_type", "data"}``."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    params: dict[str, Any] = {}
    if not message.is_multipart():
        return params
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is None:
            params[name] = data.decode(part.get_content_charset() or "utf-8", "replace")
        else:
            params[name] = {"filename": filename, "content_type": part.get_content_type(), "data": data}
    return params


def _parse_body(content_type_header: str, body: bytes) -> dict[str, Any]:
    """The parameters carried by a request body, still in their transport form."""
    content_type = content_type_header.split(";", 1)[0].strip().lower()
    if not body:
        return {}
    if content_type == "application/json":
        try:
            decoded = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise _bad_request("can't parse JSON request body") from exc
        if not isinstance(decoded, dict):
            raise _bad_request("JSON request body must be an object")
        return decoded
    if content_type == "multipart/form-data":
        return _parse_multipart(content_type_header, body)
    # application/x-www-form-urlencoded, and Telegram's lenient default for anything else
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _coerce(key: str, value: Any) -> Any:
    """Turn one form-encoded string value into the type the Bot API defines for ``key``."""
    if not isinstance(value, str):
        return value
    if key in _JSON_PARAMS and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise _bad_request(f"can't parse {key} JSON object") from exc
    if key in _INT_PARAMS and _INT_RE.fullmatch(value):
        return int(value)
    if key in _FLOAT_PARAMS:
        try:
            return float(value)
        except ValueError:
            return value
    if key in _BOOL_PARAMS and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def parse_params(query: str, content_type: str, body: bytes) -> dict[str, Any]:
    """Merge query-string and body parameters (the body wins) into one dict of typed values.

    Accepts ``application/x-www-form-urlencoded`` (what PTB sends), ``multipart/form-data`` (PTB,
    when uploading files) and ``application/json`` bodies. Values the Bot API defines as objects or
    arrays (``reply_markup``, ``allowed_updates``, ``commands``, ...) are JSON-decoded; integer and
    boolean parameters are converted from their text form.
    """
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    params.update(_parse_body(content_type, body))
    return {key: _coerce(key, value) for key, value in params.items()}


# --------------------------------------------------------------------------------------------- HTTP plumbing


class _Handler(BaseHTTPRequestHandler):
    """Hands every request to the owning :class:`FakeTelegramServer` and writes its JSON answer."""

    server: _HTTPServer
    server_version = "FakeTelegramBotAPI/1.0"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        status, payload = self.server.fake.handle_http(self.path, self.headers.get("Content-Type", ""), body)
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # the client gave up (e.g. PTB cancelled a long poll while stopping); nothing to answer
            _LOGGER.debug("client went away before the answer to %s", self.path)

    def log_message(self, format: str, *args: Any) -> None:
        _LOGGER.debug("%s - " + format, self.address_string(), *args)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeTelegramServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        _LOGGER.debug("error while serving %s", client_address, exc_info=True)


# --------------------------------------------------------------------------------------------- the fake


class FakeTelegramServer:
    """A fake Telegram Bot API server on ``http://127.0.0.1:<free port>``.

    Point PTB at it with ``base_url=f"{server.url}/bot"`` and ``base_file_url=f"{server.url}/file/bot"``.
    Feed it incoming messages with :meth:`push_message` (or any update with :meth:`push_update`) and
    inspect what the bot did with :meth:`sent`, :meth:`wait_for_sent` and :meth:`calls`.
    """

    long_poll_cap: float = 2.0
    """Upper bound, in seconds, on how long one ``getUpdates`` call waits (whatever ``timeout`` asks)."""

    def __init__(self, token: str, bot_id: int = 777000) -> None:
        self.token = token
        self.bot_id = bot_id
        self._cond = threading.Condition(threading.RLock())
        self._updates: list[dict[str, Any]] = []  # queued, not yet confirmed, in update_id order
        self._next_update_id = 1
        self._confirmed_offset = 0
        self._allowed_updates: list[str] = []
        self._message_ids: dict[Any, int] = {}  # per chat, shared by incoming and outgoing messages
        self._sent: list[dict[str, Any]] = []
        self._calls: list[tuple[str, dict[str, Any]]] = []
        self._failures: dict[str, list[_ApiError]] = {}
        self._commands: list[Any] = []
        self._stopping = False
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._methods: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": lambda _params: self.bot_user,
                "getUpdates": self._get_updates,
                "sendMessage": self._send_message,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": lambda _params: list(self._commands),
                "deleteMyCommands": self._delete_my_commands,
                "close": lambda _params: True,
                "logOut": lambda _params: True,
            }.items()
        }

    # ----------------------------------------------------------------------------------------- lifecycle

    def start(self) -> FakeTelegramServer:
        """Bind 127.0.0.1 on a free port and serve from a daemon thread. Returns ``self``."""
        if self._httpd is not None:
            raise RuntimeError("FakeTelegramServer is already started")
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.fake = self
        self._stopping = False
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-telegram-bot-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: wake pending long polls, shut the listener down and close its socket."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeTelegramServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The server's root URL, e.g. ``http://127.0.0.1:54321`` (only once started)."""
        if self._httpd is None:
            raise RuntimeError("FakeTelegramServer is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # ----------------------------------------------------------------------------------------- test-facing API

    @property
    def bot_user(self) -> dict[str, Any]:
        """The bot's User object, as ``getMe`` returns it."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Huracan Test Bot",
            "username": "huracan_test_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    @property
    def confirmed_offset(self) -> int:
        """The highest ``offset`` a ``getUpdates`` call has confirmed (updates below it are dropped)."""
        with self._cond:
            return self._confirmed_offset

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue any Update payload (without ``update_id``; one is assigned). Returns the update_id."""
        with self._cond:
            update_id = self._next_update_id
            self._next_update_id += 1
            self._updates.append({"update_id": update_id, **update})
            self._cond.notify_all()
            return update_id

    def push_message(self, text: str, chat_id: int, user_id: int | None = None, username: str = "tester") -> int:
        """Queue an Update carrying a text message from a user in a private chat, as Telegram sends it.

        A text starting with ``/`` gets a ``bot_command`` entity over its first word, which PTB's
        ``CommandHandler`` requires. Returns the update_id.
        """
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": username},
            "from": {"id": user_id or chat_id, "is_bot": False, "first_name": username, "username": username},
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": _utf16_len(command)}]
        return self.push_update({"message": message})

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """The recorded ``sendMessage`` calls (their parameters plus ``message_id``), in order."""
        with self._cond:
            return [dict(item) for item in self._sent if chat_id is None or item.get("chat_id") == chat_id]

    def wait_for_sent(self, count: int, chat_id: int | None = None, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least ``count`` messages were sent (to ``chat_id``, if given); return them all.

        Raises ``TimeoutError`` listing what was sent if that does not happen within ``timeout`` seconds.
        """
        with self._cond:
            if self._cond.wait_for(lambda: len(self.sent(chat_id)) >= count, timeout=timeout):
                return self.sent(chat_id)
            where = "" if chat_id is None else f" to chat {chat_id}"
            raise TimeoutError(
                f"expected {count} sent message(s){where} within {timeout}s; sent so far: {self.sent(chat_id)!r}"
            )

    def calls(self, method: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """Every request received, as ``(method, params)``, optionally only those of ``method``."""
        with self._cond:
            return [
                (name, dict(params)) for name, params in self._calls if method is None or name.lower() == method.lower()
            ]

    def fail_next(
        self,
        method: str,
        status: int = 500,
        description: str = "Internal Server Error",
        times: int = 1,
        *,
        retry_after: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` answer ``status`` in Telegram's error shape.

        With ``status == 429`` the answer carries ``{"parameters": {"retry_after": retry_after}}``
        (which PTB raises as ``RetryAfter``), and the default description becomes Telegram's
        ``Too Many Requests: retry after N``.
        """
        parameters = None
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            parameters = {"retry_after": retry_after}
            if description == "Internal Server Error":
                description = f"Too Many Requests: retry after {retry_after}"
        with self._cond:
            queue = self._failures.setdefault(method.lower(), [])
            queue.extend(_ApiError(status, description, parameters) for _ in range(times))

    # ----------------------------------------------------------------------------------------- request dispatch

    def handle_http(self, raw_path: str, content_type: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """Answer one HTTP request: ``(status, JSON payload)``. Called from the server's threads."""
        split = urlsplit(raw_path)
        match = _PATH_RE.match(split.path)
        if match is None:
            return HTTPStatus.NOT_FOUND, _ApiError(HTTPStatus.NOT_FOUND, "Not Found").payload()
        name, handler = self._methods.get(match["method"].lower(), (match["method"], None))
        try:
            params = parse_params(split.query, content_type, body)
        except _ApiError as err:
            params, parse_error = {}, err
        else:
            parse_error = None
        with self._cond:
            self._calls.append((name, params))
        try:
            if match["token"] != self.token:
                raise _ApiError(HTTPStatus.UNAUTHORIZED, "Unauthorized")
            failure = parse_error or self._pop_failure(name)
            if failure is not None:
                raise failure
            if handler is None:
                raise _ApiError(HTTPStatus.NOT_FOUND, "Not Found: method not found")
            result = handler(params)
        except _ApiError as err:
            return err.status, err.payload()
        return HTTPStatus.OK, {"ok": True, "result": result}

    def _pop_failure(self, name: str) -> _ApiError | None:
        with self._cond:
            queue = self._failures.get(name.lower())
            return queue.pop(0) if queue else None

    def _next_message_id(self, chat_id: Any) -> int:
        with self._cond:
            self._message_ids[chat_id] = self._message_ids.get(chat_id, 0) + 1
            return self._message_ids[chat_id]

    # ----------------------------------------------------------------------------------------- Bot API methods

    def _deliverable(self, offset: int) -> list[dict[str, Any]]:
        """Queued updates with ``update_id >= offset`` whose type ``allowed_updates`` lets through."""
        allowed = set(self._allowed_updates)

        def wanted(update: dict[str, Any]) -> bool:
            kinds = set(update) - {"update_id"}
            return bool(kinds & allowed) if allowed else not kinds <= _NOT_DELIVERED_BY_DEFAULT

        return [u for u in self._updates if u["update_id"] >= offset and wanted(u)]

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = params.get("offset", 0)
        limit = params.get("limit", 100)
        timeout = params.get("timeout", 0)
        if not isinstance(offset, int) or not isinstance(limit, int) or not isinstance(timeout, int | float):
            raise _bad_request("wrong parameter type in getUpdates")
        limit = min(max(limit, 1), 100)
        with self._cond:
            if "allowed_updates" in params:  # Telegram keeps the previous setting when it is absent
                self._allowed_updates = list(params["allowed_updates"] or [])
            if offset < 0 and self._updates:  # negative: the last -offset updates; earlier ones are dropped
                offset = self._updates[max(len(self._updates) + offset, 0)]["update_id"]
            if offset > 0:  # updates below offset are confirmed and forgotten
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                self._confirmed_offset = max(self._confirmed_offset, offset)
            wait = min(max(float(timeout), 0.0), self.long_poll_cap)
            self._cond.wait_for(lambda: self._stopping or bool(self._deliverable(offset)), timeout=wait)
            return [dict(u) for u in self._deliverable(offset)[:limit]]

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad_request("chat_id is empty")
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _bad_request("message text is empty")
        if len(text) > MAX_MESSAGE_LENGTH:
            raise _bad_request("message is too long")
        # parse_mode (MarkdownV2 / HTML) is recorded as sent; the markup is not validated
        with self._cond:
            message_id = self._next_message_id(chat_id)
            self._sent.append({**params, "message_id": message_id})
            self._cond.notify_all()
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": self.bot_user,
            "text": text,
        }

    def _delete_webhook(self, params: dict[str, Any]) -> bool:
        if params.get("drop_pending_updates") is True:
            with self._cond:
                self._updates.clear()
        return True

    def _get_webhook_info(self, _params: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            return {"url": "", "has_custom_certificate": False, "pending_update_count": len(self._updates)}

    def _set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad_request('parameter "commands" is required and must be a JSON array')
        with self._cond:
            self._commands = commands
        return True

    def _delete_my_commands(self, _params: dict[str, Any]) -> bool:
        with self._cond:
            self._commands = []
        return True
