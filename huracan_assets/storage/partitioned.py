"""One parquet object per (asset, symbol, day), per-key status markers, and lazy window reads.

Layout (ARCHITECTURE.md "Storage"):
- data:    ``<asset>/<SYMBOL>/<YYYY-MM-DD>.parquet`` (day-only assets: ``<asset>/<YYYY-MM-DD>.parquet``)
- status:  ``_status/<asset>/<SYMBOL>/<YYYY-MM-DD>.json`` exists only while the key is failed/skipped

A failed or skipped key never deletes data already stored: the marker takes precedence over it, and a
later successful write replaces the data and removes the marker.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date

import polars as pl

from huracan_assets.storage.object_store import ObjectNotFound, ObjectStore


@dataclass(frozen=True)
class SymbolOutcome:
    """A key that produced no frame: ``failed`` (an error) or ``skipped`` (a reason, not an error)."""

    status: str
    reason: str

    def __post_init__(self) -> None:
        if self.status not in ("failed", "skipped"):
            raise ValueError(f"status must be failed or skipped, not {self.status!r}")

    @classmethod
    def failed(cls, reason: str) -> SymbolOutcome:
        return cls("failed", reason)

    @classmethod
    def skipped(cls, reason: str) -> SymbolOutcome:
        return cls("skipped", reason)


def split(key: str) -> tuple[str, str | None]:
    day, _, symbol = str(key).partition("|")
    return day, (symbol or None)


def data_key(asset: str, key: str) -> str:
    day, symbol = split(key)
    return f"{asset}/{symbol}/{day}.parquet" if symbol else f"{asset}/{day}.parquet"


def status_key(asset: str, key: str) -> str:
    day, symbol = split(key)
    return f"_status/{asset}/{symbol}/{day}.json" if symbol else f"_status/{asset}/{day}.json"


def frame_to_bytes(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf, compression="zstd", statistics=True)
    return buf.getvalue()


def bytes_to_frame(data: bytes) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(data))


def write_frame(store: ObjectStore, asset: str, key: str, frame: pl.DataFrame) -> str:
    digest = store.put(data_key(asset, key), frame_to_bytes(frame))
    marker = status_key(asset, key)
    if store.exists(marker):
        store.delete(marker)
    return digest


def write_outcome(store: ObjectStore, asset: str, key: str, outcome: SymbolOutcome, run_id: str | None) -> None:
    body = json.dumps({"status": outcome.status, "reason": outcome.reason, "run_id": run_id}).encode()
    store.put(status_key(asset, key), body, content_type="application/json")


@dataclass(frozen=True)
class KeyStatus:
    status: str  # ok | failed | skipped | missing
    reason: str | None = None


class PartitionWindow(Mapping[str, pl.DataFrame]):
    """The upstream keys of an input, sorted, read lazily one object at a time.

    ``window[key]`` loads that object (``KeyError`` if it is not usable); ``status(key)`` says why;
    ``symbols()`` and ``frame(symbol)`` read coin by coin so a wide window never sits in memory.
    """

    def __init__(self, store: ObjectStore, asset: str, keys: list[str]) -> None:
        self.store = store
        self.asset = asset
        self._keys = sorted({str(k) for k in keys}, key=lambda k: (split(k)[1] or "", split(k)[0]))
        self._status: dict[str, KeyStatus] = {}

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def status(self, key: str) -> KeyStatus:
        if key not in self._status:
            marker = status_key(self.asset, key)
            try:
                body = json.loads(self.store.get(marker))
                self._status[key] = KeyStatus(body.get("status", "failed"), body.get("reason"))
            except ObjectNotFound:
                present = self.store.exists(data_key(self.asset, key))
                self._status[key] = KeyStatus("ok") if present else KeyStatus("missing", "not materialized")
        return self._status[key]

    def __getitem__(self, key: str) -> pl.DataFrame:
        if key not in self._keys:
            raise KeyError(key)
        st = self.status(key)
        if st.status != "ok":
            raise KeyError(f"{self.asset} {key} is {st.status}: {st.reason}")
        return bytes_to_frame(self.store.get(data_key(self.asset, key)))

    def symbols(self) -> list[str]:
        return sorted({s for s in (split(k)[1] for k in self._keys) if s})

    def keys_for(self, symbol: str | None = None, day: date | None = None) -> list[str]:
        out = []
        for key in self._keys:
            d, s = split(key)
            if (symbol is None or s == symbol) and (day is None or d == day.isoformat()):
                out.append(key)
        return out

    def missing(self, symbol: str | None = None) -> list[str]:
        """Keys (sorted) that are not usable, named explicitly."""
        return [k for k in self.keys_for(symbol) if self.status(k).status != "ok"]

    def frame(self, symbol: str | None = None, *, with_day: bool = False) -> pl.DataFrame | None:
        """Usable days of one symbol concatenated in date order; ``None`` if none is usable."""
        frames = []
        for key in self.keys_for(symbol):
            if self.status(key).status == "ok":
                part = self[key]
                frames.append(part.with_columns(day=pl.lit(split(key)[0])) if with_day else part)
        return pl.concat(frames, how="vertical_relaxed") if frames else None
