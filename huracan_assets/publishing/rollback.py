"""Champion rollback: re-point a coin at an earlier champion, as a new entry of its history (never a rewrite).

A rollback names its target by model id or by date (the champion as of that date) among the coin's earlier
pointers (``champion/SYMBOL/history/``), verifies the target bundle (every file's sha256, the pointer's content
hash, the recipe), and then, in order (:data:`ROLLBACK_STEPS`):

1. ``verified``: the target resolved and verified; nothing written yet;
2. ``history``: ``champion/SYMBOL/history/<as_of>_rollback-<stamp>.json`` written, a new entry that sorts after the
   date's own promotion (history keys only ever get added);
3. ``latest``: ``latest.json`` replaced by the rollback pointer (``kind: "rollback"``), by one atomic put;
4. ``registry``: a ``promotions`` row of kind ``rollback`` (:func:`rollback_row`), and the decision log's line
   (``publishing/decisions.py``: ``decisions/D.jsonl`` and the ``decisions`` table).

A crash after any step leaves a valid ``latest.json`` (the old champion, or the rolled-back one), and running the
same rollback again completes it: when the current pointer already is a rollback to the same bundle, nothing
new is written to the store and the same registry row (same key) is returned.

``as_of`` is the last date the graph decided for the coin (:func:`last_decided_day`): the daily run of the next
date reads that date's pointer and the rollback of that date (:func:`rollback_in_effect`), so it compares its
challenger against the rolled-back champion; reruns of earlier dates are unchanged. A promotion of the same date
published later does not replace the rollback (``publishing/champion.py`` ``moves_latest``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from huracan_assets.core.models.bundle import BundleError
from huracan_assets.publishing.champion import (
    ChampionPointer,
    InjectedCrash,
    NoChampion,
    PointerError,
    _check_symbol,
    _pointed_bundle,
    current_pointer,
    latest_key,
)
from huracan_assets.publishing.decisions import log_operator_decision
from huracan_assets.storage.object_store import ObjectStore

ROLLBACK_STEPS = ("verified", "history", "latest", "registry")
_ENTRY = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:_rollback-(\d{8}T\d{12}Z))?\.json$")


class RollbackRefused(ValueError):
    """The rollback cannot be made (no such earlier champion, a target that does not verify, a date behind the
    current pointer); nothing was written."""


def _history_prefix(symbol: str) -> str:
    return f"champion/{_check_symbol(symbol)}/history/"


def _stamp(promoted_at: str) -> str:
    return dt.datetime.fromisoformat(promoted_at).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


def rollback_key(symbol: str, as_of: dt.date, promoted_at: str) -> str:
    return f"{_history_prefix(symbol)}{as_of.isoformat()}_rollback-{_stamp(promoted_at)}.json"


def champion_history(store: ObjectStore, symbol: str) -> list[tuple[str, ChampionPointer]]:
    """Every history entry of ``symbol`` (key, pointer) in order: by date, a date's promotion before its
    rollbacks, rollbacks by time. Entries that do not parse are left out (they never were ``latest.json``)."""
    out = []
    prefix = _history_prefix(symbol)
    for key in sorted(store.list(prefix)):
        if not _ENTRY.match(key[len(prefix) :]):
            continue
        try:
            pointer = ChampionPointer.from_json(store.get(key))
        except PointerError:
            continue
        if pointer.symbol == symbol:
            out.append((key, pointer))
    return out


def rollback_in_effect(store: ObjectStore, symbol: str, day: dt.date) -> ChampionPointer | None:
    """The last rollback of ``symbol`` made as of ``day`` (None: none): the champion the run of ``day + 1``
    starts from, whatever ``champion_pointer[day]`` says."""
    return _last_rollback(store, sorted(store.list(f"{_history_prefix(symbol)}{day.isoformat()}_rollback-")), day)


def rollbacks_of_day(store: ObjectStore, day: dt.date) -> dict[str, ChampionPointer]:
    """:func:`rollback_in_effect` of every coin at once, from one listing of ``champion/`` (the champion step
    asks this once per date, not once per coin)."""
    marker = f"/history/{day.isoformat()}_rollback-"
    by_symbol: dict[str, list[str]] = {}
    for key in store.list("champion/"):
        if marker in key:
            by_symbol.setdefault(key.split("/")[1], []).append(key)
    out = {}
    for symbol, keys in by_symbol.items():
        pointer = _last_rollback(store, sorted(keys), day)
        if pointer is not None and pointer.symbol == symbol:
            out[symbol] = pointer
    return out


def _last_rollback(store: ObjectStore, keys: list[str], day: dt.date) -> ChampionPointer | None:
    for key in reversed(keys):
        try:
            pointer = ChampionPointer.from_json(store.get(key))
        except PointerError:
            continue
        if pointer.kind == "rollback" and pointer.as_of == day:
            return pointer
    return None


def last_decided_day(store: ObjectStore, symbol: str) -> dt.date | None:
    """The last date with a stored ``champion_pointer`` row of ``symbol`` (``storage/partitioned.py`` layout)."""
    prefix = f"champion_pointer/{_check_symbol(symbol)}/"
    days = []
    for key in store.list(prefix):
        name = key[len(prefix) :]
        if name.endswith(".parquet"):
            try:
                days.append(dt.date.fromisoformat(name.removesuffix(".parquet")))
            except ValueError:
                continue
    return max(days) if days else None


def resolve_target(history: list[tuple[str, ChampionPointer]], to: str) -> ChampionPointer:
    """The earlier champion ``to`` names: a model id (its last history entry), or a YYYY-MM-DD date (the last
    entry as of that date or before: the champion then)."""
    try:
        day = dt.date.fromisoformat(to)
    except ValueError:
        day = None
    if day is not None:
        entries = [p for _, p in history if p.as_of <= day]
        if not entries:
            raise RollbackRefused(f"no champion as of {day}: the history starts {history[0][1].as_of}")
        return entries[-1]
    entries = [p for _, p in history if p.model_id == to]
    if not entries:
        known = sorted({p.model_id for _, p in history})
        raise RollbackRefused(f"{to!r} was never a champion of this coin; earlier champions: {known[-10:]}")
    return entries[-1]


def verified_target(store: ObjectStore, symbol: str, to: str, expected_recipe_hash: str | None) -> ChampionPointer:
    """The earlier champion ``to`` names (:func:`resolve_target`), its bundle verified; refused otherwise."""
    history = champion_history(store, symbol)
    if not history:
        raise NoChampion(f"{symbol} has no champion history: nothing to roll back")
    target = resolve_target(history, to)
    try:
        _pointed_bundle(store, target, expected_recipe_hash)
    except BundleError as exc:
        raise RollbackRefused(f"the target {target.model_id} at {target.bucket_path} does not verify: {exc}") from exc
    return target


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback would do: the current pointer (None: none that parses), the verified target, the as-of
    date, and whether the same rollback is already in place (a rerun: nothing to write)."""

    current: ChampionPointer | None
    target: ChampionPointer
    as_of: dt.date
    in_place: bool


