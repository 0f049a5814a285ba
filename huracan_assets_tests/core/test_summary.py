"""The daily summary's trading part: counts and per-trade numbers come from the ledger rows of the day, by role."""

from huracan_assets.core.reporting.summary import summary_markdown, trading_summary


def _trade(symbol, role, gross, fee, spread, slip, size=0.1, stop=0.0):
    cost = fee + spread + slip + stop
    net = gross - cost
    return {
        "symbol": symbol,
        "role": role,
        "size": size,
        "net_pnl": net / 1e4 * size,
        "gross_bps": gross,
        "cost_bps": cost,
        "net_bps": net,
        "fee_bps": fee,
        "spread_bps": spread,
        "slippage_bps": slip,
        "stop_slippage_bps": stop,
    }


def test_gross_cost_and_net_side_by_side_per_role():
    trades = [
        _trade("BTCUSDT", "challenger", 40.0, 20.0, 2.0, 1.0),
        _trade("ETHUSDT", "challenger", -10.0, 20.0, 3.0, 1.0),
        _trade("BTCUSDT", "champion", 30.0, 20.0, 2.0, 0.0, stop=1.0),
    ]
    out = trading_summary(trades, [], [], [])
    t = out["trades"]
    assert (t["challenger_trades"], t["champion_trades"]) == (2, 1)
    ch = t["per_trade_bps"]["challenger"]
    assert ch == {"trades": 2, "gross_bps": 15.0, "cost_bps": 23.5, "net_bps": -8.5, "fee_bps": 20.0,
                  "spread_bps": 2.5, "slippage_bps": 1.0, "stop_slippage_bps": 0.0, "hit_rate": 0.5}  # fmt: skip
    assert t["per_trade_bps"]["champion"]["net_bps"] == 7.0 and t["hit_rate"] == 0.5
    assert out["top_coins"][0]["symbol"] == "BTCUSDT"
    # BTC's one trade nets 17 bps on a size of 0.1: +0.0017 % of the ledger's starting equity of 10
    scaled = trading_summary(trades, [], [], [], initial_equity=10.0)["top_coins"][0]
    assert scaled == {"symbol": "BTCUSDT", "net_pnl": 0.00017, "net_return": 0.000017, "trades": 1}
    md = summary_markdown({"date": "2024-08-06", "timeframe": "1h", "symbols_done": 2, **out,
                           "portfolio_navs": {"challenger": 0.998, "champion": None}})  # fmt: skip
    assert "| challenger | 2 | +15.0 | +23.5 | +20.0 / +2.5 / +1.0 / +0.0 | -8.5 | 50% |" in md
    assert "starting equity): BTCUSDT +0.02% (1 trades), ETHUSDT -0.03% (1 trades)" in md
    assert "forward NAV" in md and "challenger 0.9980" in md


def test_no_trades_no_table():
    out = trading_summary([], [], [], [])
    assert out["trades"]["per_trade_bps"]["champion"] == {
        "trades": 0, "gross_bps": None, "cost_bps": None, "net_bps": None, "fee_bps": None, "spread_bps": None,
        "slippage_bps": None, "stop_slippage_bps": None, "hit_rate": None,
    }  # fmt: skip
    md = summary_markdown({"date": "2024-08-06", "timeframe": "1h", "symbols_done": 0, **out})
    assert "| ledger |" not in md


def test_the_summary_names_each_coins_preset_for_tomorrow_and_why():
    from huracan_assets.core.reporting.summary import presets_summary

    item = {"preset": "wide", "reason": "exploit", "in_force_today": "safe", "mean_bps": 4.25, "sd_bps": 9.0,
            "p_beats": 0.93, "trades_today": 7, "killed": False, "means_bps": {"wide": 4.25}}  # fmt: skip
    kept = {**item, "preset": "safe", "reason": "hysteresis-hold", "mean_bps": -1.5}
    presets = presets_summary({"ETHUSDT": {"momentum_breakout": item, "mean_reversion": kept}})
    assert presets["ETHUSDT"]["momentum_breakout"]["preset"] == "wide"
    assert "means_bps" not in presets["ETHUSDT"]["momentum_breakout"]  # the summary keeps the decision's fields
    text = summary_markdown({"date": "2024-08-08", "timeframe": "1h", "symbols_done": 1, "presets": presets})
    assert "**presets for tomorrow**" in text and "1 changes" in text
    assert "| ETHUSDT | safe (hysteresis-hold, -1.5 bps) | wide from safe (exploit, +4.2 bps) |" in text


def test_the_same_trades_in_another_order_give_the_same_summary():
    """The registry hands rows back in whatever order a rerun left them in; a mean over them must not depend on it
    (a plain float sum does, in its last bits, and the stored summary then differs from an undisturbed run's)."""
    import json

    trades = [_trade(f"C{i}USDT", role, gross, 7.5, 1.3, 0.7, size=0.1 + i / 7)
              for i, gross in enumerate((0.1, 0.2, 0.3, 1e-3, 7.7, 1 / 3, -12.9, 101.01))
              for role in ("challenger", "champion")]  # fmt: skip
    engines = [{"engine": "trend", "weight": w, "ema_net_bps": e} for w, e in ((0.1, 0.3), (0.2, 7.7), (0.7, 1 / 3))]
    forward = json.dumps(trading_summary(trades, [], [], engines))
    assert json.dumps(trading_summary(trades[::-1], [], [], engines[::-1])) == forward
