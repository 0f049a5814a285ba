"""The shadow pair of a coin as markdown for the Dagster UI: the decision record and the forward ledgers."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from huracan_assets.core.reporting.charts import equity_chart, markdown_image
from huracan_assets.core.shadow.pair import ShadowPair


def pair_markdown(key: str, pair: ShadowPair, initial_equity: float) -> str:
    """The decision (the challenger on its shadow window) and the forward track records (each role's ledger)."""
    ch = pair.challenger.stats
    net = ch["net_bps_per_trade"]
    head = "| record | days | trades | gross / cost / net bps per trade | return | max DD |"
    lines = [f"**{key}**", "", head,
             "|---|---:|---:|---|---:|---:|",
             f"| challenger, shadow window (decision) | | {ch['n_trades']} | net {_bps(net)} | "
             f"{ch['total_return']:+.2%} | {ch['max_drawdown']:.2%} |"]  # fmt: skip
    curves = {}
    for role in ("challenger", "champion"):
        ledger = pair.ledgers.get(role)
        if ledger is None:
            lines.append(f"| {role} ledger (none yet) | | | | | |")
            continue
        st = ledger.stats()
        parts = " / ".join(_bps(st[f"{x}_bps_per_trade"]) for x in ("gross", "cost", "net"))
        lines.append(
            f"| {role} ledger since {st['since']} | {st['days']} | "
            f"{st['n_trades']} | {parts} | {st['total_return']:+.2%} | {st['max_drawdown']:.2%} |"
        )
        if ledger.days:
            days = [ledger.days[0] - timedelta(days=1), *ledger.days]  # the start, then each day's close
            curves[role] = (days, np.concatenate(([1.0], np.asarray(ledger.daily_navs))) * initial_equity)
    if curves:
        image = equity_chart(curves, reference=initial_equity, title=f"{key}: forward ledgers, NAV at each close")
        lines += ["", markdown_image(image, f"ledgers {key}")]
    return "\n".join(lines)


def _bps(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:+.1f}"
