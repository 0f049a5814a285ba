"""Per-key metadata at 400 coins: what each coin-day's own numbers and charts cost a date.

Since issue 17, every key of a ranged run carries its own metadata (``defs/per_symbol.key_metadata``): its status,
its numbers, and for the assets people read per coin, its charts (``core/reporting/keys.py``). Two costs:

1. **Drawing** (pure, one process): each chart kind a coin-day gets, drawn on real candles of the test data
   (the regimes over the day's close), on 14 days of 23 engine weights (meta weights over time), on a
   5-fold walk-forward record (the folds) and on two 30-day forward ledgers (equity): milliseconds per chart
   and bytes per chart.
2. **Dagster** (one ranged run per date, SQLite instance, like ``bench_dagster_overhead``): the same three
   chained assets at N coins, every key with its status and rows only, then every key also with a chart of
   the measured size. Seconds per run and the growth of the instance's database per date.

The share is (drawing per coin + Dagster's extra per coin) over the compute of a coin-day (``--coin-day-s``,
the measured 14.8 s per coin of RESULTS.md "Seconds per stage", the smallest of its configurations).

    python -m huracan_assets_tests.benchmarks.bench_key_metadata [--n 400] [--repeats 2] [--draws 20]
"""

from __future__ import annotations

import argparse
import base64
import shutil
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from huracan_assets.core.market_data.candles import day_bounds_ms
from huracan_assets.core.regime.classifier import regimes_for_window
from huracan_assets.core.reporting.charts import equity_chart, markdown_image
from huracan_assets.core.reporting.folds import fold_chart
from huracan_assets.core.reporting.keys import regime_markdown, weights_markdown_chart
from huracan_assets.settings import load_settings
from huracan_assets.specs import regime_spec
from huracan_assets_tests.benchmarks import bench_dagster_overhead as overhead
from huracan_assets_tests.conftest import TEST_DATA

DAY = date(2024, 3, 12)
DAY_MS = 86_400_000


def _regimes_chart() -> str:
    candles = pl.read_parquet(TEST_DATA / "1h" / "BTC_USDT.parquet")
    start, end = day_bounds_ms(DAY)
    frame = candles.filter((pl.col("ts") >= start - 10 * DAY_MS) & (pl.col("ts") < end))
    regimes = regimes_for_window(frame, regime_spec(load_settings("local")), start, end)
    return regime_markdown(f"{DAY}|BTCUSDT", regimes, frame)


def _weights_chart(rng: np.random.Generator) -> str:
    engines = [f"engine_{i:02d}" for i in range(23)]
    history = [
        (DAY - timedelta(days=13 - i), pl.DataFrame({"engine": engines, "weight": rng.dirichlet(np.ones(23))}))
        for i in range(14)
    ]
    return weights_markdown_chart(f"{DAY}|BTCUSDT", history)


def _folds_chart(rng: np.random.Generator) -> str:
    t0 = day_bounds_ms(DAY - timedelta(days=40))[0]
    folds = [
        {"fold": i, "test_start_ms": t0 + i * 7 * DAY_MS, "test_end_ms": t0 + (i + 1) * 7 * DAY_MS, "n_train": 900,
         "n_test": 160, "auc": 0.5 + rng.normal(0, 0.03), "net_bps_per_trade": rng.normal(0, 8), "n_trades": 40}
        for i in range(5)
    ]  # fmt: skip
    overall = {"auc": 0.51, "net_bps_per_trade": -1.2, "n_trades": 200, "n_oos": 800}
    return fold_chart({"folds": folds, "overall": overall})


def _equity_chart(rng: np.random.Generator) -> str:
    days = [DAY - timedelta(days=29 - i) for i in range(30)]
    curves = {role: (days, np.cumprod(1 + rng.normal(0, 0.01, 30))) for role in ("challenger", "champion")}
    return markdown_image(equity_chart(curves, reference=1.0, title="forward ledgers"), "ledgers")


def _png_bytes(markdown: str) -> int:
    return len(base64.b64decode(markdown.split("data:image/png;base64,", 1)[1].split(")", 1)[0]))


