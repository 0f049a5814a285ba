"""One replay history for the integration tests: built once per test session, copied into each test.

The tests that train models (the whole graph on PostgreSQL, the refit, the truncation canary) all need the
same thing first: five weeks of stored data assets (candles through engine signals) for a few real coins, so
that a 21-day training window, a 3-day shadow window and the engines' calibration have their history. Building
it is most of their time, and it is the same every time, so :func:`build_history` builds it once, through the
production path (the stock ccxt Binance client against the replay exchange, its clock at 02:00 UTC after the
last day), and :func:`copy_history` hands each test its own copy of the home (object store, SQLite registry) and
of the Dagster instance (runs, materializations, the registered symbols).

Every test that copies the history trains with :func:`history_settings`: the data assets were built with those
settings, and the truncation canary would rightly flag stored data that another configuration rebuilds
differently. Models are small (``num_boost_round`` 20): the tests check what the graph does with models, not
how good they are (``make test-all`` runs the full-size variants).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from huracan_assets.core.market_data.candles import day_bounds_ms
from huracan_assets.settings import Settings, load_settings
from huracan_assets_tests.conftest import TEST_DATA
from huracan_assets_tests.defs.helpers import sqlite_instance

REPLAY_LONG = TEST_DATA.parent / "replay_long"  # 22 coins of real 1h candles, 2024-07-01..08-09; TON lists 08-08
FIRST, LAST = date(2024, 7, 1), date(2024, 8, 6)  # the history: data assets of every day of [FIRST, LAST]
COINS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "TONUSDT")
WINDOWS = {"warmup_days": 3, "training_days": 21, "shadow_days": 3, "embargo_days": 1}
SMALL_MODELS = {"min_train_rows": 200, "params": {"num_boost_round": 20}}
H = 3_600_000


def after(day: date) -> int:
    """02:00 UTC after ``day``: when the schedule runs D, so the replay exchange's clock for D."""
    return day_bounds_ms(day)[1] + 2 * H


def history_settings(home: Path, *, base_url: str | None = None, data_dir: Path = REPLAY_LONG, **overrides) -> Settings:
    """The settings the history was built with: ccxt against the replay exchange at ``base_url``, or the files
    exchange on ``data_dir``; ``overrides`` replace whole top-level sections (``models``, ``promotion``, ...)."""
    exchange = (
        {"kind": "ccxt", "exchange_id": "binance", "base_url": base_url, "rate_limit_ms": 1}
        if base_url
        else {"kind": "files", "data_dir": str(data_dir)}
    )
    sections = {
        "home": str(home),
        "partitions": {"start_date": FIRST.isoformat()},
        "exchange": exchange,
        "universe": {"symbols": list(COINS)},
        "windows": WINDOWS,
        "models": SMALL_MODELS,
        "validation": {"n_folds": 3},
        **overrides,
    }
    return load_settings("local", **sections)


@dataclass(frozen=True)
class History:
    """A copy of the history: ``home`` (store and SQLite registry) and ``dagster`` (the instance's home)."""

    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def dagster(self) -> Path:
        return self.root

    def instance(self):
        return sqlite_instance(self.dagster)


def build_history(root: Path) -> History:
    """The data assets of [FIRST, LAST] for :data:`COINS`, through ccxt and the replay exchange."""
    from huracan_assets.defs.build import build_definitions
    from huracan_assets.exchange.replay import running_replay_server
    from huracan_assets.runner import backfill

    history = History(root)
    with running_replay_server(REPLAY_LONG, now_ms=after(FIRST)) as replay:
        settings = history_settings(history.home, base_url=replay.url)
        defs = build_definitions(settings)
        instance = history.instance()
        clock = lambda d: replay.set_now(after(d))  # noqa: E731
        backfill(defs, instance, FIRST, LAST, 40, with_summary=False, clock=clock, job="symbol_day_data_job")
        instance.dispose()
    return history


def copy_history(golden: History, root: Path) -> History:
    """A private copy of ``golden`` under ``root`` (the test may change anything in it)."""
    shutil.copytree(golden.root, root)
    return History(root)


# ------------------------------------------------------------------------------------------ published history
PUBLISHED_COINS = ("BTC_USDT", "ETH_USDT", "SOL_USDT")
PUBLISHED_DATES = (date(2024, 8, 7), date(2024, 8, 8))
RELAXED = {  # gates that promote every coin (the tests check what a promotion does, not whether one is earned)
    "min_trades": 2,
    "min_dsr": 0.0,
    "confidence": 0.5,
    "first_min_net_bps": -1e9,
    "margin_bps": -1e9,
    "max_drawdown": 1.0,
    "kill_switch_drawdown": 1.0,
}


def world(root: Path, last: date, coins=PUBLISHED_COINS) -> Path:
    """A data folder with the coins' 1h candles of :data:`REPLAY_LONG` up to the end of ``last``."""
    (root / "1h").mkdir(parents=True)
    end = day_bounds_ms(last)[1]
    for coin in coins:
        frame = pl.read_parquet(REPLAY_LONG / "1h" / f"{coin}.parquet")
        ts = frame["ts"] if frame.schema["ts"].is_integer() else frame["ts"].dt.epoch("ms")
        frame.filter(ts < end).write_parquet(root / "1h" / f"{coin}.parquet")
    return root


def published_settings(home: Path, data: Path) -> Settings:
    """The published history's settings: three coins, small models, refits published, relaxed gates."""
    return history_settings(
        home,
        data_dir=data,
        universe={"symbols": [c.replace("_", "") for c in PUBLISHED_COINS]},
        models={**SMALL_MODELS, "publish_refit": True},
        promotion=RELAXED,
    )


@dataclass(frozen=True)
class Published:
    """A copy of the replay history after the daily loop of ``PUBLISHED_DATES`` (data through ``last``)."""

    history: History
    data: Path
    outcomes: tuple

    def settings(self) -> Settings:
        return published_settings(self.history.home, self.data)


def run_published(golden: History, root: Path, data: Path, last: date) -> Published:
    """A copy of ``golden`` (data assets through 2024-08-06), then the files exchange on ``data``: the data
    assets through ``last`` first, then the daily loop of the dates from ``PUBLISHED_DATES[0]`` to ``last``
    (every coin promoted under the relaxed gates, the refit published)."""
    from huracan_assets.runner import backfill, daily_loop
    from huracan_assets.storage.object_store import LocalObjectStore
    from huracan_assets_tests.defs.helpers import defs_for

    history = copy_history(golden, root)
    settings = published_settings(history.home, data)
    defs = defs_for(settings)
    instance = history.instance()
    # the data assets through the last date first: when D is trained, the partitions of D + 1 already exist,
    # so a refit that read them would differ from the truncated world's (test_refit_publication.py)
    backfill(defs, instance, LAST + timedelta(days=1), last, 40, with_summary=False, job="symbol_day_data_job")
    store = LocalObjectStore(settings.store_root)
    outcomes = daily_loop(defs, instance, store, PUBLISHED_DATES[0], last)
    instance.dispose()
    return Published(history, data, tuple(outcomes))


def copy_published(golden: Published, root: Path) -> Published:
    return Published(copy_history(golden.history, root), golden.data, golden.outcomes)
