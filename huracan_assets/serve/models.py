"""The service's models: each coin's champion, reloaded when its pointer moves, and any stored bundle by id.

:class:`ModelCache` keeps the verified bundle of each coin's champion with its loaded booster. A request re-reads
``champion/SYMBOL/latest.json`` once ``reload_seconds`` have passed since the last read (0: on every request), and
when the pointer names another bundle, the new one is verified and swapped in: a promotion or a rollback is served
without a restart, and every answer names the model that gave it. A pointer that does not parse or a bundle that
does not verify is refused with :class:`ModelUnavailable`, and the last good champion is not served in its place
(the live side must know that the Engine's champion is broken).

Other models: ``challenger`` (the coin's newest challenger bundle, by its date) or a model id
(``SYMBOL-YYYY-MM-DD-<hash>``), looked up under ``models/``, ``challengers/`` and ``refits/``.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from huracan_assets.core.models.base import Model
from huracan_assets.core.models.bundle import BUNDLE_FILES, BundleError, ModelBundle, load_bundle_model, verify_bundle
from huracan_assets.publishing.champion import (
    ChampionPointer,
    NoChampion,
    PointerError,
    _pointed_bundle,
    champion_symbols,
    read_pointer,
)
from huracan_assets.storage.object_store import ObjectStore, ObjectStoreError

ROOTS = ("models", "challengers", "refits")  # where bundles live (publishing/champion.py, defs/models.py)
_MODEL_ID = re.compile(r"^([A-Za-z0-9._-]+)-(\d{4}-\d{2}-\d{2}-[0-9a-f]{12})$")


class ModelUnavailable(LookupError):
    """No usable model for the request: no champion, an unknown model id, or a broken pointer or bundle."""


class RecipeMismatch(ModelUnavailable):
    """The bundle was trained on another feature recipe than the service's: its inputs cannot be built here."""


def _unavailable(what: str, exc: BundleError, recipe_hash: str) -> ModelUnavailable:
    kind = RecipeMismatch if "recipe hash mismatch" in str(exc) else ModelUnavailable
    return kind(f"{what} does not verify against recipe {recipe_hash}: {exc}")


@dataclass(frozen=True)
class Served:
    """A verified bundle, its booster, and what the answer says about it."""

    model_id: str
    role: str  # champion | challenger | model
    bundle: ModelBundle
    model: Model
    pointer: ChampionPointer | None = None  # champions only

    @property
    def as_of(self) -> str:
        return self.bundle.config.get("as_of", "")


class ModelCache:
    """Champions with hot reload, and other bundles by id (an LRU of ``max_bundles``)."""

    def __init__(
        self,
        store: ObjectStore,
        recipe_hash: str,
        reload_seconds: float = 5.0,
        threads: int = 1,
        max_bundles: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.recipe_hash, self.reload_seconds, self.threads = store, recipe_hash, reload_seconds, threads
        self.max_bundles, self.clock = max_bundles, clock
        self._champions: dict[str, tuple[float, Served]] = {}  # symbol -> (checked at, served)
        self._bundles: OrderedDict[str, Served] = OrderedDict()  # bucket path -> served
        self._lock = threading.Lock()
        self.reloads: dict[str, int] = {}  # symbol -> champion (re)loads, for /metrics

    # ------------------------------------------------------------------------------------------ champions
    def champion(self, symbol: str) -> Served:
        now = self.clock()
        with self._lock:
            cached = self._champions.get(symbol)
            if cached is not None and now - cached[0] < self.reload_seconds:
                return cached[1]
        try:
            pointer = read_pointer(self.store, symbol)
        except PointerError as exc:
            raise ModelUnavailable(f"the champion pointer of {symbol} is invalid: {exc}") from exc
        except ValueError as exc:  # an invalid symbol
            raise ModelUnavailable(str(exc)) from exc
        if pointer is None:
            raise ModelUnavailable(f"{symbol} has no champion")
        if cached is not None and cached[1].pointer == pointer:
            served = cached[1]
        else:
            try:
                bundle = _pointed_bundle(self.store, pointer, self.recipe_hash)
            except BundleError as exc:
                raise _unavailable(f"the champion of {symbol} ({pointer.model_id})", exc, self.recipe_hash) from exc
            served = Served(pointer.model_id, "champion", bundle, self._load(bundle), pointer)
            self.reloads[symbol] = self.reloads.get(symbol, 0) + 1
        with self._lock:
            self._champions[symbol] = (now, served)
        return served

    def forget(self, symbol: str) -> None:
        """Re-read the coin's pointer on the next request (after a rollback made here)."""
        with self._lock:
            self._champions.pop(symbol, None)

    def served_pointers(self) -> dict[str, ChampionPointer]:
        with self._lock:
            return {s: served.pointer for s, (_, served) in self._champions.items() if served.pointer is not None}

    def champions(self) -> list[str]:
        """The coins with a ``champion/SYMBOL/latest.json``."""
        return champion_symbols(self.store)

    def pointer(self, symbol: str) -> ChampionPointer:
        try:
            pointer = read_pointer(self.store, symbol)
        except (PointerError, ValueError) as exc:
            raise ModelUnavailable(f"the champion pointer of {symbol} is invalid: {exc}") from exc
        if pointer is None:
            raise NoChampion(f"{symbol} has no champion")
        return pointer

    # ------------------------------------------------------------------------------------------ others
    def challenger(self, symbol: str) -> Served:
        """The coin's newest challenger (the bundle ids start with their training date)."""
        ids = sorted({k.split("/")[2] for k in self.store.list(f"challengers/{symbol}/") if k.count("/") == 3})
        if not ids:
            raise ModelUnavailable(f"{symbol} has no challenger")
        return self._bundle(f"challengers/{symbol}/{ids[-1]}/", f"{symbol}-{ids[-1]}", "challenger")

    def by_id(self, symbol: str, model_id: str) -> Served:
        match = _MODEL_ID.match(model_id)
        if match is None or match.group(1) != symbol:
            raise ModelUnavailable(f"{model_id!r} is not a model id of {symbol} ({symbol}-YYYY-MM-DD-<12 hex>)")
        for root in ROOTS:
            prefix = f"{root}/{symbol}/{match.group(2)}/"
            if self.store.exists(prefix + "sha256.txt"):
                return self._bundle(prefix, model_id, "model")
        raise ModelUnavailable(f"no bundle {model_id} under {', '.join(ROOTS)}")

    def resolve(self, symbol: str, model: str) -> Served:
        if model == "champion":
            return self.champion(symbol)
        if model == "challenger":
            return self.challenger(symbol)
        return self.by_id(symbol, model)

    def _bundle(self, prefix: str, model_id: str, role: str) -> Served:
        with self._lock:
            if prefix in self._bundles:
                self._bundles.move_to_end(prefix)
                served = self._bundles[prefix]
                return Served(model_id, role, served.bundle, served.model)
        try:
            files = {name: self.store.get_verified(prefix + name) for name in BUNDLE_FILES}
            bundle = verify_bundle(files, self.recipe_hash)
        except ObjectStoreError as exc:
            raise ModelUnavailable(f"the bundle at {prefix} cannot be read: {exc}") from exc
        except BundleError as exc:
            raise _unavailable(f"the bundle at {prefix}", exc, self.recipe_hash) from exc
        served = Served(model_id, role, bundle, self._load(bundle))
        with self._lock:
            self._bundles[prefix] = served
            while len(self._bundles) > self.max_bundles:
                self._bundles.popitem(last=False)
        return served

    def _load(self, bundle: ModelBundle) -> Model:
        return load_bundle_model(bundle, threads=self.threads)