def draw(draws: int) -> dict[str, tuple[float, int, int]]:
    """Per chart kind: (median ms per chart, PNG bytes, markdown characters)."""
    rng = np.random.default_rng(7)
    kinds = {
        "regimes": _regimes_chart,
        "meta weights": lambda: _weights_chart(rng),
        "walk-forward folds": lambda: _folds_chart(rng),
        "equity (ledgers)": lambda: _equity_chart(rng),
    }
    out = {}
    for name, make in kinds.items():
        make()  # warm-up: fonts and caches
        times = []
        for _ in range(draws):
            t0 = time.perf_counter()
            md = make()
            times.append(time.perf_counter() - t0)
        out[name] = (1000 * statistics.median(times), _png_bytes(md), len(md))
    return out


def _db_bytes(workdir: Path) -> int:
    return sum(p.stat().st_size for p in (workdir / "dagster_home").rglob("*.db"))


def dagster(n: int, repeats: int, chart: str | None, root: Path) -> tuple[float, float]:
    """(median seconds of the ranged run, median growth of the instance database per date in bytes)."""
    workdir = root / ("charts" if chart else "status")
    workdir.mkdir()
    overhead.KEY_CHART[0] = chart
    try:
        sizes = []
        original = overhead.run_dagster_day

        def measured(defs, instance, day, symbols):
            before = _db_bytes(workdir)
            stats = original(defs, instance, day, symbols)
            sizes.append(_db_bytes(workdir) - before)
            return stats

        overhead.run_dagster_day = measured
        try:
            row = overhead.bench_one("sqlite", n, repeats, workdir, overhead.PG_ADMIN_URL)
        finally:
            overhead.run_dagster_day = original
    finally:
        overhead.KEY_CHART[0] = None
    return row.dagster_s, statistics.median(sizes[1:] or sizes)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="coins per date")
    parser.add_argument("--repeats", type=int, default=2, help="measured dates per mode (median)")
    parser.add_argument("--draws", type=int, default=20, help="charts drawn per kind (median)")
    parser.add_argument("--coin-day-s", type=float, default=14.8, help="compute seconds of one coin-day")
    args = parser.parse_args(argv)

    charts = draw(args.draws)
    print("| chart | ms per chart (median) | PNG bytes | markdown chars |\n|---|---:|---:|---:|")
    for name, (ms, png, chars) in charts.items():
        print(f"| {name} | {ms:.0f} | {png:,} | {chars:,} |")
    draw_s = sum(ms for ms, _, _ in charts.values()) / 1000  # one of each kind per coin-day
    mean_md = int(statistics.mean(chars for _, _, chars in charts.values()))
    example = _equity_chart(np.random.default_rng(1))
    chart = example + "x" * max(0, mean_md - len(example))  # a chart of the kinds' mean size

    root = Path(tempfile.mkdtemp(prefix="huracan_bench_keys_"))
    try:
        plain_s, plain_b = dagster(args.n, args.repeats, None, root)
        chart_s, chart_b = dagster(args.n, args.repeats, chart, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    per_coin_dagster = max(0.0, chart_s - plain_s) / args.n / 3 * len(charts)  # 3 assets carry a chart here
    share = (draw_s + per_coin_dagster) / args.coin_day_s
    print(
        f"\n| N | mode | ranged run s (median, 3 assets) | instance DB growth per date |\n|---:|---|---:|---:|\n"
        f"| {args.n} | status and rows per key | {plain_s:.2f} | {plain_b / 1e6:.2f} MB |\n"
        f"| {args.n} | + one chart per key and asset | {chart_s:.2f} | {chart_b / 1e6:.2f} MB |"
    )
    print(
        f"\nper coin-day: drawing {draw_s:.2f} s ({len(charts)} charts), Dagster's extra for {len(charts)} charts "
        f"{per_coin_dagster * 1000:.0f} ms; share of a {args.coin_day_s:g} s coin-day: {share:.1%}; "
        f"a {args.n}-coin date: {args.n * (draw_s + per_coin_dagster):.0f} s, "
        f"{chart_b / 3 * len(charts) / 1e6:.1f} MB of event log"
    )
    return {"charts": charts, "plain_s": plain_s, "chart_s": chart_s, "share": share}


if __name__ == "__main__":
    main()
