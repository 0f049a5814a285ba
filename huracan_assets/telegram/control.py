"""What the Telegram bot reads and writes in the object store, and the commands' effects.

- ``control/symbols_selector.json``: the coins the Engine trains (``universe`` reads it, see
  ``core/market_data/universe.py::parse_selector``). Every write first keeps a copy under
  ``control/selector_history/``, so nothing already stored is lost, and the selector itself is replaced by one
  object put (never half-written).
- ``universe/YYYY-MM-DD.parquet``: the latest ranking, which ``/trade N`` takes its top N from.
- ``summaries/daily/YYYY-MM-DD.json``: the latest daily summary, for ``/status``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, date, datetime

import polars as pl

from huracan_assets.core.market_data.universe import UniverseRules, parse_selector
from huracan_assets.storage.object_store import ObjectNotFound, ObjectStore
from huracan_assets.telegram.commands import (
    HELP,
    CommandError,
    parse_trade,
    selector_document,
    status_reply,
    symbols_reply,
    top_symbols,
    trade_reply,
)

log = logging.getLogger(__name__)
SELECTOR_KEY = "control/symbols_selector.json"
STALE_RANKING_DAYS = 2  # /trade warns when the newest ranking is older than this
HISTORY_PREFIX = "control/selector_history/"
_UNIVERSE = re.compile(r"^universe/(\d{4}-\d{2}-\d{2})\.parquet$")
_SUMMARY = re.compile(r"^summaries/daily/(\d{4}-\d{2}-\d{2})\.json$")


def parse_selector_bytes(data: bytes) -> tuple[dict | None, str | None]:
    """A selector file's JSON object, or an error text saying why the Engine cannot use it."""
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, f"{SELECTOR_KEY} is not JSON: {exc}"
    try:
        parse_selector(document)
    except ValueError as exc:
        return None, f"{SELECTOR_KEY}: {exc}"
    return document, None


def read_selector_document(store: ObjectStore) -> tuple[dict | None, str | None]:
    """The selector's JSON object (None when there is none) and an error text when it is unusable."""
    try:
        return parse_selector_bytes(store.get(SELECTOR_KEY))
    except ObjectNotFound:
        return None, None


def read_selector(store: ObjectStore) -> tuple[tuple[str, ...] | None, str | None]:
    """Symbols named by the selector now (None: no override) and an error text when the file is unusable."""
    document, error = read_selector_document(store)
    return (parse_selector(document) if document is not None else None), error


def selector_versions(store: ObjectStore) -> list[dict]:
    """Every usable version the bot wrote (``control/selector_history/``), for as-of selection by date."""
    versions = []
    for key in sorted(store.list(HISTORY_PREFIX)):
        document, error = parse_selector_bytes(store.get(key))
        if document is not None and error is None:
            versions.append(document)
    return versions


def write_selector(store: ObjectStore, document: dict) -> str:
    """Keep the file being replaced (if the history lacks it) and a dated copy of the new one, then replace the
    selector by one object put; returns the new version's history key. Refuses an invalid document."""
    parse_selector(document)
    data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
    try:
        previous = store.get(SELECTOR_KEY)
    except ObjectNotFound:
        previous = None
    if previous is not None:  # a hand-written or corrupt file is kept too; the bot's own are already there
        digest = hashlib.sha256(previous).hexdigest()[:12]
        if not any(k.endswith(f"-{digest}.json") for k in store.list(HISTORY_PREFIX)):
            store.put(f"{HISTORY_PREFIX}replaced-{digest}.json", previous, "application/json")
    stamp = re.sub(r"[^0-9T]", "", str(document.get("at", "")))[:15] or "undated"
    history = f"{HISTORY_PREFIX}{stamp}-{hashlib.sha256(data).hexdigest()[:12]}.json"
    store.put(history, data, "application/json")
    store.put(SELECTOR_KEY, data, "application/json")
    return history


def _latest(store: ObjectStore, prefix: str, pattern: re.Pattern) -> tuple[date, str] | None:
    found = [(m.group(1), key) for key in store.list(prefix) if (m := pattern.match(key))]
    if not found:
        return None
    day, key = max(found)
    return date.fromisoformat(day), key


