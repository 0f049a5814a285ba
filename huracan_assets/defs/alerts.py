"""The alert sensors: what operators must hear about, pushed to Telegram (and a webhook) by Dagster sensors.

* ``alert_on_run_failure`` (a run failure sensor): the failed run (job, dates, error, link), and the checks that
  failed in it;
* ``alert_on_run_success``: the checks that failed in a successful run (ERROR: one alert each; WARN: one digest per
  date), the kill switches (per coin and global), the promotions (information) and the coins that failed every one
  of the last ``alerts.failing_dates`` dates;
* ``alert_on_stale_data`` (every 5 minutes): no candles stored for D by ``alerts.fresh_by_hour_utc`` on D+1;
* ``alert_on_rollback`` (every minute): a rollback recorded in the registry (information).

Each alert names the date, the asset or check, the coins and the reason, with the run's link in the UI
(``dagster.webserver_url``). ``alerts.py`` deduplicates them (one per cause per date) and rate-limits them. The
sensors are on by default in production; locally they start stopped (the bundled data ends in 2024, so a UI left
open would report stale data every day).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from dagster import (
    AssetCheckSeverity,
    DagsterEventType,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunStatusSensorContext,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    run_status_sensor,
    sensor,
)

from huracan_assets.alerts import Alert, CheckEvaluation, check_alerts, failing_streaks
from huracan_assets.defs.automation import run_dates
from huracan_assets.defs.resources import AlertResource, ObjectStoreResource, RegistryResource
from huracan_assets.names import CHAMPION_POINTER, split_key
from huracan_assets.settings import Settings


def run_evaluations(instance, run_id: str) -> list[CheckEvaluation]:
    """The check evaluations a run recorded."""
    out = []
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        ev = entry.dagster_event.event_specific_data
        offenders = ev.metadata.get("offending_keys")
        severity = "error" if ev.severity == AssetCheckSeverity.ERROR else "warn"
        out.append(CheckEvaluation(ev.asset_key.to_user_string(), ev.check_name, ev.passed, severity,
                                   dict(offenders.value) if offenders is not None else {}))  # fmt: skip
    return out


def run_promotions(instance, run_id: str) -> list[Alert]:
    """The promotions a run published: the ``champion_pointer`` keys whose own metadata says ``promoted``, with
    the decision's reason."""
    found: dict[str, str] = {}
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        mat = entry.dagster_event.event_specific_data.materialization
        if mat.asset_key.to_user_string() != CHAMPION_POINTER or mat.partition is None:
            continue
        promoted, decision = mat.metadata.get("promoted"), mat.metadata.get("decision")
        if promoted is not None and promoted.value is True:
            found[str(mat.partition)] = decision.value if decision is not None else "promoted"
    out = []
    for key, reason in sorted(found.items()):
        day, symbol = split_key(key)
        out.append(Alert("promotion", "info", day.isoformat(), symbol or key, str(reason)[:300], (symbol,), run_id))
    return out


def streak_alerts(rows: list[dict], last: date, n: int, run_id: str) -> list[Alert]:
    """The coins whose keys failed on each of the ``n`` dates ending ``last`` (``symbol_status`` rows)."""
    out = []
    for symbol, days in failing_streaks(((r["symbol"], r["as_of"]) for r in rows), last, n).items():
        reasons = [r["reason"] or "" for r in rows if r["symbol"] == symbol and r["as_of"] == last]
        why = f"failed {len(days)} dates in a row; on {last}: {_first_line(reasons[0] if reasons else '')}"
        out.append(Alert("failing_streak", "warn", last.isoformat(), symbol, why, (symbol,), run_id))
    return out


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0][:300] if (text or "").strip() else "no error message"