def plan_rollback(
    store: ObjectStore, symbol: str, to: str, expected_recipe_hash: str | None, as_of: dt.date | None = None
) -> RollbackPlan:
    """Check a rollback without writing anything (:class:`RollbackRefused` / :class:`NoChampion` otherwise).
    ``as_of`` defaults to :func:`last_decided_day`, else the current pointer's date."""
    target = verified_target(store, symbol, to, expected_recipe_hash)
    current = current_pointer(store, symbol)
    in_place = current is not None and current.sha256 == target.sha256
    if in_place and current.kind != "rollback":
        raise RollbackRefused(f"{target.model_id} is already the champion of {symbol}")
    if as_of is None:
        as_of = last_decided_day(store, symbol) or (None if current is None else current.as_of)
    if as_of is None:
        raise NoChampion(f"{symbol} has no champion: nothing to roll back")
    if current is not None and not in_place and as_of < current.as_of:
        raise RollbackRefused(f"the current champion is as of {current.as_of}, later than the rollback's {as_of}")
    return RollbackPlan(current, target, as_of, in_place)


def rollback_champion(
    store: ObjectStore,
    symbol: str,
    to: str,
    reason: str,
    as_of: dt.date | None,
    expected_recipe_hash: str | None = None,
    *,
    requested_by: str = "",
    promoted_at: str | None = None,
    fail_after: str | None = None,
) -> tuple[ChampionPointer, bool]:
    """Roll ``symbol`` back to the earlier champion ``to`` (module docstring; :func:`plan_rollback` checks it).
    Returns the pointer now in ``latest.json`` and whether this call wrote it (False: the same rollback was
    already in place, a rerun). Raises :class:`RollbackRefused` (nothing written) or :class:`InjectedCrash`
    (``fail_after``, tests)."""
    _check_symbol(symbol)
    if fail_after is not None and fail_after not in ROLLBACK_STEPS:
        raise ValueError(f"fail_after must be one of {ROLLBACK_STEPS} or None, got {fail_after!r}")
    if not reason or not reason.strip():
        raise RollbackRefused("a rollback needs a reason")
    plan = plan_rollback(store, symbol, to, expected_recipe_hash, as_of)
    current, target, as_of = plan.current, plan.target, plan.as_of
    if plan.in_place:
        return current, False  # this rollback is already in place (a rerun after a crash)
    if fail_after == "verified":
        raise InjectedCrash("verified")

    if promoted_at is None:  # to the microsecond: two rollbacks are two history entries and two registry rows
        promoted_at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    key = rollback_key(symbol, as_of, promoted_at)
    if store.exists(key):
        raise RollbackRefused(f"{key} exists: history entries are never rewritten")
    pointer = ChampionPointer(
        model_id=target.model_id,
        symbol=symbol,
        bucket_path=target.bucket_path,
        sha256=target.sha256,
        as_of=as_of,
        promoted_at=promoted_at,
        reason=reason.strip(),
        snapshot={
            "rolled_back_from": None if current is None else current.model_id,
            "from_sha256": None if current is None else current.sha256,
            "target_as_of": target.as_of.isoformat(),
            "requested_by": requested_by,
        },
        kind="rollback",
    )
    document = pointer.to_json()
    store.put(key, document, content_type="application/json")
    if fail_after == "history":
        raise InjectedCrash("history")
    store.put(latest_key(symbol), document, content_type="application/json")
    if fail_after == "latest":
        raise InjectedCrash("latest")
    return pointer, True


