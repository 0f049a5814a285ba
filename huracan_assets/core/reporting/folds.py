"""The walk-forward folds as markdown for the Dagster UI: each fold's test span, AUC and net bps, and a chart."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from huracan_assets.core.reporting.charts import bar_chart, markdown_image


def _day(ms) -> str:
    return "" if ms is None else (date(1970, 1, 1) + timedelta(milliseconds=int(ms))).isoformat()


def fold_chart(wf: Mapping[str, Any]) -> str:
    """The walk-forward folds as a markdown chart: each fold's test span, AUC and net bps as bars."""
    lines = ["| fold | test span | rows train/test | AUC | net bps/trade | trades |", "|---|---|---|---|---|---:|"]
    for f in [*wf["folds"], {**wf["overall"], "fold": "all"}]:
        auc, net = f.get("auc"), f.get("net_bps_per_trade")
        auc_bar = "█" * round(max(0.0, (auc or 0.5) - 0.4) * 50) if auc is not None else ""
        net_bar = ("▮" if (net or 0) >= 0 else "▯") * min(20, int(abs(net or 0) // 5))
        span = f"{_day(f.get('test_start_ms'))} → {_day(f.get('test_end_ms'))}" if f["fold"] != "all" else "all folds"
        lines.append(
            f"| {f['fold']} | {span} | {f.get('n_train', '')}/{f.get('n_test', f.get('n_oos', ''))} | "
            f"{'' if auc is None else f'{auc:.3f}'} {auc_bar} | {'' if net is None else f'{net:+.1f}'} {net_bar} | "
            f"{f.get('n_trades', '')} |"
        )
    nets = [f.get("net_bps_per_trade") for f in wf["folds"]]
    if any(n is not None for n in nets):
        labels = [f"{f['fold']}: {_day(f.get('test_start_ms'))[5:]}" for f in wf["folds"]]
        aucs = ["" if f.get("auc") is None else f"AUC {f['auc']:.2f}" for f in wf["folds"]]
        image = bar_chart(labels, nets, "walk-forward folds, out of sample", "net bps / trade", aucs)
        lines += ["", markdown_image(image, "walk-forward folds")]
    return "\n".join(lines)
