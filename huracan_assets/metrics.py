"""The Engine's metrics for Prometheus, read at scrape time from the registry and the object store.

Served on ``huracan serve``'s ``/metrics`` beside the service's own. Each scrape reads:

* ``huracan_keys{asset, date, status}``: coins ok, failed and skipped per asset and date, for the last ``days``
  dates (the IO managers' ``symbol_status`` log);
* ``huracan_promotions{kind}``: promotions and rollbacks recorded;
* ``huracan_champion_age_days{symbol}``: days since each champion's pointer date;
* ``huracan_champion_shadow_net_bps{symbol}`` and ``huracan_champion_shadow_trades{symbol}``: the champions' mean
  net bps per trade and trades in their forward ledgers over the last ``days`` dates;
* ``huracan_data_age_seconds``: seconds since the end of the last date with candles stored;
* from the Dagster instance, when the service has one (``DAGSTER_HOME``): ``huracan_stage_seconds{stage, date}``,
  each step's (stage's) seconds in the latest run of each single date of the window, and
  ``huracan_failing_checks{date, severity}``, the checks whose latest evaluation for the date failed.

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
        instance_factory: Callable[[], object] | None = None,
    ) -> None:
        self.store, self.registry_factory, self.days, self.clock = store, registry_factory, days, clock
        self.instance_factory = instance_factory
        self._registry = None
        self._instance = None

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
                              ("champions", self._champions), ("shadow_trades", self._shadow),
                              ("dagster", self._runs)):  # fmt: skip
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

    def _runs(self, window: list[date], now: datetime):
        """Stage seconds and failing checks of the window's dates, from the runs of the Dagster instance."""
        if self.instance_factory is None:
            return
        if self._instance is None:
            self._instance = self.instance_factory()
        if self._instance is None:
            return
        stages, checks = _read_runs(self._instance, {d.isoformat() for d in window}, now - timedelta(self.days + 2))
        seconds = GaugeMetricFamily("huracan_stage_seconds", "Seconds of each stage (step) in the latest run of a date",
                                    labels=["stage", "date"])  # fmt: skip
        for (stage, day), value in sorted(stages.items()):
            seconds.add_metric([stage, day], value)
        yield seconds
        failing = GaugeMetricFamily("huracan_failing_checks", "Checks whose latest evaluation of the date failed",
                                    labels=["date", "severity"])  # fmt: skip
        counts = Counter((day, level) for (day, _, _), (bad, level) in checks.items() if bad)
        for day in sorted({k[0] for k in checks}):
            for level in ("error", "warn"):
                failing.add_metric([day, level], counts.get((day, level), 0))
        yield failing


def _read_runs(instance, days: set[str], since: datetime) -> tuple[dict, dict]:
    """From the finished runs created since ``since`` that cover one date of ``days``, newest first (a rerun of a
    date replaces what its earlier run said): ``{(step, date): seconds}`` and ``{(date, asset, check): (failed,
    severity)}``. A backfill chunk of several dates has no per-date stage time and is left out."""
    from dagster import AssetCheckSeverity, DagsterEventType, DagsterRunStatus, RunsFilter

    from huracan_assets.defs.automation import run_dates

    done = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE]
    stages: dict[tuple[str, str], float] = {}
    checks: dict[tuple[str, str, str], tuple[bool, str]] = {}
    for run in instance.get_runs(filters=RunsFilter(statuses=done, created_after=since), limit=500):
        covered = run_dates(run.tags)
        if len(covered) != 1 or covered[0].isoformat() not in days:
            continue
        day = covered[0].isoformat()
        for step in instance.get_run_step_stats(run.run_id):
            if step.start_time is not None and step.end_time is not None:
                stages.setdefault((step.step_key, day), step.end_time - step.start_time)
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
            ev = entry.dagster_event.event_specific_data
            level = "error" if ev.severity == AssetCheckSeverity.ERROR else "warn"
            checks.setdefault((day, ev.asset_key.to_user_string(), ev.check_name), (not ev.passed, level))
    return stages, checks
