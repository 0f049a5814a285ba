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
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from huracan_assets.names import STATUSES, KeyState, Status, join_key, split_key
from huracan_assets.storage.object_store import ObjectNotFound, ObjectStore, sha256_hex


@dataclass(frozen=True)
class SymbolOutcome:
    """What one key produced, when a bare frame is not enough.

    ``failed`` (an error) and ``skipped`` (a reason, not an error) hold the key out of its downstream
    assets. Either may still carry a ``frame`` that is stored (nothing fetched is thrown away), and
    any outcome may carry ``detail``: quality numbers recorded with the key's status in the registry.
    """

    status: Status
    reason: str | None = None
    frame: pl.DataFrame | None = field(default=None, compare=False)
    detail: dict | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be ok, failed or skipped, not {self.status!r}")
        if self.status == "ok" and self.frame is None:
            raise ValueError("an ok outcome needs a frame")

    @classmethod
    def ok(cls, frame: pl.DataFrame, detail: dict | None = None) -> SymbolOutcome:
        return cls("ok", None, frame, detail)

    @classmethod
    def failed(cls, reason: str, frame: pl.DataFrame | None = None, detail: dict | None = None) -> SymbolOutcome:
        return cls("failed", reason, frame, detail)

    @classmethod
    def skipped(cls, reason: str, frame: pl.DataFrame | None = None, detail: dict | None = None) -> SymbolOutcome:
        return cls("skipped", reason, frame, detail)


def as_outcome(value: pl.DataFrame | SymbolOutcome) -> SymbolOutcome:
    return value if isinstance(value, SymbolOutcome) else SymbolOutcome.ok(value)


def data_key(asset: str, key: str) -> str:
    day, symbol = split_key(key)
    return f"{asset}/{symbol}/{day.isoformat()}.parquet" if symbol else f"{asset}/{day.isoformat()}.parquet"


def status_key(asset: str, key: str) -> str:
    day, symbol = split_key(key)
    return f"_status/{asset}/{symbol}/{day.isoformat()}.json" if symbol else f"_status/{asset}/{day.isoformat()}.json"


def frame_to_bytes(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf, compression="zstd", statistics=True)
    return buf.getvalue()


def bytes_to_frame(data: bytes) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(data))


def write_frame(store: ObjectStore, asset: str, key: str, frame: pl.DataFrame, *, clear_marker: bool = True) -> str:
    """Store the frame, unless identical bytes are already stored; returns the sha256."""
    digest, _ = put_frame(store, asset, key, frame)
    if clear_marker:
        clear_outcome(store, asset, key)
    return digest


def put_frame(store: ObjectStore, asset: str, key: str, frame: pl.DataFrame) -> tuple[str, bool]:
    """``(sha256, changed)``: identical content is stored once and reported unchanged."""
    data = frame_to_bytes(frame)
    digest = sha256_hex(data)
    target = data_key(asset, key)
    try:
        if store.info(target).sha256 == digest:
            return digest, False
    except ObjectNotFound:
        pass
    return store.put(target, data), True


def clear_outcome(store: ObjectStore, asset: str, key: str) -> None:
    marker = status_key(asset, key)
    if store.exists(marker):
        store.delete(marker)


def write_outcome(store: ObjectStore, asset: str, key: str, outcome: SymbolOutcome, run_id: str | None) -> None:
    body = json.dumps(
        {"status": outcome.status, "reason": outcome.reason, "detail": outcome.detail, "run_id": run_id}, default=str
    ).encode()
    store.put(status_key(asset, key), body, content_type="application/json")


@dataclass(frozen=True)
class KeyStatus:
    status: KeyState
    reason: str | None = None


class PartitionWindow(Mapping[str, pl.DataFrame]):
    """The upstream keys of an input, sorted, read lazily one object at a time.

    ``window[key]`` loads that object (``KeyError`` if it is not usable); ``status(key)`` says why;
    ``symbols()`` and ``frame(symbol)`` read coin by coin so a wide window never sits in memory.
    """

    def __init__(self, store: ObjectStore, asset: str, keys: list[str]) -> None:
        self.store = store
        self.asset = asset
        self._keys = sorted({str(k) for k in keys}, key=lambda k: (split_key(k)[1] or "", split_key(k)[0]))
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
        return sorted({s for s in (split_key(k)[1] for k in self._keys) if s})

    def keys_for(self, symbol: str | None = None, day: date | None = None) -> list[str]:
        out = []
        for key in self._keys:
            d, s = split_key(key)
            if (symbol is None or s == symbol) and (day is None or d == day):
                out.append(key)
        return out

    def missing(self, symbol: str | None = None) -> list[str]:
        """Keys (sorted) that are not usable, named explicitly."""
        return [k for k in self.keys_for(symbol) if self.status(k).status != "ok"]

    def days(self, symbol: str, days: list[date]) -> tuple[pl.DataFrame | None, list[date]]:
        """The usable objects of ``symbol`` on ``days`` concatenated in the given order, and the days that were
        not usable (missing, failed, skipped or outside the window). ``None`` when no day is usable."""
        frames, missing = [], []
        for d in days:
            key = join_key(d, symbol)
            if key in self and self.status(key).status == "ok":
                frames.append(self[key])
            else:
                missing.append(d)
        return (pl.concat(frames, how="vertical_relaxed") if frames else None), missing

    def frame(self, symbol: str | None = None, *, with_day: bool = False) -> pl.DataFrame | None:
        """Usable days of one symbol concatenated in date order; ``None`` if none is usable."""
        frames = []
        for key in self.keys_for(symbol):
            if self.status(key).status == "ok":
                part = self[key]
                frames.append(part.with_columns(day=pl.lit(split_key(key)[0].isoformat())) if with_day else part)
        return pl.concat(frames, how="vertical_relaxed") if frames else None


def usable_days(store: ObjectStore, asset: str, symbol: str, days: list[date]) -> dict[date, pl.DataFrame]:
    """The stored frames of ``asset`` for ``symbol`` by day, usable days only (status ok), as the assets read
    them through their inputs."""
    window = PartitionWindow(store, asset, [join_key(d, symbol) for d in days])
    return {split_key(k)[0]: window[k] for k in window if window.status(k).status == "ok"}


def reference_closes(store: ObjectStore, symbol: str, days: list[date]) -> dict[date, pl.DataFrame]:
    """The reference coin's closes (``ts``, ``close``) by day, from ``reference_candles`` (the day-only asset every
    reader declares as a dependency; missing days and days without the coin are left out)."""
    window = PartitionWindow(store, "reference_candles", [d.isoformat() for d in days])
    out = {}
    for key in window:
        if window.status(key).status == "ok":
            frame = window[key].filter(pl.col("symbol") == symbol)
            if frame.height:
                out[split_key(key)[0]] = frame.select("ts", "close")
    return out
