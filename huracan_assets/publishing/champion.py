"""Champion publication: copy a challenger bundle to ``models/``, verify it, then move the coin's pointer.

Layout (keys of an :class:`~huracan_assets.storage.object_store.ObjectStore`)::

    challengers/SYMBOL/<bundle_id>/{model.bin,config.json,metrics.json,sha256.txt}   # written by training
    models/SYMBOL/<bundle_id>/...                                                      # published copies
    champion/SYMBOL/history/YYYY-MM-DD.json                                            # one pointer per as-of date
    champion/SYMBOL/latest.json                                                        # the current pointer

Invariant: ``champion/SYMBOL/latest.json`` is always valid: it names a bundle under ``models/`` that exists,
verifies and whose content hash is the pointer's ``sha256``. :func:`publish_champion` keeps it by ordering its
steps (:data:`STEPS`) so that a crash after any of them leaves either the old pointer or the new one:

1. ``copied``: the challenger's four files are read, checked (a bundle that does not verify is refused before
   anything is written, so a corrupted challenger never overwrites a good copy) and copied to
   ``models/SYMBOL/<bundle_id>/`` (a file already there with the same bytes is left alone: reruns are idempotent);
2. ``verified``: the copy is read back and verified (files against ``sha256.txt``, the recorded object
   checksums, the config, the expected recipe hash, the same content hash as the challenger); a failure is
   refused with :class:`PublishRefused` and the old pointer stays;
3. ``history``: ``champion/SYMBOL/history/YYYY-MM-DD.json`` (the pointer document of that as-of date) is written;
4. ``latest``: ``latest.json`` is replaced LAST, by one atomic object put, and only forward in date: when the
   current latest has a later ``as_of`` (a backfill of an old date), it is left alone and the returned pointer
   says ``latest_moved=False``. The same ``as_of`` replaces it (a rerun of the date), unless it is a rollback of
   that date (``publishing/rollback.py``). A ``latest.json`` that does not parse is replaced.

The read-compare-put of step 4 is not a compare-and-swap: two publishers of one symbol at once could race
(the Dagster jobs run one partition per symbol and date, so only a manual concurrent run could).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from huracan_assets.core.models.bundle import (
    BUNDLE_FILES,
    BundleError,
    ModelBundle,
    canonical_json,
    verify_bundle,
)
from huracan_assets.storage.object_store import ObjectNotFound, ObjectStore, content_type_for, sha256_hex

STEPS = ("copied", "verified", "history", "latest")
POINTER_VERSION = 1
_SYMBOL = re.compile(r"^[A-Za-z0-9._-]+$")
_SHA = re.compile(r"^[0-9a-f]{64}$")
_BUNDLE_ID = re.compile(r"^\d{4}-\d{2}-\d{2}-[0-9a-f]{12}$")
_POINTER_KEYS = ("as_of", "bucket_path", "model_id", "pointer_version", "promoted_at", "reason", "sha256", "symbol")
KINDS = ("promotion", "rollback")  # a pointer without "kind" (written before rollbacks existed) is a promotion


class InjectedCrash(RuntimeError):
    """Raised by :func:`publish_champion` right after the step named by ``fail_after`` (crash tests)."""

    def __init__(self, step: str) -> None:
        super().__init__(f"injected crash after step {step!r}")
        self.step = step


class PublishRefused(BundleError):
    """The challenger (or its copy) does not verify: nothing was promoted, ``latest.json`` is unchanged."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"champion publication refused at {step!r}: {message}")
        self.step = step


class PointerError(ValueError):
    """A pointer document is malformed."""


class NoChampion(LookupError):
    """The symbol has no ``champion/SYMBOL/latest.json``."""


# --------------------------------------------------------------------------------------------- keys
def _check_symbol(symbol: str) -> str:
    if not isinstance(symbol, str) or not _SYMBOL.match(symbol):
        raise ValueError(f"invalid symbol {symbol!r}")
    return symbol


def latest_key(symbol: str) -> str:
    return f"champion/{_check_symbol(symbol)}/latest.json"


def history_key(symbol: str, as_of: dt.date) -> str:
    return f"champion/{_check_symbol(symbol)}/history/{as_of.isoformat()}.json"


def models_prefix(symbol: str, bundle_id: str) -> str:
    return f"models/{_check_symbol(symbol)}/{bundle_id}/"


