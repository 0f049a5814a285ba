"""`huracan demo` end to end, as a user runs it: a subprocess on a temp home."""

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

pytestmark = pytest.mark.slow


def _huracan(*args, home: Path, timeout=900):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HURACAN_", "DAGSTER_"))}
    cmd = [sys.executable, "-m", "huracan_assets.cli", *args, "--home", str(home)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def test_demo_on_the_bundled_sample(tmp_path):
    home = tmp_path / "home"
    out = _huracan(
        "demo", "--symbols", "BTCUSDT,ETHUSDT,TONUSDT", "--start", "2024-08-09", "--end", "2024-08-11", home=home
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "2024-08-11" in out.stderr and "daily loop" in out.stderr  # progress while it works
    # TON lists 2024-08-08 10:00 (named explicitly, so no history filter): 1/9 .. 3/9 feature warm-up days
    assert "6 symbol-days done, 3 skipped, 0 failed" in out.stdout
    assert "TONUSDT" in out.stdout and "insufficient history" in out.stdout
    store = home / "store"
    # archive layout, ts stays int64 ms
    candles = pl.read_parquet(store / "candles" / "BTCUSDT" / "2024-08-10.parquet")
    assert candles.schema["ts"] == pl.Int64 and candles.height == 24
    assert candles["ts"].min() == 1723248000000  # 2024-08-10T00:00Z
    # history before --start was materialized: 90 training + 1 embargo + 14 shadow + 9 feature warm-up days
    history = sorted(p.stem for p in (store / "candles" / "BTCUSDT").glob("*.parquet"))
    assert history[0] == "2024-04-17" and history[-1] == "2024-08-11"
    for asset in ("features", "labels", "regimes"):
        assert (store / asset / "BTCUSDT" / "2024-08-11.parquet").exists()
    summary = json.loads((store / "summaries" / "daily" / "2024-08-11.json").read_text())
    assert summary["done"] == ["BTCUSDT", "ETHUSDT"]
    assert summary["skipped"] == {"TONUSDT": "features: insufficient history: 3/9 warm-up days"}
    # the preset each coin would use tomorrow, learned from its replayed shadow trades, in the summary and the output
    strategies = {"momentum_breakout", "trend_following", "mean_reversion"}
    assert set(summary["presets"]) == {"BTCUSDT", "ETHUSDT"}
    assert all(set(plan) == strategies for plan in summary["presets"].values())
    assert "presets for 2024-08-12" in out.stdout and "hysteresis-hold" in out.stdout
    assert (home / "registry.db").exists()
    assert f"UI: HURACAN_HOME={home} make ui" in out.stdout  # a command that exists, not a bare `dagster dev`


def test_demo_on_a_folder_it_has_never_seen_trains_identical_bundles_twice(tmp_path, test_data_dir):
    data = test_data_dir.parent / "replay_long"  # 22 coins, 2024-07-01..08-09; TON lists 08-08
    args = ["demo", "--data", str(data), "--symbols", "SOLUSDT", "--start", "2024-08-08", "--end", "2024-08-09"]
    args += ["--training-days", "21", "--shadow-days", "3"]
    runs = [_huracan(*args, home=tmp_path / f"h{i}") for i in (1, 2)]
    for out in runs:
        assert out.returncode == 0, out.stderr[-3000:]
        assert "2 symbol-days done, 0 skipped, 0 failed" in out.stdout
        assert "challengers (walk-forward, out of sample, net of costs)" in out.stdout
    bundles = [sorted((tmp_path / f"h{i}" / "store" / "challengers").rglob("sha256.txt")) for i in (1, 2)]
    assert len(bundles[0]) == 2  # 2 dates
    names = [[str(p.relative_to(tmp_path / f"h{i}")) for p in b] for i, b in zip((1, 2), bundles, strict=True)]
    assert names[0] == names[1]  # named by as-of date and content hash: the same bundles
    assert [p.read_bytes() for p in bundles[0]] == [p.read_bytes() for p in bundles[1]]


def test_demo_with_nothing_to_do_exits_non_zero(tmp_path, test_data_dir):
    out = _huracan(
        "demo",
        "--data",
        str(test_data_dir),
        "--symbols",
        "BTCUSDT",
        "--start",
        "2024-05-01",
        "--end",
        "2024-05-01",
        home=tmp_path / "h",
    )
    assert out.returncode == 1, out.stdout + out.stderr[-2000:]
    assert "0 symbol-days done" in out.stdout


def test_help_shows_defaults_exit_codes_and_the_version(tmp_path):
    out = _huracan("demo", "--help", home=tmp_path / "h")
    assert out.returncode == 0
    for part in ("(default: 2024-08-06)", "$HURACAN_HOME, else ~/.huracan", "exit codes: 0", "3 some symbol-days"):
        assert part in " ".join(out.stdout.split()), part
    assert "(default: None)" not in out.stdout
    version = _huracan("--version", home=tmp_path / "h")
    assert version.returncode == 0 and version.stdout.startswith("huracan ")


def test_demo_on_a_missing_folder_is_a_clear_error(tmp_path):
    out = _huracan("demo", "--data", str(tmp_path / "nope"), home=tmp_path / "h")
    assert out.returncode == 2
    assert "no candle folder" in out.stderr


def test_replay_server_command_serves_a_folder_with_its_clock(tmp_path, test_data_dir):
    import json
    import signal
    import time
    import urllib.request

    from huracan_assets_tests.conftest import _free_port

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HURACAN_", "DAGSTER_"))}
    cmd = [sys.executable, "-m", "huracan_assets.cli", "replay-server", "--data", str(test_data_dir)]
    cmd += ["--port", str(port), "--now", "2024-03-05T00:00"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v3/time", timeout=2) as resp:
                    assert json.loads(resp.read()) == {"serverTime": 1709596800000}
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()[-2000:]
                time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v3/exchangeInfo", timeout=5) as resp:
            listed = {s["symbol"] for s in json.loads(resp.read())["symbols"]}
        assert "BTCUSDT" in listed and "WIFUSDT" not in listed  # WIF lists 2024-03-05 14:00, after the clock
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
