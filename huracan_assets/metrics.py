"""The Engine's metrics for Prometheus, read at scrape time from the registry and the object store.

Served on ``huracan serve``'s ``/metrics`` beside the service's own. Each scrape reads:

* ``huracan_keys{asset, date, status}``: coins ok, failed and skipped per asset and date, for the last ``days``
  dates (the IO managers' ``symbol_status`` log);
* ``huracan_promotions{kind}``: promotions and rollbacks recorded;
* ``huracan_champion_age_days{symbol}``: days since each champion's pointer date;
* ``huracan_champion_shadow_net_bps{symbol}`` and ``huracan_champion_shadow_trades{symbol}``: the champions' mean
  net bps per trade and trades in their forward ledgers over the last ``days`` dates;
* ``huracan_data_age_seconds``: seconds since the end of the last date with candles stored.

A failing read is reported as ``huracan_metrics_errors{source}``, never as a failed scrape.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from prometheus_client.core import GaugeMetricFamily

from huracan_assets.core.market_data.candles import day_bounds_ms
from huracan_assets.publishing.champion import PointerError, champion_symbols, read_pointer
from huracan_assets.storage.object_store import ObjectStore


class EngineCollector:
    """A prometheus_client collector over the registry (``registry_factory()``, opened once) and the store."""

    def __init__(
        self,
        store: ObjectStore,
        registry_factory: Callable[[], object],
        days: int = 3,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store, self.registry_factory, self.days, self.clock = store, registry_factory, days, clock
        self._registry = None

    def _reg(self):
        if self._registry is None:
            self._registry = self.registry_factory()
        return self._registry

    def describe(self):
        return []  # collected at scrape time only

    def collect(self):
        errors = GaugeMetricFamily("huracan_metrics_errors", "Metric sources that could not be read", labels=["source"])
        now = self.clock()
        window = [now.date() - timedelta(days=i) for i in range(self.days + 1)]
        for source, build in (("symbol_status", self._keys), ("promotions", self._promotions),
                              ("champions", self._champions), ("shadow_trades", self._shadow)):  # fmt: skip
            try:
                yield from build(window, now)
            except Exception:  # a scrape never fails: the source is reported instead
                errors.add_metric([source], 1.0)
        yield errors

    def _keys(self, window: list[date], now: datetime):
        rows = self._reg().select("symbol_status", as_of=window)
        counts = Counter((r["asset"], r["as_of"].isoformat(), r["status"]) for r in rows)
        keys = GaugeMetricFamily("huracan_keys", "Coins per asset, date and status", labels=["asset", "date", "status"])
        for (asset, day, status), n in sorted(counts.items()):
            keys.add_metric([asset, day, status], n)
        yield keys
        candle_days = [r["as_of"] for r in rows if r["asset"] == "candles" and r["status"] == "ok"]
        if candle_days:
            end_ms = day_bounds_ms(max(candle_days))[1]
            age = GaugeMetricFamily("huracan_data_age_seconds", "Seconds since the end of the last date with candles")
            age.add_metric([], max(0.0, now.timestamp() - end_ms / 1000))
            yield age

    def _promotions(self, _window, _now):
        rows = self._reg().select("promotions")
        counts = Counter(r.get("kind") or "promotion" for r in rows)
        family = GaugeMetricFamily("huracan_promotions", "Promotions and rollbacks recorded", labels=["kind"])
        for kind in ("promotion", "rollback"):
            family.add_metric([kind], counts.get(kind, 0))
        yield family

    def _champions(self, _window, now: datetime):
        family = GaugeMetricFamily("huracan_champion_age_days", "Days since the champion's pointer date",
                                   labels=["symbol"])  # fmt: skip
        for symbol in champion_symbols(self.store):
            try:
                pointer = read_pointer(self.store, symbol)
            except PointerError:
                continue
            if pointer is not None:
                family.add_metric([symbol], (now.date() - pointer.as_of).days)
        yield family

    def _shadow(self, window: list[date], _now):
        rows = self._reg().select("shadow_trades", role="champion", as_of=window)  # booked on their exit day
        by_symbol: dict[str, list[float]] = {}
        for r in rows:
            if r.get("net_bps") is not None:
                by_symbol.setdefault(r["symbol"], []).append(float(r["net_bps"]))
        net = GaugeMetricFamily("huracan_champion_shadow_net_bps", "Champions' mean net bps per trade, last days",
                                labels=["symbol"])  # fmt: skip
        trades = GaugeMetricFamily("huracan_champion_shadow_trades", "Champions' forward trades, last days",
                                   labels=["symbol"])  # fmt: skip
        for symbol, values in sorted(by_symbol.items()):
            net.add_metric([symbol], sum(values) / len(values))
            trades.add_metric([symbol], len(values))
        yield net
        yield trades
