"""The Telegram control commands, as pure functions: parsing, the coins ``/trade N`` selects, the selector
document, and the texts the bot replies with. No I/O and no python-telegram-bot here (see ``bot.py``).

Commands (the bot answers every message; nothing is written unless a command is valid and the chat allowed):

- ``/trade N``: train and paper-trade the top ``N`` coins by the latest universe ranking (trailing quote
  volume, among the coins that pass its filters). Writes ``control/symbols_selector.json``; the Engine's next
  universe run uses it. ``1 <= N <= max``.
- ``/trade all``: drop the override: the Engine goes back to its own ranking (``universe.max_symbols``).
- ``/symbols``: what the selector holds now.
- ``/status``: the latest daily summary.
- ``/champions``: every coin's current champion (``champion/SYMBOL/latest.json``): model id, as-of date, kind
  (promotion or rollback); a pointer that does not parse is listed as INVALID with its error.
- ``/rollback SYMBOL TO REASON...``: re-point a coin at an earlier champion (``publishing/rollback.py``); ``TO`` is
  that champion's model id or a YYYY-MM-DD date (the champion then), the reason (the rest of the text) is
  required. Admins only (``telegram.admin_user_ids``; empty: nobody). It writes nothing: it checks the target
  (resolved and its bundle verified) and answers with what would happen and a short code.
- ``/confirm CODE``: performs that rollback. Only the person who asked, in the same chat, within
  :data:`CONFIRM_MINUTES` minutes; a code works once.
- ``/help`` (and ``/start``): the list above.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

import polars as pl

from huracan_assets.core.market_data.universe import UniverseRules, rejection

if TYPE_CHECKING:
    from huracan_assets.publishing.champion import ChampionPointer

MAX_MESSAGE = 4096  # Telegram's limit on a message's text
HELP = (
    "Huracan Engine control\n"
    "/trade N - train and paper-trade the top N coins by liquidity (from the next run)\n"
    "/trade all - back to the Engine's own ranking\n"
    "/symbols - the coins selected now\n"
    "/status - the latest daily summary\n"
    "/champions - every coin's current champion\n"
    "/rollback SYMBOL TO REASON - admins: roll a coin back to an earlier champion (TO: its model id or a "
    "YYYY-MM-DD date); asks for /confirm first\n"
    "/confirm CODE - perform the rollback that code names\n"
    "/help - this list"
)
CONFIRM_MINUTES = 5  # how long a /rollback's confirmation code is valid
MAX_REASON = 300  # characters of a rollback's reason
ROLLBACK_USAGE = (
    "Usage: /rollback SYMBOL TO REASON (TO: an earlier champion's model id or a YYYY-MM-DD date; "
    "the reason, the rest of the text, is required)"
)
CONFIRM_USAGE = "Usage: /confirm CODE (the code the /rollback reply gave)"
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9._-]{1,39}$")
_MODEL_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CODE = re.compile(r"^\d{4}$")


class CommandError(ValueError):
    """A message that is not a valid command; its text is the reply."""


@dataclass(frozen=True)
class Trade:
    """``/trade N`` (``n``) or ``/trade all`` (``n is None``)."""

    n: int | None


def parse_trade(args: list[str], max_n: int) -> Trade:
    """The arguments of ``/trade``; :class:`CommandError` with a reply that says what is wrong."""
    usage = f"Usage: /trade N (1 to {max_n}) or /trade all"
    if len(args) != 1:
        raise CommandError(f"{usage}. Got {len(args)} arguments.")
    arg = args[0].strip().lower()
    if arg in ("all", "off", "reset"):
        return Trade(None)
    if not (arg.isascii() and arg.isdecimal()):
        raise CommandError(f"{usage}. '{args[0][:20]}' is not a whole number.")
    n = int(arg)
    if not 1 <= n <= max_n:
        raise CommandError(f"{usage}. {n} is out of range.")
    return Trade(n)


@dataclass(frozen=True)
class Rollback:
    """``/rollback SYMBOL TO REASON...``: ``to`` is a model id or a YYYY-MM-DD date."""

    symbol: str
    to: str
    reason: str


def parse_rollback(args: list[str]) -> Rollback:
    """The arguments of ``/rollback`` (the symbol upper-cased); :class:`CommandError` saying what is wrong."""
    if len(args) < 3:
        missing = ("SYMBOL", "TO", "REASON")[len(args)]
        raise CommandError(f"{ROLLBACK_USAGE}. {missing} is missing.")
    symbol, to = args[0].strip().upper(), args[1].strip()
    if not _SYMBOL.match(symbol):
        raise CommandError(f"{ROLLBACK_USAGE}. '{args[0][:40]}' is not a coin symbol such as BTCUSDT.")
    if _DATE_LIKE.match(to):
        try:
            date.fromisoformat(to)
        except ValueError:
            raise CommandError(f"{ROLLBACK_USAGE}. '{to}' is not a valid date.") from None
    elif not _MODEL_ID.match(to):
        raise CommandError(f"{ROLLBACK_USAGE}. '{to[:40]}' is neither a model id nor a YYYY-MM-DD date.")
    reason = " ".join(" ".join(args[2:]).split())
    if len(reason) > MAX_REASON:
        raise CommandError(f"The reason is {len(reason)} characters long; at most {MAX_REASON}.")
    return Rollback(symbol, to, reason)


def parse_confirm(args: list[str]) -> str:
    """The code of ``/confirm CODE``; :class:`CommandError` otherwise."""
    if len(args) != 1 or not (args[0].isascii() and _CODE.match(args[0].strip())):
        raise CommandError(f"{CONFIRM_USAGE}: four digits.")
    return args[0].strip()


def champions_reply(rows: Sequence[tuple[str, ChampionPointer | None, str | None]]) -> str:
    """``/champions``: one line per coin, from ``(symbol, pointer, error)`` (an error: the pointer is invalid)."""
    if not rows:
        return "No champion yet: no coin has champion/SYMBOL/latest.json."
    lines = []
    for symbol, pointer, error in rows:
        if pointer is None:
            lines.append(f"{symbol}: INVALID ({error})")
        else:
            lines.append(f"{symbol}: {pointer.model_id}, as of {pointer.as_of.isoformat()}, {pointer.kind}")
    invalid = sum(1 for _, pointer, _ in rows if pointer is None)
    head = f"{len(rows)} champions" + (f" ({invalid} INVALID)" if invalid else "")
    return clip(f"{head}:\n" + "\n".join(lines))


def rollback_prompt(
    request: Rollback,
    current: ChampionPointer | None,
    target: ChampionPointer,
    as_of: date,
    code: str,
    minutes: int = CONFIRM_MINUTES,
) -> str:
    """The answer to a valid ``/rollback``: what confirming would do, and the code that does it."""
    was = "no valid champion" if current is None else f"champion {current.model_id}"
    lines = [
        f"{request.symbol}: {was} -> {target.model_id} (the champion as of {target.as_of.isoformat()}); "
        f"the rollback is recorded as of {as_of.isoformat()}.",
        f"Reason: {request.reason}",
    ]
    if current is not None and current.kind == "rollback" and current.sha256 == target.sha256:
        lines.append("That rollback is already in place: confirming completes its registry record.")
    lines.append(f"Reply /confirm {code} within {minutes} minutes. Nothing is changed until then.")
    return clip("\n".join(lines))


ROLLBACK_NOT_CONFIGURED = (
    "Rollback is not configured on this bot (it needs the registry, the recipe hash and the timeframe, which "
    "huracan bot provides). Nothing was changed."
)


def admin_refusal(user_id: int) -> str:
    return (
        f"Only admins may roll back: user {user_id} is not in telegram.admin_user_ids (empty: nobody may). "
        "Nothing was changed."
    )


def refused_reply(what: str, error: Exception | str) -> str:
    """A rollback refused before anything was written (bad target, no champion ...)."""
    return clip(f"{what} refused: {error}. Nothing was changed.")


def rollback_done_reply(pointer: ChampionPointer, wrote: bool) -> str:
    """The answer to a ``/confirm`` that rolled back (``wrote`` False: it was already in place, now recorded)."""
    verb = "rolled back" if wrote else "was already rolled back"
    return clip(
        f"{pointer.symbol} {verb} to {pointer.model_id} as of {pointer.as_of.isoformat()} "
        f"(from {pointer.snapshot.get('rolled_back_from')}). Reason: {pointer.reason}. "
        "The Engine's next run starts from it."
    )


def top_symbols(universe: pl.DataFrame, n: int, rules: UniverseRules) -> list[str]:
    """The ``n`` best-ranked listed coins of a stored universe frame that pass ``rules``'s filters (fewer if
    there are fewer). The filters are re-applied to the frame's columns, so a ranking made while a selector was
    active (whose named coins bypassed them) gives the same answer."""
    eligible = universe.filter(pl.col("rank").is_not_null() & rejection(rules).is_null())
    return eligible.sort(["rank", "symbol"])["symbol"].head(n).to_list()


def selector_document(
    symbols: list[str], trade: Trade, ranking_as_of: date | None, requested_by: int, chat_id: int, at: datetime
) -> dict:
    """The ``control/symbols_selector.json`` document (``symbols: []`` means: no override)."""
    return {
        "symbols": symbols,
        "n": trade.n,
        "command": f"/trade {trade.n if trade.n is not None else 'all'}",
        "ranking_as_of": ranking_as_of.isoformat() if ranking_as_of else None,
        "requested_by": requested_by,
        "chat_id": chat_id,
        "at": at.isoformat(timespec="seconds"),
    }


def trade_reply(doc: Mapping, requested: int | None) -> str:
    """The bot's answer to a successful ``/trade``."""
    symbols = doc["symbols"]
    if requested is None:
        return "Override removed: the Engine selects coins by its own ranking from the next run."
    head = f"Selected the top {len(symbols)} coins by liquidity (ranking of {doc['ranking_as_of']})"
    if len(symbols) < requested:
        head += f"; only {len(symbols)} of the {requested} requested pass the filters"
    return clip(f"{head}. They are trained and paper-traded from the next run:\n" + ", ".join(symbols))