def latest_universe(store: ObjectStore) -> tuple[date, pl.DataFrame] | None:
    """The newest universe ranking in the store, with its date."""
    found = _latest(store, "universe/", _UNIVERSE)
    if found is None:
        return None
    return found[0], pl.read_parquet(io.BytesIO(store.get(found[1])))


def latest_summary(store: ObjectStore) -> dict | None:
    found = _latest(store, "summaries/daily/", _SUMMARY)
    return None if found is None else json.loads(store.get(found[1]))


class EngineControl:
    """The commands' effects on the store, one method per command, each returning the reply text.

    Only ``allowed_chat_ids`` may change or read anything; with ``allowed_user_ids``, only those people in them
    (a group chat's other members are refused), and a message without a sender (an anonymous group admin,
    a channel) is always refused. ``rules``: the universe filters ``/trade N`` re-applies to the ranking.
    """

    def __init__(
        self,
        store: ObjectStore,
        allowed_chat_ids: frozenset[int],
        max_symbols: int = 400,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rules: UniverseRules | None = None,
        allowed_user_ids: frozenset[int] = frozenset(),
    ) -> None:
        self.store, self.allowed_chat_ids, self.max_symbols, self.clock = store, allowed_chat_ids, max_symbols, clock
        self.rules = rules or UniverseRules()
        self.allowed_user_ids = allowed_user_ids

    def reply(self, command: str, args: list[str], chat_id: int, user_id: int | None) -> str:
        """The answer to ``/command args`` from a chat: its result, a refusal, or the error that stopped it (a
        failed command changes nothing and never raises)."""
        if command in ("help", "start"):
            return HELP
        if command not in ("trade", "symbols", "status"):
            return "Unknown command.\n" + HELP
        if not self.allowed(chat_id, user_id):
            log.warning("refused /%s from chat %s, user %s", command, chat_id, user_id)
            return self.refusal(chat_id, user_id)
        try:
            if command == "trade":
                return self.trade(args, chat_id, user_id)
            return self.symbols() if command == "symbols" else self.status()
        except Exception as exc:  # answered and logged; the bot keeps running
            log.exception("/%s failed", command)
            return f"/{command} failed: {type(exc).__name__}: {exc}. Nothing was changed."

    def allowed(self, chat_id: int, user_id: int | None) -> bool:
        if user_id is None or chat_id not in self.allowed_chat_ids:
            return False
        return not self.allowed_user_ids or user_id in self.allowed_user_ids

    def refusal(self, chat_id: int, user_id: int | None) -> str:
        if user_id is None:
            return "Commands need a sender: anonymous admins and channels may not control the Engine."
        return (
            f"This chat ({chat_id}) or user ({user_id}) may not control the Engine: an operator can add it to "
            "telegram.allowed_chat_ids / allowed_user_ids."
        )

    def trade(self, args: list[str], chat_id: int, user_id: int) -> str:
        try:
            trade = parse_trade(args, self.max_symbols)
        except CommandError as exc:
            return str(exc)
        ranking_day, symbols, now = None, [], self.clock()
        if trade.n is not None:
            latest = latest_universe(self.store)
            if latest is None:
                return "No universe ranking yet: run the Engine once, then try again. Nothing was changed."
            ranking_day, universe = latest
            symbols = top_symbols(universe, trade.n, self.rules)
            if not symbols:
                return f"The ranking of {ranking_day} has no eligible coin. Nothing was changed."
        doc = selector_document(symbols, trade, ranking_day, user_id, chat_id, now)
        write_selector(self.store, doc)
        reply = trade_reply(doc, trade.n)
        if ranking_day is not None and (now.date() - ranking_day).days > STALE_RANKING_DAYS:
            reply += f"\nNote: that ranking is {(now.date() - ranking_day).days} days old."
        return reply

    def symbols(self) -> str:
        return symbols_reply(*read_selector_document(self.store))

    def status(self) -> str:
        return status_reply(latest_summary(self.store))
