"""The daily summary's trading part: top contributors, hit rate and net edge, trades, promotions (pure).

Inputs are plain rows (dicts) the asset reads from the registry and the store:
- ``trades``: the forward ledgers' trades that closed on D (``shadow_trades`` rows: symbol, model_id, role
  (challenger | champion), size, net_pnl, gross/cost/net bps and the cost's parts): a trade is counted once,
  on the day it closed, never again;
- ``promotions``: the ``promotions`` rows of D; ``reports``: ``model_metrics`` rows (window ``wf_overall``) of D;
- ``engines``: per coin, each engine's weight and EMA net edge from ``meta_weights[D]``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping


def _mean(values: list[float]) -> float | None:
    clean = [v for v in values if v is not None and math.isfinite(v)]
    return math.fsum(clean) / len(clean) if clean else None  # exact sum: the same whatever the rows' order


def _coin(symbol: str, pnl: float, trades: int, initial_equity: float) -> dict:
    return {"symbol": symbol, "net_pnl": round(pnl, 6), "net_return": round(pnl / initial_equity, 6), "trades": trades}


def trading_summary(
    trades: Iterable[Mapping],
    promotions: Iterable[Mapping],
    reports: Iterable[Mapping],
    engines: Iterable[Mapping],
    top: int = 5,
    initial_equity: float = 1.0,
) -> dict:
    trades = list(trades)
    challenger = [t for t in trades if t.get("role") == "challenger"]
    champion = [t for t in trades if t.get("role") == "champion"]
    by_coin: dict[str, float] = defaultdict(float)
    coin_trades: dict[str, int] = defaultdict(int)
    bps = []
    for t in challenger:
        by_coin[t["symbol"]] += float(t["net_pnl"])
        coin_trades[t["symbol"]] += 1
        if t["size"]:
            bps.append(float(t["net_pnl"]) / float(t["size"]) * 1e4)
    coins = sorted(by_coin.items(), key=lambda kv: kv[1], reverse=True)
    weight: dict[str, list[float]] = defaultdict(list)
    edge: dict[str, list[float]] = defaultdict(list)
    for row in engines:
        weight[row["engine"]].append(float(row["weight"]))
        edge[row["engine"]].append(float(row["ema_net_bps"]))
    engine_rank = sorted(weight, key=lambda e: (_mean(weight[e]) or 0.0, _mean(edge[e]) or 0.0), reverse=True)
    reports = list(reports)
    return {
        "trades": {
            "challenger_trades": len(challenger),
            "champion_trades": len(champion),
            "hit_rate": (sum(1 for b in bps if b > 0) / len(bps)) if bps else None,
            "net_bps_per_trade": _mean(bps),
            "per_trade_bps": {
                role: _per_trade(rows) for role, rows in (("challenger", challenger), ("champion", champion))
            },
        },
        # net_pnl in the ledger's equity units; net_return: the same as a share of its starting equity
        "top_coins": [_coin(s, v, coin_trades[s], initial_equity) for s, v in coins[:top]],
        "bottom_coins": [_coin(s, v, coin_trades[s], initial_equity) for s, v in coins[::-1][:top]],
        "top_engines": [
            {"engine": e, "mean_weight": round(_mean(weight[e]) or 0.0, 4), "mean_ema_net_bps": _round(_mean(edge[e]))}
            for e in engine_rank[:top]
        ],
        "promotions": {p["symbol"]: {"to": p["to_model_id"], "reason": p["reason"]} for p in promotions},
        "walk_forward": {
            "models": len(reports),
            "mean_oos_auc": _round(_mean([r.get("auc") for r in reports]), 4),
            "mean_oos_net_bps": _round(_mean([r.get("net_bps") for r in reports])),
            "canaries_failed": sorted(r["symbol"] for r in reports if r.get("canaries_passed") is False),
        },
    }


def _per_trade(rows: list[Mapping]) -> dict:
    """Gross, cost and net bps per trade side by side, the cost in its parts, and the hit rate (ledger trades)."""
    out: dict = {"trades": len(rows)}
    for name in ("gross_bps", "cost_bps", "net_bps", "fee_bps", "spread_bps", "slippage_bps", "stop_slippage_bps"):
        out[name] = _round(_mean([r.get(name) for r in rows]))
    nets = [r.get("net_bps") for r in rows if r.get("net_bps") is not None]
    out["hit_rate"] = _round(sum(1 for n in nets if n > 0) / len(nets), 4) if nets else None
    return out


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def portfolio_nav(navs: Iterable[float]) -> float | None:
    """Equal-weight mean of the coins' shadow NAVs (the day's ``daily_equity`` portfolio row)."""
    return _mean([float(v) for v in navs])


def decisions_summary(rows: Iterable[Mapping]) -> list[dict]:
    """The decision log of a day, for the summary: kind, coin, reason and the models, in a stable order."""
    keep = ("symbol", "kind", "source", "reason", "model_id", "champion_model_id")
    out = [{k: r.get(k) for k in keep} for r in rows]
    return sorted(out, key=lambda r: (r["kind"] != "rollback", r["kind"], r["symbol"]))


PRESET_FIELDS = ("preset", "reason", "in_force_today", "mean_bps", "sd_bps", "p_beats", "trades_today", "killed")


def presets_summary(plans: Mapping[str, Mapping[str, Mapping]]) -> dict:
    """Per coin and strategy, the preset for tomorrow and why (``param_posteriors``; ``core/params/replay.tomorrow``):
    the preset, the controller's reason, the preset in force today, its posterior mean and sd in net bps per trade,
    P(it beats the preset in force by the margin), the strategy's replayed trades today and the kill switch."""
    return {
        symbol: {strategy: {k: item.get(k) for k in PRESET_FIELDS} for strategy, item in sorted(plan.items())}
        for symbol, plan in sorted(plans.items())
    }


