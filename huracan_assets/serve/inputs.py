"""The model inputs of a coin and day for the service: the graph's stored days first, the exchange for the rest.

:func:`~huracan_assets.core.inference.model_inputs` needs the coin's candles of D and of the days before it that
its features, regimes and engines read, the reference coin's closes of the same days, the daily spreads and the
coin's ``meta_weights`` of D-1. :class:`InputReader` gathers them:

* **candles**: a day the graph stored as usable (``candles`` status ok) is read from the store, so a bar the graph
  scored gets the graph's exact inputs; a day the graph refused (status failed) stays out, as in the graph; a day
  it has not stored (today, or dates not run yet) is fetched from the configured exchange, cleaned with the
  candles asset's policy and, when the day is over, held to the same quality thresholds (``assess``). Candles
  posted in the request body replace all of this for the coin (they are cleaned and assessed the same way);
* **reference closes**: ``reference_candles`` from the store, the exchange for missing days (or the body);
* **spreads** and **meta_weights[D-1]**: from the store only (the graph's products; without a meta state of D-1
  the combiner starts cold, which the answer reports).

The current, unfinished day is cleaned up to its last closed bar and not assessed (its bars are still coming).
Rows are cached per (coin, day and the bars they were built from).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import polars as pl

from huracan_assets.core.engines.signals import MetaState
from huracan_assets.core.inference import InferenceError, model_inputs
from huracan_assets.core.market_data.candles import date_range, day_bounds_ms, ms_to_date
from huracan_assets.core.market_data.cleaning import CleaningPolicy, clean_candles
from huracan_assets.core.market_data.ingest import QualityThresholds, assess
from huracan_assets.core.pipeline.replay import ReplaySpec
from huracan_assets.exchange.files import ExchangeError
from huracan_assets.names import join_key
from huracan_assets.storage.object_store import ObjectStore
from huracan_assets.storage.partitioned import PartitionWindow, reference_closes, usable_days

CANDLE_INPUT_SCHEMA = {"ts": pl.Int64, "open": pl.Float64, "high": pl.Float64, "low": pl.Float64,
                       "close": pl.Float64, "volume": pl.Float64}  # fmt: skip


class InputError(ValueError):
    """The request's inputs cannot give the model's rows (too few bars, malformed candles, no such bar): a 4xx."""


class UpstreamError(RuntimeError):
    """The exchange failed while fetching missing days: a 503, the request may be retried."""


@dataclass(frozen=True)
class InputsSpec:
    replay: ReplaySpec
    lead_days: int  # days before D whose candles the rows read (specs.replay_lead_days)
    reference_symbol: str
    policy: CleaningPolicy
    thresholds: QualityThresholds
    fetch_missing: bool = True


@dataclass
class DayInputs:
    """What :func:`model_inputs` is given for one coin and day, and where each part came from."""

    day: date
    candles: dict[date, pl.DataFrame]
    reference: dict[date, pl.DataFrame]
    spreads: dict[date, pl.DataFrame]
    meta: MetaState | None
    sources: dict[str, int] = field(default_factory=dict)  # candle days per source: store, exchange, body
    refused_days: dict[str, str] = field(default_factory=dict)  # day -> why it is left out

    def describe(self) -> dict:
        return {
            "candle_days": self.sources,
            "refused_days": self.refused_days,
            "reference_days": len(self.reference),
            "spread_days": len(self.spreads),
            "meta_weights_of": (self.day - timedelta(days=1)).isoformat() if self.meta is not None else None,
        }


def bars_frame(rows: list[Mapping]) -> pl.DataFrame:
    """Posted bars (objects with ts, open, high, low, close, volume) as a candle frame; InputError if malformed."""
    if not rows:
        raise InputError("no candles in the body")
    try:
        orient = "row" if isinstance(rows[0], list | tuple) else None
        return pl.DataFrame(rows, schema=CANDLE_INPUT_SCHEMA, orient=orient)
    except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"malformed candles: {exc}") from exc


class InputReader:
    """Model input rows of a coin and day (module docstring); ``exchange``: a client of ``exchange/`` or None."""

    def __init__(self, store: ObjectStore, spec: InputsSpec, exchange=None, cache_entries: int = 64) -> None:
        self.store, self.spec, self.exchange = store, spec, exchange
        self.bar_ms = spec.replay.bar_minutes * 60_000
        self.cache_entries = cache_entries
        self._rows: OrderedDict[str, pl.DataFrame] = OrderedDict()
        self._lock = threading.Lock()

    # ---------------------------------------------------------------------------------------- the clock
    def last_closed_bar(self, symbol: str) -> int:
        """The open time of the coin's last closed bar: by the exchange's clock when days are fetched from it,
        else the last bar the graph stored."""
        if self.exchange is not None and self.spec.fetch_missing:
            now = self._now()
            if now is not None:
                return (now // self.bar_ms) * self.bar_ms - self.bar_ms
        days = sorted(
            date.fromisoformat(k.rsplit("/", 1)[1].removesuffix(".parquet"))
            for k in self.store.list(f"candles/{symbol}/")
            if k.endswith(".parquet")
        )
        for day in reversed(days):
            frames = usable_days(self.store, "candles", symbol, [day])
            if day in frames and frames[day].height:
                return int(frames[day]["ts"].max())
        raise InputError(f"no candles of {symbol}: the graph has stored none and no exchange is configured")

    def _now(self) -> int | None:
        try:
            now = self.exchange.now_ms()
            if now is None and hasattr(self.exchange, "coverage"):  # a folder has no clock: its last bar closed
                coverage = self.exchange.coverage()
                now = None if coverage is None else coverage[1] + self.bar_ms
            return now
        except ExchangeError as exc:
            raise UpstreamError(f"the exchange's clock: {exc}") from exc

    # ---------------------------------------------------------------------------------------- the inputs
    def inputs(
        self, symbol: str, day: date, posted: pl.DataFrame | None = None, posted_reference: pl.DataFrame | None = None
    ) -> DayInputs:
        days = date_range(day - timedelta(days=self.spec.lead_days), day)
        out = DayInputs(day, {}, {}, {}, None)
        if posted is not None:
            out.candles = self._split(posted, days, out.refused_days)
            out.sources = {"body": len(out.candles)}
        else:
            out.candles, out.sources = self._stored_or_fetched(symbol, days, out.refused_days)
        if posted_reference is not None:
            out.reference = {d: f.select("ts", "close") for d, f in self._split(posted_reference, days, {}).items()}
        else:
            out.reference = reference_closes(self.store, self.spec.reference_symbol, days)
            missing = [d for d in days if d not in out.reference]
            if missing and self.exchange is not None and self.spec.fetch_missing:
                fetched = self._fetch(self.spec.reference_symbol, missing, {})
                out.reference.update({d: f.select("ts", "close") for d, f in fetched.items()})
        out.spreads = usable_days(self.store, "spreads", symbol, days)
        meta = usable_days(self.store, "meta_weights", symbol, [day - timedelta(days=1)])
        out.meta = MetaState.from_frame(meta[day - timedelta(days=1)]) if meta else None
        return out

    def _stored_or_fetched(self, symbol: str, days: list[date], refused: dict[str, str]):
        window = PartitionWindow(self.store, "candles", [join_key(d, symbol) for d in days])
        candles, missing = {}, []
        for d in days:
            status = window.status(join_key(d, symbol))
            if status.status == "ok":
                candles[d] = window[join_key(d, symbol)]
            elif status.status == "missing":
                missing.append(d)
            else:
                refused[d.isoformat()] = f"the graph's candles are {status.status}: {status.reason}"
        sources = {"store": len(candles)}
        if missing and self.exchange is not None and self.spec.fetch_missing:
            fetched = self._fetch(symbol, missing, refused)
            candles.update(fetched)
            sources["exchange"] = len(fetched)
        return dict(sorted(candles.items())), sources

    def _fetch(self, symbol: str, days: list[date], refused: dict[str, str]) -> dict[date, pl.DataFrame]:
        start, end = day_bounds_ms(days[0])[0], day_bounds_ms(days[-1])[1]
        try:
            now = self._now()
            frame = self.exchange.fetch_ohlcv(symbol, start, end, now_ms=now)
        except ExchangeError as exc:
            raise UpstreamError(f"fetching {symbol} {days[0]}..{days[-1]}: {str(exc).splitlines()[0][:200]}") from exc
        got = self._split(frame, days, refused)
        return got

    def _split(self, frame: pl.DataFrame, days: list[date], refused: dict[str, str]) -> dict[date, pl.DataFrame]:
        """Raw bars cleaned day by day, as the candles asset cleans them; a finished day that fails the quality
        thresholds is left out (the graph would not use it); the last, unfinished day is cut at its last bar."""
        if frame.is_empty():
            return {}
        try:
            day_of = frame.with_columns(day=pl.from_epoch(pl.col("ts").cast(pl.Int64), time_unit="ms").dt.date())
        except (pl.exceptions.PolarsError, TypeError) as exc:
            raise InputError(f"malformed candles: {exc}") from exc
        last_ts = int(frame["ts"].max())
        out = {}
        for d in days:
            raw = day_of.filter(pl.col("day") == d).drop("day")
            if raw.is_empty():
                continue
            start, end = day_bounds_ms(d)
            finished = last_ts + self.bar_ms >= end
            try:
                bars, report = clean_candles(raw, start, end if finished else last_ts + self.bar_ms, self.spec.policy)
            except ValueError as exc:
                raise InputError(f"malformed candles on {d}: {exc}") from exc
            if finished:
                verdict = assess(bars, report, end, self.bar_ms, self.spec.thresholds)
                if verdict.status != "ok":
                    refused[d.isoformat()] = verdict.reason or "failed the quality thresholds"
                    continue
            out[d] = bars
        return out

    # ---------------------------------------------------------------------------------------- the rows
    def rows(self, symbol: str, day: date, inputs: DayInputs) -> pl.DataFrame:
        """The model's input rows of ``day`` (cached by what they are built from); InputError when impossible."""
        if day not in inputs.candles:
            why = inputs.refused_days.get(day.isoformat(), "no candles of that day")
            raise InputError(f"{symbol} {day}: {why}")
        key = _fingerprint(symbol, inputs)
        with self._lock:
            if key in self._rows:
                self._rows.move_to_end(key)
                return self._rows[key]
        try:
            rows = model_inputs(inputs.candles, inputs.reference, inputs.meta, day, self.spec.replay, inputs.spreads)
        except InferenceError as exc:
            raise InputError(f"{symbol} {day}: {exc}") from exc
        with self._lock:
            self._rows[key] = rows
            while len(self._rows) > self.cache_entries:
                self._rows.popitem(last=False)
        return rows


def _fingerprint(symbol: str, inputs: DayInputs) -> str:
    h = hashlib.sha256(f"{symbol}|{inputs.day}|{inputs.meta is not None}".encode())
    for part in (inputs.candles, inputs.reference, inputs.spreads):
        for d, frame in sorted(part.items()):
            h.update(f"{d}:{frame.height}:".encode())
            if frame.height:
                h.update(str(frame.hash_rows().sum()).encode())
    return h.hexdigest()


def day_of_ts(ts: int) -> date:
    return ms_to_date(ts)