# --------------------------------------------------------------------------------------------- pointer
@dataclass(frozen=True)
class ChampionPointer:
    """The pointer document (``latest.json`` / ``history/YYYY-MM-DD.json``); ``latest_moved`` is not stored.

    ``snapshot`` is the caller's record of the decision (gates, shadow stats ...), any JSON object. ``kind`` is
    ``promotion`` (the daily gates chose the bundle) or ``rollback`` (an operator re-pointed the coin at an earlier
    bundle: ``publishing/rollback.py``).
    """

    model_id: str
    symbol: str
    bucket_path: str  # models/SYMBOL/<bundle_id>/
    sha256: str  # the bundle's content hash (sha256 of sha256.txt)
    as_of: dt.date
    promoted_at: str  # ISO 8601 UTC
    reason: str
    snapshot: dict[str, Any] = field(default_factory=dict)
    kind: str = "promotion"
    latest_moved: bool = field(default=True, compare=False)

    @property
    def bundle_id(self) -> str:
        return self.bucket_path.rstrip("/").rsplit("/", 1)[-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "pointer_version": POINTER_VERSION,
            "model_id": self.model_id,
            "symbol": self.symbol,
            "bucket_path": self.bucket_path,
            "sha256": self.sha256,
            "as_of": self.as_of.isoformat(),
            "promoted_at": self.promoted_at,
            "reason": self.reason,
            "snapshot": self.snapshot,
            "kind": self.kind,
        }

    def to_json(self) -> bytes:
        """Canonical JSON (sorted keys, NaN as null): the same pointer gives the same bytes."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes | str) -> ChampionPointer:
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PointerError(f"pointer is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise PointerError("pointer must be a JSON object")
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ChampionPointer:
        missing = [k for k in _POINTER_KEYS if k not in doc]
        if missing:
            raise PointerError(f"pointer lacks keys {missing}")
        if doc["pointer_version"] != POINTER_VERSION:
            raise PointerError(f"unknown pointer_version {doc['pointer_version']!r}")
        for key in ("model_id", "symbol", "bucket_path", "sha256", "as_of", "promoted_at", "reason"):
            if not isinstance(doc[key], str):
                raise PointerError(f"pointer {key} must be a string, got {doc[key]!r}")
        try:
            as_of = dt.date.fromisoformat(doc["as_of"])
        except ValueError as exc:
            raise PointerError(f"pointer as_of is not a YYYY-MM-DD date: {doc['as_of']!r}") from exc
        if not _SYMBOL.match(doc["symbol"]):
            raise PointerError(f"pointer symbol {doc['symbol']!r} is invalid")
        if not _SHA.match(doc["sha256"]):
            raise PointerError(f"pointer sha256 {doc['sha256']!r} is not a sha256 hex digest")
        parts = doc["bucket_path"].split("/")
        if len(parts) != 4 or parts[:2] != ["models", doc["symbol"]] or parts[3] or not _BUNDLE_ID.match(parts[2]):
            raise PointerError(f"pointer bucket_path {doc['bucket_path']!r} is not models/{doc['symbol']}/<bundle_id>/")
        snapshot = doc.get("snapshot", {})
        if not isinstance(snapshot, dict):
            raise PointerError("pointer snapshot must be a JSON object")
        kind = doc.get("kind", "promotion")
        if kind not in KINDS:
            raise PointerError(f"pointer kind {kind!r} is not one of {KINDS}")
        return cls(
            model_id=doc["model_id"],
            symbol=doc["symbol"],
            bucket_path=doc["bucket_path"],
            sha256=doc["sha256"],
            as_of=as_of,
            promoted_at=doc["promoted_at"],
            reason=doc["reason"],
            snapshot=snapshot,
            kind=kind,
        )


# --------------------------------------------------------------------------------------------- reading
def _read_files(store: ObjectStore, prefix: str, *, verified: bool) -> dict[str, bytes]:
    """The four bundle files under ``prefix``; with ``verified``, each is also checked against the sha256 the
    store recorded when it was put. BundleError for a missing or mismatching file."""
    files = {}
    for name in BUNDLE_FILES:
        key = prefix + name
        try:
            data = store.get(key)
            recorded = store.info(key).sha256 if verified else None
        except ObjectNotFound as exc:
            raise BundleError(f"bundle file {key} is missing") from exc
        if recorded is not None and recorded != sha256_hex(data):
            raise BundleError(f"bundle file {key} does not match the sha256 recorded by the store")
        files[name] = data
    return files


def read_pointer(store: ObjectStore, symbol: str) -> ChampionPointer | None:
    """The current pointer of ``symbol``; None when there is no ``latest.json``. Raises :class:`PointerError`
    when it does not parse."""
    try:
        data = store.get(latest_key(symbol))
    except ObjectNotFound:
        return None
    pointer = ChampionPointer.from_json(data)
    if pointer.symbol != symbol:
        raise PointerError(f"{latest_key(symbol)} names symbol {pointer.symbol!r}")
    return pointer


def champion_symbols(store: ObjectStore) -> list[str]:
    """The coins with a ``champion/SYMBOL/latest.json``."""
    found = set()
    for key in store.list("champion/"):
        parts = key.split("/")
        if len(parts) == 3 and parts[2] == "latest.json":
            found.add(parts[1])
    return sorted(found)


def _pointed_bundle(store: ObjectStore, pointer: ChampionPointer, expected_recipe_hash: str | None) -> ModelBundle:
    """The bundle ``pointer`` names, verified; BundleError naming the problem otherwise."""
    bundle = verify_bundle(_read_files(store, pointer.bucket_path, verified=True), expected_recipe_hash)
    if bundle.content_hash != pointer.sha256:
        raise BundleError(
            f"bundle at {pointer.bucket_path} has content hash {bundle.content_hash}, the pointer says {pointer.sha256}"
        )
    if bundle.prefix(pointer.symbol, root="models") != pointer.bucket_path:
        raise BundleError(f"bundle at {pointer.bucket_path} is bundle {bundle.bundle_id()}: the path does not match")
    return bundle


def load_champion(
    store: ObjectStore, symbol: str, expected_recipe_hash: str | None = None
) -> tuple[ChampionPointer, ModelBundle]:
    """The current champion of ``symbol``: its pointer and its bundle, verified (sha256 of every file, the pointer's
    content hash, the recipe). :class:`NoChampion` without one; BundleError / PointerError when it is broken."""
    pointer = read_pointer(store, symbol)
    if pointer is None:
        raise NoChampion(f"{symbol} has no champion ({latest_key(symbol)} does not exist)")
    return pointer, _pointed_bundle(store, pointer, expected_recipe_hash)


def check_pointer(store: ObjectStore, symbol: str, expected_recipe_hash: str | None = None) -> tuple[bool, str]:
    """(valid, why): valid iff there is no ``latest.json`` (no champion yet) or it parses and names an existing
    bundle that verifies and whose content hash is the pointer's ``sha256``. Store outages raise."""
    try:
        pointer = read_pointer(store, symbol)
    except PointerError as exc:
        return False, f"{latest_key(symbol)} is invalid: {exc}"
    if pointer is None:
        return True, f"no champion yet for {symbol}"
    try:
        _pointed_bundle(store, pointer, expected_recipe_hash)
    except BundleError as exc:
        return False, f"{latest_key(symbol)} names {pointer.bucket_path}, which is broken: {exc}"
    return True, f"champion {pointer.model_id} as of {pointer.as_of} verifies at {pointer.bucket_path}"