def rollback_row(pointer: ChampionPointer, timeframe: str) -> dict[str, Any]:
    """The ``promotions`` row of a rollback pointer (kind ``rollback``; its key includes the rollback's stamp, so
    a rerun writes the same row and two rollbacks of one date are two rows)."""
    if pointer.kind != "rollback":
        raise ValueError(f"{pointer.model_id} as of {pointer.as_of} is not a rollback")
    snap: Mapping[str, Any] = pointer.snapshot
    return {
        "symbol": pointer.symbol,
        "timeframe": timeframe,
        "as_of": pointer.as_of,
        "kind": "rollback",
        "event_id": _stamp(pointer.promoted_at),
        "from_model_id": snap.get("rolled_back_from"),
        "to_model_id": pointer.model_id,
        "reason": pointer.reason,
        "at": dt.datetime.fromisoformat(pointer.promoted_at),
        "snapshot": dict(snap),
        "sha256": pointer.sha256,
    }


def perform_rollback(
    store: ObjectStore,
    registry,
    symbol: str,
    to: str,
    reason: str,
    *,
    recipe_hash: str | None,
    timeframe: str,
    as_of: dt.date | None = None,
    requested_by: str = "",
    fail_after: str | None = None,
) -> tuple[ChampionPointer, bool]:
    """:func:`rollback_champion` as of ``as_of`` (default: :func:`last_decided_day`, else the current pointer's
    date: :func:`plan_rollback`), then its ``promotions`` row through ``registry`` (a
    :class:`~huracan_assets.registry.client.Registry`): the one path of the CLI, the Telegram bot and the service."""
    pointer, wrote = rollback_champion(
        store, symbol, to, reason, as_of, recipe_hash, requested_by=requested_by, fail_after=fail_after
    )
    row = rollback_row(pointer, timeframe)
    registry.upsert("promotions", [row])
    log_operator_decision(store, registry, timeframe, {
        "date": pointer.as_of.isoformat(), "symbol": symbol, "kind": "rollback", "event_id": row["event_id"],
        "reason": pointer.reason, "model_id": pointer.model_id, "champion_model_id": row["from_model_id"],
        "document": {"pointer": pointer.to_dict()},
    })  # fmt: skip
    if fail_after == "registry":
        raise InjectedCrash("registry")
    return pointer, wrote
