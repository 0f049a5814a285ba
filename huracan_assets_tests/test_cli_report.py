"""The demo's report, as printed: coins of the data folder that were not listed yet on a date are named, with why."""

from datetime import date

from huracan_assets.cli import _report, probability
from huracan_assets.runner import DateOutcome
from huracan_assets.settings import load_settings


def test_a_coin_not_listed_yet_is_named_with_its_first_day(home, capsys):
    """TON's first bar is 2024-08-08: on 08-06 and 08-07 no asset sees it (the exchange does not list it yet), and
    the report says so rather than leaving it out; from 08-08 on the summary speaks for it."""
    settings = load_settings("local")
    outcomes = [
        DateOutcome(date(2024, 8, d), 1.0, {"symbols_done": 1, "done": ["BTCUSDT"], "skipped": {}, "failed": {}})
        for d in (7, 8)
    ]
    code = _report(settings, outcomes, 2.0, {"BTCUSDT": date(2024, 1, 1), "TONUSDT": date(2024, 8, 8)})
    out = capsys.readouterr().out
    assert code == 0
    assert [ln for ln in out.splitlines() if "TONUSDT" in ln and "not listed" in ln] == [
        next(ln for ln in out.splitlines() if ln.startswith("2024-08-07") and "TONUSDT" in ln)
    ]
    assert "its first bar is on 2024-08-08 (later)" in out
    named = load_settings("local", symbols="BTCUSDT")  # a coin the user did not ask for is not reported
    _report(named, outcomes, 2.0, {"BTCUSDT": date(2024, 1, 1), "TONUSDT": date(2024, 8, 8)})
    assert "TONUSDT" not in capsys.readouterr().out


def test_probabilities_print_with_their_resolution():
    """A DSR of 1e-9 is not "0.000" (which reads as "computed as zero"): it prints as below the resolution."""
    assert [probability(v) for v in (None, 1e-9, 0.0004, 0.0123, 0.5, 0.9996)] == [
        "-", "<0.001", "<0.001", "0.012", "0.500", ">0.999"
    ]  # fmt: skip