def symbols_reply(doc: Mapping | None, error: str | None) -> str:
    if error:
        return clip(f"The selector file is unusable ({error}); the Engine falls back to its own ranking.")
    if not doc or not doc.get("symbols"):
        return "No override: the Engine selects coins by its own ranking."
    when = f" (set by {doc.get('command', '?')} at {doc.get('at', '?')})"
    return clip(f"{len(doc['symbols'])} coins selected{when}:\n" + ", ".join(doc["symbols"]))


def status_reply(summary: Mapping | None) -> str:
    """The latest daily summary as plain text (Telegram, and the summary notification)."""
    if not summary:
        return "No daily summary yet."
    t = summary.get("trades", {})
    wf = summary.get("walk_forward", {})
    promotions = summary.get("promotions", {})
    lines = [
        f"Huracan daily summary {summary.get('date')} ({summary.get('timeframe')})",
        f"coins done {summary.get('symbols_done', 0)}, skipped {len(summary.get('skipped', {}))}, "
        f"failed {len(summary.get('failed', {}))}",
        f"shadow trades: {t.get('challenger_trades', 0)} challenger, {t.get('champion_trades', 0)} champion; "
        f"hit rate {_pct(t.get('hit_rate'))}; net {_num(t.get('net_bps_per_trade'))} bps/trade",
        f"walk-forward: {wf.get('models', 0)} models, mean OOS AUC {_num(wf.get('mean_oos_auc'), '.3f')}",
        f"promotions: {', '.join(sorted(promotions)) or 'none'}",
    ]
    failed = summary.get("failed", {})
    if failed:
        lines.append("failed: " + "; ".join(f"{s}: {r}" for s, r in sorted(failed.items())))
    return clip("\n".join(lines))


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to Telegram's message limit, saying so."""
    if len(text) <= limit:
        return text
    tail = "\n... (cut)"
    return text[: limit - len(tail)] + tail


def _pct(value) -> str:
    return "-" if value is None else f"{value:.0%}"


def _num(value, fmt: str = "+.1f") -> str:
    return "-" if value is None else format(value, fmt)
