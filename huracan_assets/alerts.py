"""Operator alerts: what went wrong (or was decided), said once per cause per date, rate-limited, never fatal.

The Dagster sensors of ``defs/alerts.py`` turn events into :class:`Alert` values: a failed run, a check failing at
ERROR severity (one alert each) and the WARN failures of a date (one digest), a kill switch tripping (per coin and
global), data not fresh by the configured hour, a coin failing several dates in a row, and, as information, a
promotion or a rollback. Here, without Dagster:

* :func:`check_alerts` groups check evaluations into alerts by date;
* :func:`failing_streaks` finds the coins that failed every one of the last N dates;
* :func:`alert_text` writes the message: kind, date, asset or check, coins and reason, and a link to the run;
* :class:`AlertLedger` keeps what was sent (``alerts/sent.json`` in the object store): a cause already alerted for
  a date is not sent again, and at most ``max_per_hour`` alerts go out per hour (the rest are counted as
  suppressed and said in the next one that goes out);
* :func:`deliver` sends through the given senders (Telegram, a webhook) and returns their errors: an unreachable
  Telegram never fails the run or the sensor, and an alert no channel delivered is forgotten by the ledger, so the
  next evaluation of a sensor that sees the cause again sends it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from huracan_assets.storage.object_store import ObjectNotFound, ObjectStore

SEVERITIES = ("error", "warn", "info")
ICON = {"error": "🔴", "warn": "🟠", "info": "🔵"}
LEDGER_KEY = "alerts/sent.json"
KEEP_DAYS = 14  # the ledger forgets causes older than this


@dataclass(frozen=True)
class Alert:
    kind: str  # run_failed | check_failed | check_warnings | kill_switch | global_kill | stale_data | failing_streak
    # | promotion | rollback
    severity: str  # error | warn | info
    day: str | None  # the date D the cause belongs to (ISO), or None
    subject: str  # the job, asset, check or coin
    reason: str
    symbols: tuple[str, ...] = ()
    run_id: str | None = None

    @property
    def key(self) -> str:
        """One alert per cause per date."""
        return f"{self.kind}|{self.day or '-'}|{self.subject}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "date": self.day, "subject": self.subject,
                "reason": self.reason, "symbols": list(self.symbols), "run_id": self.run_id}  # fmt: skip


@dataclass(frozen=True)
class CheckEvaluation:
    """A check's result as the sensors read it from a run's events."""

    asset: str
    check: str
    passed: bool
    severity: str  # error | warn
    offenders: Mapping[str, str]  # key (``D|SYMBOL``, ``SYMBOL``, ``D|*``) -> why


def _day_and_symbol(key: str) -> tuple[str | None, str]:
    day, _, symbol = key.partition("|")
    if not symbol:
        return (key, "") if _is_day(key) else (None, key)
    return day, symbol


def _is_day(text: str) -> bool:
    try:
        date.fromisoformat(text)
        return True
    except ValueError:
        return False


def check_alerts(evaluations: Iterable[CheckEvaluation], run_id: str | None = None) -> list[Alert]:
    """A failed ERROR check: one alert per check and date. The kill-switch check: one alert per date for the coins
    past it, and one for a global stop. Other WARN failures: one digest per date naming each check."""
    errors: dict[tuple[str | None, str], dict[str, str]] = {}
    kills: dict[str | None, dict[str, str]] = {}
    warns: dict[str | None, dict[str, dict[str, str]]] = {}
    for ev in evaluations:
        if ev.passed:
            continue
        for key, why in (ev.offenders or {"": "failed"}).items():
            day, symbol = _day_and_symbol(key) if key else (None, "")
            if ev.check == "drawdown_kill_switch":
                kills.setdefault(day, {})[symbol] = why
            elif ev.severity == "error":
                errors.setdefault((day, f"{ev.asset}.{ev.check}"), {})[symbol] = why
            else:
                warns.setdefault(day, {}).setdefault(f"{ev.asset}.{ev.check}", {})[symbol] = why
    out = []
    for (day, subject), found in sorted(errors.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
        out.append(Alert("check_failed", "error", day, subject, _first_reason(found), _symbols(found), run_id))
    for day, found in sorted(kills.items(), key=lambda kv: kv[0] or ""):
        stop = found.pop("*", None)
        if stop is not None:
            out.append(Alert("global_kill", "error", day, "champion_pointer.drawdown_kill_switch", stop, (), run_id))
        if found:
            out.append(Alert("kill_switch", "warn", day, "champion_pointer.drawdown_kill_switch",
                             _first_reason(found), _symbols(found), run_id))  # fmt: skip
    for day, checks in sorted(warns.items(), key=lambda kv: kv[0] or ""):
        lines = [f"{name}: {len(found)} ({_first_reason(found)})" for name, found in sorted(checks.items())]
        symbols = sorted({s for found in checks.values() for s in found if s})
        out.append(Alert("check_warnings", "warn", day, f"{len(checks)} checks", "; ".join(lines),
                         tuple(symbols), run_id))  # fmt: skip
    return out


def _symbols(found: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(sorted(s for s in found if s and s != "*"))


def _first_reason(found: Mapping[str, str]) -> str:
    first = next(iter(sorted(found.items())), ("", "failed"))
    return f"{first[0] + ': ' if first[0] else ''}{str(first[1])[:200]}"


def failing_streaks(failed: Iterable[tuple[str, date]], last_day: date, n: int) -> dict[str, list[date]]:
    """The coins with a failed key on each of the ``n`` dates ending ``last_day`` (``failed``: (symbol, date)
    pairs, any asset)."""
    days = {last_day - timedelta(days=i) for i in range(n)}
    by_symbol: dict[str, set[date]] = {}
    for symbol, day in failed:
        if day in days:
            by_symbol.setdefault(symbol, set()).add(day)
    return {s: sorted(d) for s, d in sorted(by_symbol.items()) if d == days}


def alert_text(alert: Alert, webserver_url: str | None = None, suppressed: int = 0) -> str:
    """The message: what, when, where, who and why, and the run's page."""
    head = f"{ICON.get(alert.severity, '')} Huracan {alert.severity.upper()}: {alert.kind.replace('_', ' ')}"
    lines = [head, f"date: {alert.day or '-'}", f"what: {alert.subject}"]
    if alert.symbols:
        more = f" (+{len(alert.symbols) - 20} more)" if len(alert.symbols) > 20 else ""
        lines.append(f"coins: {', '.join(alert.symbols[:20])}{more}")
    lines.append(f"why: {alert.reason}")
    if alert.run_id:
        url = f"{webserver_url.rstrip('/')}/runs/{alert.run_id}" if webserver_url else alert.run_id
        lines.append(f"run: {url}")
    if suppressed:
        lines.append(f"({suppressed} alerts were held back by the rate limit since the last one)")
    return "\n".join(lines)


