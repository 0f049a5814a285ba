"""The Telegram control commands, as pure functions: parsing, the coins ``/trade N`` selects, the selector
document, and the texts the bot replies with. No I/O and no python-telegram-bot here (see ``bot.py``).

Commands (the bot answers every message; nothing is written unless a command is valid and the chat allowed):

- ``/trade N``: train and paper-trade the top ``N`` coins by the latest universe ranking (trailing quote
  volume, among the coins that pass its filters). Writes ``control/symbols_selector.json``; the Engine's next
  universe run uses it. ``1 <= N <= max``.
- ``/trade all``: drop the override: the Engine goes back to its own ranking (``universe.max_symbols``).
- ``/symbols``: what the selector holds now.
- ``/status``: the latest daily summary.
- ``/help`` (and ``/start``): the list above.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from huracan_assets.core.market_data.universe import UniverseRules, rejection

MAX_MESSAGE = 4096  # Telegram's limit on a message's text
HELP = (
    "Huracan Engine control\n"
    "/trade N - train and paper-trade the top N coins by liquidity (from the next run)\n"
    "/trade all - back to the Engine's own ranking\n"
    "/symbols - the coins selected now\n"
    "/status - the latest daily summary\n"
    "/help - this list"
)


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