def load_champion_bundle(store: ObjectStore, symbol: str, expected_recipe_hash: str | None = None) -> ModelBundle:
    """The verified champion bundle of ``symbol``; :class:`NoChampion` if none, BundleError if it is broken."""
    pointer = read_pointer(store, symbol)
    if pointer is None:
        raise NoChampion(f"no champion for {symbol} ({latest_key(symbol)} does not exist)")
    return _pointed_bundle(store, pointer, expected_recipe_hash)


def champion_urls(store: ObjectStore, symbol: str, expires_s: int = 3600, *, verify: bool = True) -> dict[str, str]:
    """Presigned URLs (``store.presigned_url``; ``file://`` URLs for a local store) of the champion's four files,
    in :data:`BUNDLE_FILES` order. The bundle is verified first unless ``verify=False``."""
    pointer = read_pointer(store, symbol)
    if pointer is None:
        raise NoChampion(f"no champion for {symbol} ({latest_key(symbol)} does not exist)")
    if verify:
        _pointed_bundle(store, pointer, None)
    return {name: store.presigned_url(pointer.bucket_path + name, expires_in=expires_s) for name in BUNDLE_FILES}


# --------------------------------------------------------------------------------------------- publishing
def _now_utc() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _check_publish_args(symbol: str, challenger_prefix: str, as_of: dt.date, promoted_at: str, fail_after: str | None):
    _check_symbol(symbol)
    if not isinstance(challenger_prefix, str) or not challenger_prefix.endswith("/"):
        raise ValueError(f"challenger_prefix must be a key prefix ending in '/', got {challenger_prefix!r}")
    if not isinstance(as_of, dt.date) or isinstance(as_of, dt.datetime):
        raise ValueError(f"as_of must be a datetime.date, got {as_of!r}")
    try:
        stamp = dt.datetime.fromisoformat(promoted_at)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"promoted_at must be an ISO 8601 timestamp, got {promoted_at!r}") from exc
    if stamp.utcoffset() != dt.timedelta(0):
        raise ValueError(f"promoted_at must be in UTC, got {promoted_at!r}")
    if fail_after is not None and fail_after not in STEPS:
        raise ValueError(f"fail_after must be one of {STEPS} or None, got {fail_after!r}")