@dataclass
class AlertLedger:
    """Sent alerts by cause (``Alert.key`` -> ISO time), persisted in the store; dedup and the hourly limit."""

    store: ObjectStore
    max_per_hour: int = 20
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def _read(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.store.get(LEDGER_KEY))
            return doc if isinstance(doc, dict) else {}
        except (ObjectNotFound, ValueError):
            return {}

    def forget(self, alerts: Sequence[Alert]) -> None:
        """Alerts that no channel delivered: the next evaluation may send them again."""
        doc = self._read()
        sent = {k: t for k, t in doc.get("sent", {}).items() if k not in {a.key for a in alerts}}
        self.store.put(LEDGER_KEY, json.dumps({**doc, "sent": sent}, sort_keys=True).encode(),
                       content_type="application/json")  # fmt: skip

    def admit(self, alerts: Sequence[Alert]) -> tuple[list[Alert], int]:
        """The alerts to send now (new causes, within the hourly limit) and how many were held back before them
        (said in the first message); records them as sent."""
        doc = self._read()
        sent: dict[str, str] = doc.get("sent", {})
        now = self.clock()
        horizon = now - timedelta(days=KEEP_DAYS)
        sent = {k: t for k, t in sent.items() if datetime.fromisoformat(t) >= horizon}
        recent = sum(datetime.fromisoformat(t) >= now - timedelta(hours=1) for t in sent.values())
        held_before = int(doc.get("held", 0))
        admitted: list[Alert] = []
        held_now = 0
        for alert in alerts:
            if alert.key in sent or alert.key in {a.key for a in admitted}:
                continue
            if recent + len(admitted) >= self.max_per_hour:
                held_now += 1
                continue
            admitted.append(alert)
        for alert in admitted:
            sent[alert.key] = now.isoformat()
        # the held-back count is said in the next alert that goes out
        held = held_now if admitted else held_before + held_now
        self.store.put(LEDGER_KEY, json.dumps({"sent": sent, "held": held}, sort_keys=True).encode(),
                       content_type="application/json")  # fmt: skip
        return admitted, held_before if admitted else 0


def deliver(
    alerts: Sequence[Alert],
    senders: Mapping[str, Callable[[str, Alert], str | None]],
    webserver_url: str | None,
    held: int = 0,
) -> tuple[dict[str, list[str]], list[Alert]]:
    """Send each alert through every sender (name -> send(text, alert) returning an error or None). Returns the
    errors by sender and the alerts no sender delivered. Never raises."""
    errors: dict[str, list[str]] = {}
    undelivered = []
    for i, alert in enumerate(alerts):
        text = alert_text(alert, webserver_url, held if i == 0 else 0)
        delivered = False
        for name, send in senders.items():
            try:
                error = send(text, alert)
            except Exception as exc:  # a sender must never fail the sensor
                error = f"{type(exc).__name__}: {exc}"
            if error:
                errors.setdefault(name, []).append(error)
            else:
                delivered = True
        if not delivered:
            undelivered.append(alert)
    return errors, undelivered
