"""What the Telegram bot reads and writes in the object store, and the commands' effects.

- ``control/symbols_selector.json``: the coins the Engine trains (``universe`` reads it, see
  ``core/market_data/universe.py::parse_selector``). Every write first keeps a copy under
  ``control/selector_history/``, so nothing already stored is lost, and the selector itself is replaced by one
  object put (never half-written).
- ``universe/YYYY-MM-DD.parquet``: the latest ranking, which ``/trade N`` takes its top N from.
- ``summaries/daily/YYYY-MM-DD.json``: the latest daily summary, for ``/status``.
- ``champion/SYMBOL/latest.json``: every coin's champion, for ``/champions``; ``/rollback`` then ``/confirm``
  re-point one at an earlier champion through ``publishing/rollback.py`` (a new history entry and a
  ``promotions`` row in the registry). The pending rollbacks (their codes) live in memory only: a restarted bot
  has none, and their codes are refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import polars as pl

from huracan_assets.core.market_data.universe import UniverseRules, parse_selector
from huracan_assets.publishing.champion import (
    ChampionPointer,
    NoChampion,
    PointerError,
    champion_symbols,
    read_pointer,
)
from huracan_assets.publishing.rollback import RollbackRefused, perform_rollback, plan_rollback
from huracan_assets.storage.object_store import ObjectNotFound, ObjectStore
from huracan_assets.telegram.commands import (
    CONFIRM_MINUTES,
    HELP,
    ROLLBACK_NOT_CONFIGURED,
    CommandError,
    Rollback,
    admin_refusal,
    champions_reply,
    parse_confirm,
    parse_rollback,
    parse_trade,
    refused_reply,
    rollback_done_reply,
    rollback_prompt,
    selector_document,
    status_reply,
    symbols_reply,
    top_symbols,
    trade_reply,
)

if TYPE_CHECKING:
    from huracan_assets.registry.client import Registry

log = logging.getLogger(__name__)
SELECTOR_KEY = "control/symbols_selector.json"
STALE_RANKING_DAYS = 2  # /trade warns when the newest ranking is older than this
HISTORY_PREFIX = "control/selector_history/"
_UNIVERSE = re.compile(r"^universe/(\d{4}-\d{2}-\d{2})\.parquet$")
_SUMMARY = re.compile(r"^summaries/daily/(\d{4}-\d{2}-\d{2})\.json$")
COMMANDS = ("trade", "symbols", "status", "champions", "rollback", "confirm")
ADMIN_COMMANDS = ("rollback", "confirm")


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


def champion_rows(store: ObjectStore) -> list[tuple[str, ChampionPointer | None, str | None]]:
    """``(symbol, pointer, None)`` per coin, or ``(symbol, None, error)`` when its pointer is invalid."""
    rows: list[tuple[str, ChampionPointer | None, str | None]] = []
    for symbol in champion_symbols(store):
        try:
            rows.append((symbol, read_pointer(store, symbol), None))
        except ValueError as exc:  # PointerError, or a key whose symbol is not one
            rows.append((symbol, None, str(exc)))
    return rows


@dataclass(frozen=True)
class PendingRollback:
    """A checked ``/rollback`` waiting for its ``/confirm``: only ``user_id`` in ``chat_id``, before ``expires``."""

    request: Rollback
    target_model_id: str  # resolved when asked: confirming rolls back to exactly what the reply named
    current_sha256: str | None  # the champion then: if it has moved since, the confirmation is refused
    chat_id: int
    user_id: int
    expires: datetime


class EngineControl:
    """The commands' effects on the store, one method per command, each returning the reply text.

    Only ``allowed_chat_ids`` may change or read anything; with ``allowed_user_ids``, only those people in them
    (a group chat's other members are refused), and a message without a sender (an anonymous group admin,
    a channel) is always refused. ``rules``: the universe filters ``/trade N`` re-applies to the ranking.

    ``/rollback`` and ``/confirm`` are for ``admin_user_ids`` only (in an allowed chat; empty: nobody) and need
    ``registry_factory`` (a callable returning the :class:`~huracan_assets.registry.client.Registry`, called once,
    on the first confirmed rollback), ``recipe_hash`` and ``timeframe``; without them they answer that rollback is
    not configured. Confirmation codes are valid ``confirm_seconds`` by ``clock``.
    """

    def __init__(
        self,
        store: ObjectStore,
        allowed_chat_ids: frozenset[int],
        max_symbols: int = 400,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rules: UniverseRules | None = None,
        allowed_user_ids: frozenset[int] = frozenset(),
        *,
        admin_user_ids: frozenset[int] = frozenset(),
        registry_factory: Callable[[], Registry] | None = None,
        recipe_hash: str | None = None,
        timeframe: str | None = None,
        confirm_seconds: int = CONFIRM_MINUTES * 60,
    ) -> None:
        self.store, self.allowed_chat_ids, self.max_symbols, self.clock = store, allowed_chat_ids, max_symbols, clock
        self.rules = rules or UniverseRules()
        self.allowed_user_ids = allowed_user_ids
        self.admin_user_ids = admin_user_ids
        self.registry_factory, self.recipe_hash, self.timeframe = registry_factory, recipe_hash, timeframe
        self.confirm_seconds = confirm_seconds
        self.pending: dict[str, PendingRollback] = {}
        self._registry: Registry | None = None

    def reply(self, command: str, args: list[str], chat_id: int, user_id: int | None) -> str:
        """The answer to ``/command args`` from a chat: its result, a refusal, or the error that stopped it (a
        failed command changes nothing and never raises)."""
        if command in ("help", "start"):
            return HELP
        if command not in COMMANDS:
            return "Unknown command.\n" + HELP
        if not self.allowed(chat_id, user_id):
            log.warning("refused /%s from chat %s, user %s", command, chat_id, user_id)
            return self.refusal(chat_id, user_id)
        if command in ADMIN_COMMANDS and user_id not in self.admin_user_ids:
            log.warning("refused /%s from user %s: not an admin", command, user_id)
            return admin_refusal(user_id)
        handlers: dict[str, Callable[[], str]] = {
            "trade": lambda: self.trade(args, chat_id, user_id),
            "symbols": self.symbols,
            "status": self.status,
            "champions": self.champions,
            "rollback": lambda: self.rollback(args, chat_id, user_id),
            "confirm": lambda: self.confirm(args, chat_id, user_id),
        }
        try:
            return handlers[command]()
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

    def champions(self) -> str:
        return champions_reply(champion_rows(self.store))

    # ------------------------------------------------------------------------------------------ rollback
    def rollback_configured(self) -> bool:
        return self.registry_factory is not None and self.recipe_hash is not None and self.timeframe is not None

    def rollback(self, args: list[str], chat_id: int, user_id: int) -> str:
        """Check a ``/rollback`` (nothing written) and answer with what confirming it would do, and its code."""
        if not self.rollback_configured():
            return ROLLBACK_NOT_CONFIGURED
        try:
            request = parse_rollback(args)
        except CommandError as exc:
            return str(exc)
        try:
            current, target, as_of = self._check_rollback(request)
        except (RollbackRefused, NoChampion, PointerError) as exc:
            return refused_reply(f"Rollback of {request.symbol}", exc)
        now = self.clock()
        self.pending = {code: p for code, p in self.pending.items() if p.expires >= now}
        code = self._new_code()
        self.pending[code] = PendingRollback(
            request=request,
            target_model_id=target.model_id,
            current_sha256=None if current is None else current.sha256,
            chat_id=chat_id,
            user_id=user_id,
            expires=now + timedelta(seconds=self.confirm_seconds),
        )
        log.info("rollback of %s to %s asked by user %s (code issued)", request.symbol, target.model_id, user_id)
        return rollback_prompt(request, current, target, as_of, code, max(1, round(self.confirm_seconds / 60)))

    def _check_rollback(self, request: Rollback) -> tuple[ChampionPointer | None, ChampionPointer, date]:
        """The current champion (None: none valid), the verified target and the rollback's as-of date, checked by
        ``plan_rollback`` as ``perform_rollback`` will; RollbackRefused / NoChampion otherwise. Reads only."""
        plan = plan_rollback(self.store, request.symbol, request.to, self.recipe_hash)
        return plan.current, plan.target, plan.as_of

    def _new_code(self) -> str:
        while (code := str(1000 + secrets.randbelow(9000))) in self.pending:
            pass
        return code

    def confirm(self, args: list[str], chat_id: int, user_id: int) -> str:
        """Perform the pending rollback ``/confirm CODE`` names: the asker's own, in the same chat, in time, once."""
        if not self.rollback_configured():
            return ROLLBACK_NOT_CONFIGURED
        try:
            code = parse_confirm(args)
        except CommandError as exc:
            return str(exc)
        pending = self.pending.get(code)
        if pending is None:
            return f"No rollback is waiting for code {code} (a code works once). Nothing was changed."
        if (pending.chat_id, pending.user_id) != (chat_id, user_id):
            log.warning("refused /confirm %s from user %s in chat %s: not theirs", code, user_id, chat_id)
            return f"Code {code} was given to another person or chat: refused. Nothing was changed."
        del self.pending[code]  # used: whatever happens next, it never works again
        request = pending.request
        if self.clock() > pending.expires:
            return f"Code {code} has expired: send /rollback {request.symbol} again. Nothing was changed."
        try:
            current = read_pointer(self.store, request.symbol)
        except PointerError:
            current = None
        if (None if current is None else current.sha256) != pending.current_sha256:
            now = "none valid" if current is None else current.model_id
            return (
                f"The champion of {request.symbol} has changed since (now {now}): send /rollback again. "
                "Nothing was changed."
            )
        return self._perform(request, pending.target_model_id, user_id)

    def _perform(self, request: Rollback, to: str, user_id: int) -> str:
        if self._registry is None:  # failing here writes nothing: reply() answers with the error
            self._registry = self.registry_factory()
        try:
            pointer, wrote = perform_rollback(
                self.store, self._registry, request.symbol, to, request.reason, recipe_hash=self.recipe_hash,
                timeframe=self.timeframe, requested_by=f"telegram:{user_id}",
            )  # fmt: skip
        except (RollbackRefused, NoChampion) as exc:
            return refused_reply(f"Rollback of {request.symbol}", exc)
        except Exception as exc:  # the store or the registry failing part way: the same rollback again completes it
            log.exception("rollback of %s failed", request.symbol)
            return (
                f"Rollback of {request.symbol} failed: {type(exc).__name__}: {exc}. It may be incomplete: "
                f"send /rollback {request.symbol} {to} {request.reason} again and confirm it to complete it."
            )
        log.info("rolled back %s to %s for user %s (written: %s)", request.symbol, pointer.model_id, user_id, wrote)
        return rollback_done_reply(pointer, wrote)
