"""Operator alerts, without Dagster: grouping by cause and date, streaks, the text, dedup and the rate limit."""

from datetime import UTC, date, datetime, timedelta

from huracan_assets.alerts import (
    Alert,
    AlertLedger,
    CheckEvaluation,
    alert_text,
    check_alerts,
    deliver,
    failing_streaks,
)
from huracan_assets.storage.object_store import LocalObjectStore


def test_check_alerts_group_by_cause_and_date():
    evals = [
        CheckEvaluation(
            "candles",
            "candles_schema_valid",
            False,
            "error",
            {"2024-03-05|SOLUSDT": "malformed: ts", "2024-03-06|SOLUSDT": "malformed: ts"},
        ),
        CheckEvaluation("candles", "candles_complete", False, "warn", {"2024-03-05|XRPUSDT": "20/24 bars"}),
        CheckEvaluation("spreads", "spreads_from_finest_bars", False, "warn", {"2024-03-05|DOGEUSDT": "coarse"}),
        CheckEvaluation(
            "champion_pointer",
            "drawdown_kill_switch",
            False,
            "warn",
            {"2024-03-06|ETHUSDT": "drawdown past 35%", "2024-03-06|*": "3/4 coins past: none"},
        ),
        CheckEvaluation("universe", "universe_is_not_empty", True, "error", {}),
    ]
    alerts = check_alerts(evals, "run-1")
    kinds = [(a.kind, a.day, a.subject, a.symbols) for a in alerts]
    assert kinds == [
        ("check_failed", "2024-03-05", "candles.candles_schema_valid", ("SOLUSDT",)),
        ("check_failed", "2024-03-06", "candles.candles_schema_valid", ("SOLUSDT",)),
        ("global_kill", "2024-03-06", "champion_pointer.drawdown_kill_switch", ()),
        ("kill_switch", "2024-03-06", "champion_pointer.drawdown_kill_switch", ("ETHUSDT",)),
        ("check_warnings", "2024-03-05", "2 checks", ("DOGEUSDT", "XRPUSDT")),
    ]
    assert alerts[0].severity == "error" and alerts[0].run_id == "run-1" and "malformed" in alerts[0].reason
    assert (
        "candles.candles_complete: 1" in alerts[-1].reason and "spreads.spreads_from_finest_bars" in alerts[-1].reason
    )
    # a day-only key (universe) and a key without a date
    day_only = check_alerts(
        [CheckEvaluation("universe", "universe_is_not_empty", False, "error", {"2024-03-20": "no coin selected"})]
    )
    assert [(a.day, a.symbols) for a in day_only] == [("2024-03-20", ())]


def test_failing_streaks_need_every_date():
    d = date(2024, 3, 10)
    failed = [("SOLUSDT", d - timedelta(days=i)) for i in range(3)] + [("XRPUSDT", d), ("XRPUSDT", d - timedelta(2))]
    failed += [("SOLUSDT", d)]  # two assets failed the same day: still one date
    assert failing_streaks(failed, d, 3) == {"SOLUSDT": [d - timedelta(days=2), d - timedelta(days=1), d]}
    assert failing_streaks(failed, d, 4) == {}


def test_alert_text_names_date_subject_coins_reason_and_link():
    alert = Alert(
        "check_failed",
        "error",
        "2024-03-05",
        "candles.candles_schema_valid",
        "SOLUSDT: malformed",
        ("SOLUSDT",),
        "abc123",
    )
    text = alert_text(alert, "http://ui:3000/", suppressed=4)
    for part in (
        "ERROR",
        "check failed",
        "2024-03-05",
        "candles.candles_schema_valid",
        "SOLUSDT",
        "malformed",
        "http://ui:3000/runs/abc123",
        "4 alerts were held back",
    ):
        assert part in text, part


def test_ledger_sends_each_cause_once_and_holds_back_past_the_hourly_limit(tmp_path):
    store = LocalObjectStore(tmp_path)
    now = [datetime(2024, 3, 6, 3, 0, tzinfo=UTC)]
    ledger = AlertLedger(store, max_per_hour=3, clock=lambda: now[0])
    alerts = [Alert("check_failed", "error", "2024-03-05", f"a.check{i}", "x") for i in range(5)]
    sent, held = ledger.admit(alerts + alerts[:1])  # the same cause twice in one batch: once
    assert [a.subject for a in sent] == ["a.check0", "a.check1", "a.check2"] and held == 0
    assert ledger.admit(alerts) == ([], 0)  # already sent, or still over the limit: nothing
    now[0] += timedelta(minutes=61)
    later = [Alert("run_failed", "error", "2024-03-06", "job", "boom")]
    sent, held = ledger.admit(later + alerts)
    assert [a.subject for a in sent] == ["job", "a.check3", "a.check4"] and held == 4  # two held, then two more
    # another date is another cause
    now[0] += timedelta(minutes=61)
    assert ledger.admit([Alert("check_failed", "error", "2024-03-06", "a.check0", "x")])[0]


def test_delivery_never_raises_and_reports_errors():
    def broken(_text, _alert):
        raise ConnectionError("telegram is down")

    got = []
    errors = deliver(
        [Alert("run_failed", "error", "2024-03-06", "job", "boom", run_id="r")],
        {"telegram": broken, "webhook": lambda text, alert: got.append(text)},
        "http://ui",
    )
    assert errors == ({"telegram": ["ConnectionError: telegram is down"]}, []) and "http://ui/runs/r" in got[0]
    alert = Alert("stale_data", "error", "2024-03-06", "candles", "none")
    assert deliver([alert], {"telegram": broken}, None)[1] == [alert]  # delivered nowhere