def _presets_markdown(presets: Mapping[str, Mapping[str, Mapping]]) -> list[str]:
    strategies = sorted({s for plan in presets.values() for s in plan})
    if not strategies:
        return []
    changes = sum(1 for plan in presets.values() for i in plan.values() if i["preset"] != i["in_force_today"])
    lines = ["", f"**presets for tomorrow** (learned from the replayed shadow trades; {changes} changes)", "",
             "| coin | " + " | ".join(strategies) + " |", "|---|" + "---|" * len(strategies)]  # fmt: skip
    for symbol, plan in sorted(presets.items()):
        cells = []
        for strategy in strategies:
            item = plan.get(strategy)
            if item is None:
                cells.append("-")
                continue
            moved = "" if item["preset"] == item["in_force_today"] else f" from {item['in_force_today']}"
            mean = item.get("mean_bps")
            cells.append(f"{item['preset']}{moved} ({item['reason']}, {_num(mean)} bps)")
        lines.append(f"| {symbol} | " + " | ".join(cells) + " |")
    return lines


def summary_markdown(summary: Mapping) -> str:
    """The summary as markdown for the Dagster UI (and the CLI)."""
    t = summary.get("trades", {})
    wf = summary.get("walk_forward", {})
    promotions = ", ".join(f"{s} → {p['to']}" for s, p in summary.get("promotions", {}).items())
    coins = ", ".join(
        f"{c['symbol']} {c.get('net_return', c['net_pnl']):+.2%} ({c.get('trades', '?')} trades)"
        for c in summary.get("top_coins", [])
    )
    engines = ", ".join(f"{e['engine']} (w {e['mean_weight']:.3f})" for e in summary.get("top_engines", []))
    failed_canaries = ", ".join(wf.get("canaries_failed", [])) or "none"
    lines = [
        f"### {summary['date']} ({summary['timeframe']}): {summary['symbols_done']} coins done, "
        f"{len(summary.get('skipped', {}))} skipped, {len(summary.get('failed', {}))} failed",
        "",
        f"- ledger trades closed today: {t.get('challenger_trades', 0)} challenger, {t.get('champion_trades', 0)} "
        f"champion; hit rate {_pct(t.get('hit_rate'))}, net {_num(t.get('net_bps_per_trade'))} bps/trade",
        f"- walk-forward: {wf.get('models', 0)} models, mean out-of-sample AUC {_num(wf.get('mean_oos_auc'), '.3f')}, "
        f"net {_num(wf.get('mean_oos_net_bps'))} bps/trade; canaries failed: {failed_canaries}",
        f"- promotions: {promotions or 'none'}",
        f"- top coins (challengers' trades closed today, net P&L as a share of the ledger's starting equity): "
        f"{coins or '-'}",
        f"- top engines (mean weight): {engines or '-'}",
    ]
    per_trade = t.get("per_trade_bps", {})
    if any(v.get("trades") for v in per_trade.values()):
        lines += ["", "| ledger | trades | gross | cost | of which fee / spread / slippage / stop | net | hit rate |",
                  "|---|---:|---:|---:|---|---:|---:|"]  # fmt: skip
        for role, v in per_trade.items():
            parts = " / ".join(_num(v.get(k)) for k in ("fee_bps", "spread_bps", "slippage_bps", "stop_slippage_bps"))
            lines.append(
                f"| {role} | {v['trades']} | {_num(v.get('gross_bps'))} | {_num(v.get('cost_bps'))} | {parts} | "
                f"{_num(v.get('net_bps'))} | {_pct(v.get('hit_rate'))} |"
            )
    navs = summary.get("portfolio_navs") or {}
    if any(v is not None for v in navs.values()):
        lines += ["", "forward NAV (equal-weight mean of the coins' ledgers): "
                  + ", ".join(f"{role} {v:.4f}" for role, v in navs.items() if v is not None)]  # fmt: skip
    lines += _presets_markdown(summary.get("presets") or {})
    decisions = summary.get("decisions") or []
    if decisions:
        counts = ", ".join(f"{n} {k}" for k, n in sorted(Counter(d["kind"] for d in decisions).items()))
        lines += ["", f"**decisions** ({counts}; decisions/{summary['date']}.jsonl)", "",
                  "| coin | decision | reason |", "|---|---|---|"]  # fmt: skip
        lines += [f"| {d['symbol']} | {d['kind']} | {str(d['reason'])[:160]} |" for d in decisions[:100]]
    for title, items in (("skipped", summary.get("skipped", {})), ("failed", summary.get("failed", {}))):
        if items:
            lines += ["", f"**{title}**", "", "| symbol | reason |", "|---|---|"]
            lines += [f"| {s} | {r} |" for s, r in sorted(items.items())]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _num(value: float | None, fmt: str = "+.1f") -> str:
    return "-" if value is None else format(value, fmt)
