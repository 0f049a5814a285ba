"""False promotions under daily retests: zero-edge coins retested every day for a year, and the power on true edges.

Runs the REAL decision code: ``decide_day`` of ``core/promotion/gates.py`` (what ``defs/champion.py``'s pass 2
calls), with ``promotion_spec(load_settings("local"))`` (``config/base.yaml`` through the settings loader), the
trial counter of ``core/promotion/multiplicity.py`` carried from day to day as the champion pointer carries it
(``next_trial`` / ``retests_after``), and every coin of a day decided together (one BH family per day).

The simulated shadow trading (per coin; everything else from the settings):

- **Market.** Trade opportunities arrive ``Poisson(rate)`` per day, ``rate ~ U(1.5, 5)`` per coin, at most the
  risk preset's ``max_trades_per_day`` (balanced: 8). An opportunity's outcome for a long position is
  ``sigma_c x v_t x e``: ``sigma_c`` lognormal (median 120 bps, about the 2 x hourly-vol barriers of 1h bars),
  ``v_t`` a daily volatility factor (log-AR(1), phi 0.9, innovation sd 0.15: volatility clusters), ``e`` a
  Student t(3) scaled to unit variance and clipped at 8 (gaps through a barrier): heavy-tailed.
- **Challengers.** Each opportunity has a state per challenger: long, short or not traded (traded with
  probability 0.8, either side equally likely). Day D's challenger keeps each state of day D-1's challenger with
  probability 0.9 and redraws it otherwise: consecutive challengers are similar models with correlated sides.
  A trade's net P&L is ``side x outcome + edge``: zero mean for a zero-edge coin (whatever skill it has is eaten
  by the costs), ``edge`` net bps per trade for the power runs.
- **Shadow window.** Day D's challenger trades the opportunities of ``[D - S, D]`` (S + 1 days, as
  ``Windows.for_day``: consecutive retests share S of their S + 1 days of bars); it was trained until
  ``D - S - embargo``. Daily returns compound ``position_fraction x net`` of the trades of each day (the preset's
  position size); the drawdown is that of the trade-by-trade equity (so at least the daily one).
- **Champions.** A promotion freezes the challenger's states: later, the champion trades the same opportunities
  with those states (same edge), so it drifts away from the daily challengers as they evolve.

Two rules on the same markets and challengers:

- **before**: the rule before retests were counted: every retest at ``1 - confidence`` (90%), the DSR with the
  fixed ``validation.dsr_trials`` (30), no BH: ``replace(spec, alpha=None, fdr_q=None)`` with ``trial = 1``
  (verified to decide exactly as the previous ``decide``);
- **after**: the default config: retests counted since the last promotion, alpha spending, the DSR's trials
  scaled by the count, Benjamini–Hochberg across the day's coins.

Null run: ``--coins`` zero-edge coins over ``--days`` daily retests. Power runs: per true edge, ``--power-coins``
coins of which ``--edge-coins`` have that edge (the rest zero edge, all decided together) over ``--power-days``.
The last line is ``false_promotion_share=<x>`` (the after rule's share of null coins with a false champion).

    python -m huracan_assets_tests.benchmarks.bench_promotion_null [--quick] [--workers 2]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import scipy

from huracan_assets.core.promotion.gates import Candidate, PromotionSpec, ShadowStats, decide_day
from huracan_assets.core.promotion.multiplicity import next_trial, retests_after, unspent_share
from huracan_assets.core.shadow.trader import RISK_PRESETS
from huracan_assets.settings import Settings, load_settings

DAY_MS = 86_400_000
BASE_DAY = 19_723  # 2024-01-01 in days since the epoch: the simulated calendar starts there
TARGET = 0.05


@dataclass(frozen=True)
class Market:
    """Simulation parameters; the window, the trade cap and the position size come from the settings."""

    shadow_days: int = 14
    embargo_days: int = 1
    max_trades_per_day: int = 8
    position_fraction: float = 0.5
    rate_range: tuple[float, float] = (1.5, 5.0)  # trade opportunities per day
    take_share: float = 0.8  # P(a challenger trades an opportunity)
    persistence: float = 0.9  # P(day D's challenger keeps an opportunity's state from D-1's)
    sigma_median_bps: float = 120.0
    sigma_log_sd: float = 0.35
    tail_df: float = 3.0
    tail_clip: float = 8.0
    vol_ar: float = 0.9
    vol_sd: float = 0.15

    @classmethod
    def from_settings(cls, settings: Settings) -> Market:
        risk = RISK_PRESETS[settings.shadow.risk_preset]
        return cls(
            shadow_days=settings.windows.shadow_days,
            embargo_days=settings.windows.embargo_days,
            max_trades_per_day=risk.max_trades_per_day,
            position_fraction=risk.position_fraction,
        )


def default_spec() -> tuple[PromotionSpec, Market]:
    """The promotion spec the definitions build from the default config, and the market of those settings."""
    from huracan_assets.specs import promotion_spec

    settings = load_settings("local")
    return promotion_spec(settings), Market.from_settings(settings)


class Coin:
    """One coin's opportunities over ``[-S, days)`` and its challengers' evolving states (-1, 0, +1)."""

    def __init__(self, market: Market, days: int, edge_bps: float, rng: np.random.Generator):
        self.m, self.edge, self.rng = market, float(edge_bps), rng
        s = market.shadow_days
        total = days + s  # day index i is calendar day i - S
        rate = rng.uniform(*market.rate_range)
        counts = np.minimum(rng.poisson(rate, total), market.max_trades_per_day)
        self.starts = np.concatenate(([0], np.cumsum(counts)))
        self.day = np.repeat(np.arange(total), counts)
        log_v = np.empty(total)
        log_v[0] = rng.normal(0.0, market.vol_sd / math.sqrt(1 - market.vol_ar**2))
        for i in range(1, total):
            log_v[i] = market.vol_ar * log_v[i - 1] + rng.normal(0.0, market.vol_sd)
        sigma = market.sigma_median_bps * math.exp(rng.normal(0.0, market.sigma_log_sd))
        df = market.tail_df
        e = np.clip(rng.standard_t(df, self.day.size) / math.sqrt(df / (df - 2)), -market.tail_clip, market.tail_clip)
        self.outcome = sigma * np.exp(log_v - 0.5 * np.var(log_v))[self.day] * e
        self.state = self._draw(self.day.size)

    def _draw(self, n: int) -> np.ndarray:
        take = self.rng.random(n) < self.m.take_share
        side = np.where(self.rng.random(n) < 0.5, -1, 1)
        return (take * side).astype(np.int8)

    def next_challenger(self) -> None:
        redraw = self.rng.random(self.state.size) >= self.m.persistence
        self.state[redraw] = self._draw(int(redraw.sum()))

    def stats(self, model_id: str, state: np.ndarray, day: int, trained_until_day: int) -> ShadowStats:
        """Shadow stats of the model with ``state`` on the window of decision day ``day`` (index ``day + S``)."""
        s = self.m.shadow_days
        window = slice(self.starts[day], self.starts[day + s + 1])
        st = state[window]
        traded = st != 0
        net = st[traded] * self.outcome[window][traded] + self.edge
        growth = np.log1p(self.m.position_fraction * net / 1e4)
        days_of = self.day[window][traded] - day
        daily = np.expm1(np.bincount(days_of, weights=growth, minlength=s + 1))
        equity = np.exp(np.concatenate(([0.0], np.cumsum(growth))))
        drawdown = float(np.max(1.0 - equity / np.maximum.accumulate(equity)))
        return ShadowStats(
            model_id=model_id,
            trade_net_bps=net,
            daily_returns=daily,
            max_drawdown=min(1.0, drawdown),
            canaries_passed=True,
            trained_until_ms=(BASE_DAY + trained_until_day) * DAY_MS,
            compared_from_ms=(BASE_DAY + day - s) * DAY_MS,
        )


@dataclass
class Rule:
    """One promotion rule's state over the coins: the champion pointer's content, as far as the decision needs."""

    name: str
    spec: PromotionSpec
    counts_trials: bool
    coins: int
    champion: list = field(default_factory=list)  # per coin: (frozen states, promotion day) or None
    tests: list = field(default_factory=list)  # per coin: tests_since_promotion of the last pointer (None: none)
    first: list = field(default_factory=list)  # per coin: day of the first promotion, or None
    promotions: int = 0
    first_champion_tests: int = 0  # decisions of coins without a champion (the per-test false-promotion rate)

    def __post_init__(self) -> None:
        self.champion = [None] * self.coins
        self.tests = [None] * self.coins
        self.first = [None] * self.coins

    def decide(self, coins: list[Coin], challengers: list[ShadowStats], day: int) -> None:
        s, emb = coins[0].m.shadow_days, coins[0].m.embargo_days
        candidates, trials = {}, {}
        for i, coin in enumerate(coins):
            champ = None
            if self.champion[i] is not None:
                state, promoted = self.champion[i]
                champ = coin.stats(f"champion-{i}-{promoted}", state, day, promoted - s - emb)
            else:
                self.first_champion_tests += 1
            trials[i] = next_trial(self.tests[i]) if self.counts_trials else 1
            candidates[i] = Candidate(challengers[i], champ, trials[i])
        for i, decision in decide_day(candidates, self.spec).items():
            self.tests[i] = retests_after(trials[i], decision.promote)
            if decision.promote:
                self.promotions += 1
                self.champion[i] = (coins[i].state.copy(), day)
                if self.first[i] is None:
                    self.first[i] = day


@dataclass(frozen=True)
class Scenario:
    name: str
    coins: int
    edge_coins: int  # the first edge_coins coins have edge_bps; the others zero edge
    edge_bps: float
    days: int
    seed: int


@dataclass
class Outcome:
    scenario: Scenario
    first: dict[str, list]  # rule -> per coin first promotion day (None: never)
    promotions: dict[str, int]
    first_champion_tests: dict[str, int]
    trades_per_window: list[int]
    trade_sd_bps: float
    trade_excess_kurtosis: float
    daily_sd: float
    median_drawdown: float
    retest_corr: float  # correlation of consecutive challengers' window mean net bps (same coin)
    seconds: float


def run_scenario(scenario: Scenario, spec: PromotionSpec, market: Market) -> Outcome:
    t0 = time.perf_counter()
    coins = [
        Coin(market, scenario.days, scenario.edge_bps if i < scenario.edge_coins else 0.0,
             np.random.default_rng([scenario.seed, i]))
        for i in range(scenario.coins)
    ]  # fmt: skip
    rules = [
        Rule("before", replace(spec, alpha=None, fdr_q=None), False, scenario.coins),
        Rule("after", spec, True, scenario.coins),
    ]
    s, emb = market.shadow_days, market.embargo_days
    n_trades, sds, kurts, daily_sd, dds, means = [], [], [], [], [], np.full((scenario.coins, scenario.days), np.nan)
    for day in range(scenario.days):
        if day:
            for coin in coins:
                coin.next_challenger()
        challengers = [coin.stats(f"challenger-{i}-{day}", coin.state, day, day - s - emb) for i, coin in
                       enumerate(coins)]  # fmt: skip
        for i, ch in enumerate(challengers):
            n_trades.append(ch.n_trades)
            if ch.n_trades >= 2:
                means[i, day] = ch.trade_net_bps.mean()
            if day % (s + 1) == 0 and i >= scenario.edge_coins and ch.n_trades >= 4:  # disjoint windows, null coins
                x = ch.trade_net_bps
                sds.append(x.std(ddof=1))
                kurts.append(float(np.mean((x - x.mean()) ** 4) / np.var(x) ** 2 - 3.0))
                daily_sd.append(ch.daily_returns.std(ddof=1))
                dds.append(ch.drawdown())
        for rule in rules:
            rule.decide(coins, challengers, day)
    a, b = means[:, :-1].ravel(), means[:, 1:].ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    return Outcome(
        scenario=scenario,
        first={r.name: r.first for r in rules},
        promotions={r.name: r.promotions for r in rules},
        first_champion_tests={r.name: r.first_champion_tests for r in rules},
        trades_per_window=n_trades,
        trade_sd_bps=float(np.median(sds)) if sds else math.nan,
        trade_excess_kurtosis=float(np.median(kurts)) if kurts else math.nan,
        daily_sd=float(np.median(daily_sd)) if daily_sd else math.nan,
        median_drawdown=float(np.median(dds)) if dds else math.nan,
        retest_corr=float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 2 else math.nan,
        seconds=time.perf_counter() - t0,
    )


def _run(args: tuple[Scenario, PromotionSpec, Market]) -> Outcome:
    return run_scenario(*args)


# ------------------------------------------------------------------------------------------------ report
def share_promoted(first: list, coins: range, within: int | None = None) -> float:
    hits = [first[i] is not None and (within is None or first[i] < within) for i in coins]
    return sum(hits) / len(hits) if hits else math.nan


def power_table(power: list[Outcome]) -> dict[float, dict[str, tuple[int, float, float, float]]]:
    """Per true edge and rule: (edge coins, share promoted within 30 days, within 90 days, share of the zero-edge
    coins of the same universes promoted), pooled over the repeated universes."""
    table: dict[float, dict[str, tuple[int, float, float, float]]] = {}
    for edge_bps in sorted({o.scenario.edge_bps for o in power}):
        outs = [o for o in power if o.scenario.edge_bps == edge_bps]
        table[edge_bps] = {}
        for name in ("before", "after"):
            edge = [o.first[name][i] for o in outs for i in range(o.scenario.edge_coins)]
            null = [o.first[name][i] for o in outs for i in range(o.scenario.edge_coins, o.scenario.coins)]
            table[edge_bps][name] = (
                len(edge),
                share_promoted(edge, range(len(edge)), 30),
                share_promoted(edge, range(len(edge)), 90),
                share_promoted(null, range(len(null))),
            )
    return table


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


@dataclass
class Result:
    null: Outcome
    power: list[Outcome]
    spec: PromotionSpec
    market: Market
    seconds: float

    @property
    def false_promotion_share(self) -> float:
        return share_promoted(self.null.first["after"], range(self.null.scenario.coins))

    @property
    def false_promotion_share_before(self) -> float:
        return share_promoted(self.null.first["before"], range(self.null.scenario.coins))


def render(res: Result) -> str:
    null, spec, m = res.null, res.spec, res.market
    sc = null.scenario
    tw = np.asarray(null.trades_per_window)
    lines = [
        f"## Zero-edge promotions: {sc.coins} coins x {sc.days} daily retests (seed {sc.seed})",
        "",
        f"Window S + 1 = {m.shadow_days + 1} days (consecutive retests share {m.shadow_days}), at most "
        f"{m.max_trades_per_day} trades/day, position {m.position_fraction:g}. Spec from config/base.yaml: "
        f"min_trades {spec.min_trades}, confidence {spec.confidence}, min_dsr {spec.min_dsr}, dsr_trials "
        f"{spec.dsr_trials}, alpha {spec.alpha}, spending_half_tests {spec.spending_half_tests:g}, fdr_q {spec.fdr_q}.",
        f"Simulated challengers: trades per window median {np.median(tw):.0f} (10-90%: {np.percentile(tw, 10):.0f}"
        f"-{np.percentile(tw, 90):.0f}), per-trade net sd {null.trade_sd_bps:.0f} bps, excess kurtosis "
        f"{null.trade_excess_kurtosis:.1f}, daily return sd {null.daily_sd:.2%}, window drawdown median "
        f"{null.median_drawdown:.1%}; correlation of consecutive retests' mean net bps {null.retest_corr:.2f}.",
        "",
        "| rule | coins with a false champion | share | false promotions | first-champion tests | per test |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "before": "before: every retest at 90% confidence, DSR with 30 trials, no BH",
        "after": "after: retests counted, alpha spending, DSR trials x retests, BH across coins",
    }
    for name in ("before", "after"):
        first = null.first[name]
        hit = sum(f is not None for f in first)
        per_test = hit / null.first_champion_tests[name] if null.first_champion_tests[name] else math.nan
        lines.append(
            f"| {labels[name]} | {hit} / {sc.coins} | {hit / sc.coins:.3f} | {null.promotions[name]} | "
            f"{null.first_champion_tests[name]} | {per_test:.2e} |"
        )
    if spec.alpha is not None:
        lines += ["", f"Union bound of the after rule per coin over {sc.days} retests: alpha x (1 - F({sc.days})) = "
                  f"{spec.alpha * (1 - unspent_share(sc.days, spec.spending_half_tests)):.4f}."]  # fmt: skip
    if res.power:
        p0 = res.power[0].scenario
        repeats = sum(o.scenario.edge_bps == p0.edge_bps for o in res.power)
        lines += [
            "",
            f"## Power: P(promoted within 30 / 90 days), {p0.edge_coins} coins with the edge among {p0.coins} "
            f"decided together ({p0.coins - p0.edge_coins} zero-edge), {p0.days} days, {repeats} universe(s) per edge",
            "",
            "| true edge net bps/trade | rule | edge coins | within 30 days | within 90 days | zero-edge promoted |",
            "|---:|---|---:|---:|---:|---:|",
        ]
        for edge_bps, rows in power_table(res.power).items():
            for name, (n, w30, w90, null) in rows.items():
                lines.append(f"| {edge_bps:g} | {name} | {n} | {w30:.3f} | {w90:.3f} | {null:.3f} |")
    lines += [
        "",
        f"{os.cpu_count()} cores, {cpu_name()}; Python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}; {res.seconds:.1f} s wall (scenarios: "
        + ", ".join(f"{o.scenario.name} {o.seconds:.1f} s" for o in [res.null, *res.power])
        + ")",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> Result:
    spec, market = default_spec()
    t0 = time.perf_counter()
    jobs = [Scenario("null", args.coins, 0, 0.0, args.days, args.seed)]
    jobs += [Scenario(f"edge {e:g}#{r}", args.power_coins, args.edge_coins, e, args.power_days,
                      args.seed + 1 + k * args.power_repeats + r)
             for k, e in enumerate(args.edges) for r in range(args.power_repeats)]  # fmt: skip
    work = [(job, spec, market) for job in jobs]
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            outcomes = list(pool.map(_run, work))
    else:
        outcomes = [_run(w) for w in work]
    return Result(outcomes[0], outcomes[1:], spec, market, time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 null coins x 180 days, power: 20 of 60 coins, once")
    parser.add_argument("--coins", type=int, default=None, help="zero-edge coins of the null run (200)")
    parser.add_argument("--days", type=int, default=None, help="daily retests of the null run (365)")
    parser.add_argument("--power-coins", type=int, default=None, help="coins decided together in a power run (200)")
    parser.add_argument("--edge-coins", type=int, default=None, help="of which with the true edge (40)")
    parser.add_argument("--power-days", type=int, default=90)
    parser.add_argument("--power-repeats", type=int, default=None, help="universes per true edge (2)")
    parser.add_argument("--edges", type=lambda v: [float(x) for x in v.split(",") if x], default=[5.0, 10.0, 20.0])
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    quick = {"coins": 60, "days": 180, "power_coins": 60, "edge_coins": 20, "power_repeats": 1}
    full = {"coins": 200, "days": 365, "power_coins": 200, "edge_coins": 40, "power_repeats": 2}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    res = run(args)
    print(render(res))
    print(f"false_promotion_share_before={res.false_promotion_share_before:.4f}")
    print(f"target <= {TARGET}: {'met' if res.false_promotion_share <= TARGET else 'MISSED'}")
    print(f"false_promotion_share={res.false_promotion_share:.4f}")
    return res


if __name__ == "__main__":
    main()