def _copy(store: ObjectStore, symbol: str, challenger_prefix: str, expected_recipe_hash: str | None) -> ModelBundle:
    try:
        source = verify_bundle(_read_files(store, challenger_prefix, verified=False), expected_recipe_hash)
        dest = source.prefix(symbol, root="models")
    except BundleError as exc:
        raise PublishRefused("verified", f"challenger bundle {challenger_prefix} does not verify: {exc}") from exc
    for name in BUNDLE_FILES:
        key = dest + name
        try:
            if store.get(key) == source.files[name]:
                continue  # an identical copy: leave it (idempotent reruns)
        except ObjectNotFound:
            pass
        store.put(key, source.files[name], content_type=content_type_for(name))
    return source


def _verify_copy(store: ObjectStore, source: ModelBundle, dest: str, expected_recipe_hash: str | None) -> None:
    try:
        copy = verify_bundle(_read_files(store, dest, verified=True), expected_recipe_hash)
    except BundleError as exc:
        raise PublishRefused("verified", f"the copy at {dest} does not verify: {exc}") from exc
    if copy.content_hash != source.content_hash:
        raise PublishRefused("verified", f"the copy at {dest} differs from the challenger")


def current_pointer(store: ObjectStore, symbol: str) -> ChampionPointer | None:
    """The current latest.json; None when there is none or it does not parse (it is then replaced)."""
    try:
        return read_pointer(store, symbol)
    except PointerError:
        return None


def moves_latest(current: ChampionPointer | None, as_of: dt.date) -> bool:
    """Whether a promotion as of ``as_of`` replaces ``current``: only forward in date; the same date replaces a
    promotion (a rerun) but not a rollback of that date, which an operator made after the date's decision."""
    if current is None or current.as_of < as_of:
        return True
    return current.as_of == as_of and current.kind != "rollback"


def publish_champion(
    store: ObjectStore,
    symbol: str,
    challenger_prefix: str,
    as_of: dt.date,
    reason: str,
    snapshot: Mapping[str, Any],
    expected_recipe_hash: str | None = None,
    *,
    promoted_at: str | None = None,
    fail_after: str | None = None,
) -> ChampionPointer:
    """Publish the bundle under ``challenger_prefix`` as the champion of ``symbol`` as of ``as_of`` (module
    docstring: steps and guarantees). ``promoted_at`` defaults to now (ISO UTC); ``fail_after`` raises
    :class:`InjectedCrash` right after the named step. Raises :class:`PublishRefused` for a bundle that does not
    verify (``latest.json`` is then unchanged)."""
    promoted_at = _now_utc() if promoted_at is None else promoted_at
    _check_publish_args(symbol, challenger_prefix, as_of, promoted_at, fail_after)
    snapshot = json.loads(canonical_json(dict(snapshot)))  # JSON-ready (numpy, NaN) and refused early if not

    def _step_done(step: str) -> None:
        if fail_after == step:
            raise InjectedCrash(step)

    source = _copy(store, symbol, challenger_prefix, expected_recipe_hash)
    dest = source.prefix(symbol, root="models")
    _step_done("copied")

    _verify_copy(store, source, dest, expected_recipe_hash)
    _step_done("verified")

    pointer = ChampionPointer(
        model_id=f"{symbol}-{source.bundle_id()}",
        symbol=symbol,
        bucket_path=dest,
        sha256=source.content_hash,
        as_of=as_of,
        promoted_at=promoted_at,
        reason=reason,
        snapshot=snapshot,
    )
    document = pointer.to_json()
    store.put(history_key(symbol, as_of), document, content_type="application/json")
    _step_done("history")

    moved = moves_latest(current_pointer(store, symbol), as_of)
    if moved:
        store.put(latest_key(symbol), document, content_type="application/json")
    _step_done("latest")
    return dataclasses.replace(pointer, latest_moved=moved)
