"""Ingest-and-clean throughput: N symbols x 1 day of 5m bars through the replay exchange.

Stages, each timed over all symbols: fetch (stock ccxt Binance client over HTTP to the local replay
server, our pagination and checks), clean (``clean_candles``), store (parquet + sha256 on a local
object store). Baseline for the fetch: reading the same bars straight from the parquet files.

    python -m huracan_assets_tests.benchmarks.bench_ingest [--symbols 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from huracan_assets.core.market_data.candles import day_bounds_ms
from huracan_assets.core.market_data.cleaning import CleaningPolicy, clean_candles
from huracan_assets.exchange.ccxt_exchange import CcxtExchange
from huracan_assets.exchange.files import FilesExchange
from huracan_assets.exchange.replay import running_replay_server
from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets.storage.partitioned import write_frame

REPO = Path(__file__).resolve().parents[2]
SHARED_5M = REPO.parent / "shared" / "data" / "ohlcv" / "binance_spot" / "5m"
DAY = date(2024, 5, 1)


def make_market(folder: Path, n: int) -> list[str]:
    """``n`` coins of real 5m bars: the shared 5m files linked under ``n`` distinct names."""
    sources = sorted(SHARED_5M.glob("*.parquet"))
    if not sources:
        raise SystemExit(f"needs the shared 5m data at {SHARED_5M}")
    (folder / "5m").mkdir(parents=True)
    names = []
    for i in range(n):
        name = f"C{i:03d}"
        (folder / "5m" / f"{name}_USDT.parquet").symlink_to(sources[i % len(sources)])
        names.append(f"{name}USDT")
    return names


def run_once(folder: Path, symbols: list[str], replay_url: str, store_root: Path) -> dict[str, float]:
    start, end = day_bounds_ms(DAY)
    policy = CleaningPolicy(bar_minutes=5)
    ex = CcxtExchange("binance", "5m", "USDT", base_url=replay_url, rate_limit_ms=1, page_limit=1000)
    ex.markets  # noqa: B018 - load markets outside the timed stages
    now = ex.now_ms()
    t0 = time.perf_counter()
    raw = {s: ex.fetch_ohlcv(s, start, end, now_ms=now) for s in symbols}
    t1 = time.perf_counter()
    cleaned = {s: clean_candles(f, start, end, policy)[0] for s, f in raw.items()}
    t2 = time.perf_counter()
    store = LocalObjectStore(store_root)
    for s, f in cleaned.items():
        write_frame(store, "candles", f"{DAY.isoformat()}|{s}", f)
    t3 = time.perf_counter()
    files = FilesExchange(folder, "5m")
    t4 = time.perf_counter()
    direct = {s: files.fetch_ohlcv(s, start, end) for s in symbols}
    t5 = time.perf_counter()
    bars = sum(f.height for f in cleaned.values())
    assert bars == 288 * len(symbols), bars
    assert all(direct[s].equals(raw[s]) for s in symbols)  # the HTTP path returns exactly the file's bars
    return {"fetch": t1 - t0, "clean": t2 - t1, "store": t3 - t2, "direct_read": t5 - t4, "bars": bars}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "market"
        symbols = make_market(folder, args.symbols)
        with running_replay_server(folder, now_ms=day_bounds_ms(DAY)[1] + 7_200_000, preload=True) as replay:
            runs = [run_once(folder, symbols, replay.url, Path(tmp) / f"store{i}") for i in range(args.repeats)]
    med = {k: statistics.median(r[k] for r in runs) for k in ("fetch", "clean", "store", "direct_read")}
    bars = runs[0]["bars"]
    total = med["fetch"] + med["clean"] + med["store"]
    print(f"{args.symbols} symbols x 1 day of 5m bars ({bars} bars), median of {args.repeats}")
    print("| stage | seconds | bars/s |")
    print("|---|---:|---:|")
    for stage in ("fetch", "clean", "store"):
        print(f"| {stage} | {med[stage]:.3f} | {bars / med[stage]:,.0f} |")
    print(f"| **ingest total** | {total:.3f} | {bars / total:,.0f} |")
    direct = med["direct_read"]
    print(f"| baseline: direct parquet read (no HTTP, no ccxt) | {direct:.3f} | {bars / direct:,.0f} |")
    print(f"fetch through ccxt + replay HTTP costs {med['fetch'] / med['direct_read']:.1f}x the direct read")


if __name__ == "__main__":
    main()