def build_alert_sensors(settings: Settings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> list:
    cfg = settings.alerts
    status = DefaultSensorStatus.RUNNING if settings.env == "prod" and cfg.enabled else DefaultSensorStatus.STOPPED

    @run_failure_sensor(
        name="alert_on_run_failure",
        default_status=status,
        minimum_interval_seconds=30,
        description="A failed run, and the checks that failed in it.",
    )
    def alert_on_run_failure(
        context: RunFailureSensorContext, alerter: AlertResource, object_store: ObjectStoreResource
    ):
        run = context.dagster_run
        days = run_dates(run.tags)
        error = context.failure_event.message if context.failure_event else ""
        day = f"{days[0]}..{days[-1]}" if len(days) > 1 else (days[0].isoformat() if days else None)
        alerts = [Alert("run_failed", "error", day, run.job_name, _first_line(error), (), run.run_id)]
        alerts += check_alerts(run_evaluations(context.instance, run.run_id), run.run_id)
        report = alerter.send(object_store.get_store(), alerts)
        context.log.info(f"alerts for failed run {run.run_id}: {report}")

    @run_status_sensor(
        run_status=DagsterRunStatus.SUCCESS,
        name="alert_on_run_success",
        default_status=status,
        minimum_interval_seconds=30,
        description="Failed checks, kill switches, promotions, coins failing date after date.",
    )
    def alert_on_run_success(
        context: RunStatusSensorContext,
        alerter: AlertResource,
        object_store: ObjectStoreResource,
        registry: RegistryResource,
    ):
        run = context.dagster_run
        alerts = check_alerts(run_evaluations(context.instance, run.run_id), run.run_id)
        alerts += run_promotions(context.instance, run.run_id)
        days = run_dates(run.tags)
        if days:
            last = days[-1]
            window = [last - timedelta(days=i) for i in range(cfg.failing_dates)]
            rows = registry.get_registry().select("symbol_status", status="failed", as_of=window)
            alerts += streak_alerts(rows, last, cfg.failing_dates, run.run_id)
        report = alerter.send(object_store.get_store(), alerts)
        context.log.info(f"alerts for run {run.run_id}: {report}")

    @sensor(name="alert_on_stale_data", minimum_interval_seconds=300, default_status=status,
            description="No candles stored for D by alerts.fresh_by_hour_utc on D+1.")  # fmt: skip
    def alert_on_stale_data(
        context: SensorEvaluationContext,
        alerter: AlertResource,
        object_store: ObjectStoreResource,
        registry: RegistryResource,
    ):
        now = clock()
        if now.hour < cfg.fresh_by_hour_utc:
            return SkipReason(f"before {cfg.fresh_by_hour_utc:02d}:00 UTC")
        day: date = now.date() - timedelta(days=1)
        rows = registry.get_registry().select("symbol_status", asset="candles", as_of=[day], status="ok")
        if rows:
            return SkipReason(f"{len(rows)} coins have candles for {day}")
        why = f"no candles stored for {day} by {cfg.fresh_by_hour_utc:02d}:00 UTC on {day + timedelta(days=1)}"
        alert = Alert("stale_data", "error", day.isoformat(), "candles", why)
        report = alerter.send(object_store.get_store(), [alert])
        return SkipReason(f"stale data alert: {report}")

    @sensor(name="alert_on_rollback", minimum_interval_seconds=60, default_status=status,
            description="A champion rollback recorded in the registry, as information.")  # fmt: skip
    def alert_on_rollback(
        context: SensorEvaluationContext,
        alerter: AlertResource,
        object_store: ObjectStoreResource,
        registry: RegistryResource,
    ):
        rows = [r for r in registry.get_registry().select("promotions", kind="rollback")]
        after = context.cursor or ""
        new = sorted((r for r in rows if r["at"].isoformat() > after), key=lambda r: r["at"])
        if not new:
            return SkipReason("no new rollback")
        context.update_cursor(new[-1]["at"].isoformat())
        alerts = [Alert("rollback", "info", r["as_of"].isoformat(), r["symbol"],
                        f"{r['from_model_id']} -> {r['to_model_id']}: {r['reason']}", (r["symbol"],))
                  for r in new]  # fmt: skip
        report = alerter.send(object_store.get_store(), alerts)
        return SkipReason(f"rollback alerts: {report}")

    return [alert_on_run_failure, alert_on_run_success, alert_on_stale_data, alert_on_rollback]
