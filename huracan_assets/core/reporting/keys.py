"""Each coin-day's own numbers and charts for the Dagster UI (one materialization per key), pure.

The assets people read per coin get their key's values, not the run's: numbers the UI's Plots tab can chart
over dates, and small charts (``charts.py``) as markdown. None means "not computed" and is left out by the
caller. Charts cost about a tenth of a second each (``benchmarks/bench_key_metadata.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from huracan_assets.core.reporting.charts import markdown_image, regime_chart, weights_chart


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and np.isfinite(float(value)) else None


def challenger_values(row: Mapping[str, Any], wf: Mapping[str, Any]) -> dict[str, Any]:
    """The challenger's out-of-sample walk-forward numbers (all folds) and its bundle."""
    overall = wf.get("overall", {})
    return {
        "auc": _finite(overall.get("auc")),
        "net_bps_per_trade": _finite(overall.get("net_bps_per_trade")),
        "dsr": _finite(overall.get("dsr")),
        "sharpe": _finite(overall.get("sharpe")),
        "trades": overall.get("n_trades"),
        "folds": len(wf.get("folds", [])),
        "canaries_passed": bool(row.get("canaries_passed")),
        "model_id": row.get("model_id"),
    }


def pointer_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """The day's decision for the coin: promoted or not and why, the champion after it, the shadow numbers."""
    as_of = row.get("champion_as_of")
    return {
        "promoted": bool(row.get("promoted")),
        "decision": row.get("reason"),
        "kill_switch": bool(row.get("kill_switch")),
        "champion_model_id": row.get("champion_model_id") or "none",
        "champion_as_of": as_of.isoformat() if isinstance(as_of, date) else None,
        "challenger_net_bps": _finite(row.get("challenger_net_bps")),
        "champion_net_bps": _finite(row.get("champion_net_bps")),
        "challenger_trades": row.get("challenger_trades"),
        "champion_trades": row.get("champion_trades"),
        "tests_since_promotion": row.get("tests_since_promotion"),
    }


def shadow_values(stats: Mapping[str, Any], ledgers: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Any]:
    """The challenger on its shadow window (the decision's evidence) and each forward ledger's track record."""
    out: dict[str, Any] = {
        "shadow_trades": int(stats["n_trades"]),
        "shadow_net_bps_per_trade": _finite(stats.get("net_bps_per_trade")),
        "shadow_return": _finite(stats.get("total_return")),
        "shadow_max_drawdown": _finite(stats.get("max_drawdown")),
    }
    for role, st in ledgers.items():
        if st is not None:
            out[f"{role}_ledger_trades"] = int(st["n_trades"])
            out[f"{role}_ledger_net_bps_per_trade"] = _finite(st.get("net_bps_per_trade"))
            out[f"{role}_ledger_return"] = _finite(st.get("total_return"))
    return out


def regime_values(regimes: pl.DataFrame) -> dict[str, Any]:
    """The share of the day's bars in each regime."""
    n = regimes.height
    counts = dict(regimes.group_by("regime").len().iter_rows()) if n else {}
    return {f"share_{r.lower()}": round(c / n, 4) for r, c in sorted(counts.items())}


def regime_markdown(key: str, regimes: pl.DataFrame, candles: pl.DataFrame) -> str | None:
    """The day's closes with each bar shaded by its regime (None without bars)."""
    bars = regimes.select("ts", "regime").join(candles.select("ts", "close"), on="ts", how="inner").sort("ts")
    if bars.height == 0:
        return None
    image = regime_chart(bars["ts"].to_list(), bars["close"].to_list(), bars["regime"].to_list(),
                         f"{key}: regimes over the close")  # fmt: skip
    return markdown_image(image, f"regimes {key}")


def weights_markdown_chart(key: str, history: Sequence[tuple[date, pl.DataFrame]]) -> str | None:
    """The coin's engine weights over the days of ``history`` ((day, state frame with engine and weight))."""
    if not history:
        return None
    days = [d for d, _ in history]
    engines = sorted({e for _, f in history for e in f["engine"]})
    series: dict[str, list[float]] = {e: [] for e in engines}
    for _, frame in history:
        w = dict(zip(frame["engine"], frame["weight"], strict=True))
        for e in engines:
            series[e].append(float(w.get(e, np.nan)))
    image = weights_chart(days, series, f"{key}: meta weights, last {len(days)} days")
    return markdown_image(image, f"meta weights {key}")


def weight_values(state: pl.DataFrame) -> dict[str, Any]:
    """The top engine and its weight, and how concentrated the weights are (effective number of engines)."""
    w = state["weight"].to_numpy()
    if w.size == 0 or not np.isfinite(w).all():
        return {}
    top = int(np.argmax(w))
    return {
        "top_engine": str(state["engine"][top]),
        "top_weight": float(w[top]),
        "effective_engines": float(1.0 / np.sum(w**2)) if np.sum(w**2) > 0 else None,
    }


def preset_values(plan: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Per strategy, the preset a coin would use tomorrow and why (``param_posteriors``; ``replay.tomorrow``)."""
    out: dict[str, Any] = {}
    for strategy, item in sorted(plan.items()):
        out[f"{strategy}_preset"] = item["preset"]
        out[f"{strategy}_reason"] = item["reason"]
        out[f"{strategy}_mean_bps"] = _finite(item.get("mean_bps"))
        out[f"{strategy}_trades_today"] = item.get("trades_today")
    return out


def preset_markdown(plan: Mapping[str, Mapping[str, Any]]) -> str:
    """Tomorrow's preset of each strategy, why, and every preset's posterior mean reward at today's close."""
    lines = [
        "| strategy | tomorrow | reason | in force today | P(beats) | posterior mean bps/trade (observations) |",
        "|---|---|---|---|---:|---|",
    ]
    for strategy, item in sorted(plan.items()):
        means = ", ".join(
            f"{preset} {'-' if mean is None else f'{mean:+.1f}'} ({item['observations'].get(preset, 0)})"
            for preset, mean in sorted(item["means_bps"].items())
        )
        p = item.get("p_beats")
        killed = " (kill switch)" if item.get("killed") else ""
        lines.append(
            f"| {strategy} | **{item['preset']}**{killed} | {item['reason']} | {item['in_force_today']} | "
            f"{'-' if p is None else f'{p:.2f}'} | {means} |"
        )
    return "\n".join(lines)
