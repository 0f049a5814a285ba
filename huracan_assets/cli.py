"""``huracan``: demo, backfill and (later) the replay exchange and the bot.

Exit codes: 0 every symbol-day done or skipped with a reason; 1 nothing could be done;
2 an infrastructure error (a run failed, a store or database was unreachable, bad arguments).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from contextlib import contextmanager
from datetime import date, timedelta
from functools import partial
from pathlib import Path

LOCAL_INSTANCE_YAML = """\
# Dagster instance of the embedded default (SQLite storage under this folder).
telemetry:
  enabled: false
nux:
  enabled: false
"""


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _prepare_env(settings) -> None:
    """Environment for an in-process Dagster on ``settings.home`` (set before Dagster is imported): the instance
    and the event-log tuning of ``export_runtime_env`` (``execution.event_batch_size``), unless already set."""
    from huracan_assets.settings import export_runtime_env

    home = settings.home
    os.environ["HURACAN_HOME"] = str(home)
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(LOCAL_INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    for name, value in export_runtime_env(settings).items():
        if name != "DAGSTER_HOME":
            os.environ.setdefault(name, value)
    # LightGBM/OpenMP threads sleep instead of spinning between parallel regions: spinning threads starve
    # each other on a small, busy machine (measured 4-30 s for a 2.7 s fit)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", type=Path, help="candle folder DIR/<timeframe>/<BASE>_<QUOTE>.parquet (default: bundled sample)"
    )
    parser.add_argument("--timeframe", default=None, help="bar size, e.g. 1h, 15m, 5m (default: config)")
    parser.add_argument(
        "--symbols", default=None, help="comma-separated symbols, e.g. BTCUSDT,ETHUSDT (default: ranked universe)"
    )
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="home of the embedded store, registry and Dagster instance (default: $HURACAN_HOME, else ~/.huracan)",
    )
    parser.add_argument("--training-days", type=int, default=None, help="training window W in days (default: config)")
    parser.add_argument("--shadow-days", type=int, default=None, help="shadow window S in days (default: config)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="steps at once with Dagster's multiprocess executor (training in as many shards; threads per worker: "
        "cores / workers); 1: every step in this process (default: config execution.workers)",
    )


EXIT_CODES = """exit codes: 0 every symbol-day done or skipped with a reason; 1 nothing could be done;
2 an infrastructure error (a run failed, a store or database unreachable, bad arguments); 3 some symbol-days failed.
The home (--home, else $HURACAN_HOME, else ~/.huracan) holds the store, the SQLite registry and the Dagster
instance; delete it to start again."""


class _Defaults(argparse.HelpFormatter):
    """Shows an option's default unless its help already says it (or there is none to show)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" not in text and action.default not in (None, False, argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("huracan-engine")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without an install
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="huracan", description="Huracan Engine command line", epilog=EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"huracan {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="run the daily loop on the embedded default and print a summary",
        description="Fetch the history the windows need, then run the daily loop (data, training, shadow trading, "
        "promotion, summary) for each date, on the bundled sample unless --data says otherwise.",
        epilog=EXIT_CODES,
        formatter_class=_Defaults,
    )
    _common(demo)
    demo.add_argument("--start", type=_date, default=date(2024, 8, 6), help="first date D (inclusive, UTC)")
    demo.add_argument("--end", type=_date, default=date(2024, 8, 9), help="last date D (inclusive, UTC)")
    demo.add_argument("--serve", action="store_true", help="then start the model service on the demo's home")
    demo.add_argument("--port", type=int, default=None, help="the service's port (default: serve.port)")

    srv = sub.add_parser("serve", help="serve the champions to the live side (FastAPI; tokens from the environment)")
    srv.add_argument("--home", type=Path, default=None, help="home of the store and registry (default: config)")
    srv.add_argument("--host", default=None, help="interface to listen on (default: serve.host)")
    srv.add_argument("--port", type=int, default=None, help="port (default: serve.port)")

    mx = sub.add_parser("metrics", help="export the Engine's metrics for Prometheus (registry, store, Dagster runs)")
    mx.add_argument("--home", type=Path, default=None, help="home of the store and registry (default: config)")
    mx.add_argument("--host", default=None, help="interface to listen on (default: metrics.host)")
    mx.add_argument("--port", type=int, default=None, help="port (default: metrics.port)")

    ch = sub.add_parser("champion", help="list the champions, or roll a coin back to an earlier one")
    ch_sub = ch.add_subparsers(dest="action", required=True)
    ch_list = ch_sub.add_parser("list", help="every coin's current champion pointer")
    ch_list.add_argument("--home", type=Path, default=None)
    rb = ch_sub.add_parser("rollback", help="re-point a coin at an earlier champion (a new history entry)")
    rb.add_argument("symbol", help="the coin, e.g. BTCUSDT")
    rb.add_argument("--to", required=True, help="an earlier champion: its model id, or a date (the champion then)")
    rb.add_argument("--reason", required=True, help="why (kept in the pointer and the promotions table)")
    rb.add_argument("--as-of", type=_date, default=None, help="default: the last date the graph decided the coin")
    rb.add_argument("--home", type=Path, default=None)

    rs = sub.add_parser("replay-server", help="serve a candle folder as a local Binance spot exchange for ccxt")
    rs.add_argument("--data", type=Path, required=True, help="folder DIR/<timeframe>/<BASE>_<QUOTE>.parquet")
    rs.add_argument("--port", type=int, default=8765)
    rs.add_argument("--host", default="127.0.0.1")
    rs.add_argument("--now", default=None, help="simulated now (epoch ms or ISO 8601); default: after the last bar")
    rs.add_argument("--faults", default=None, help="faults to inject: a JSON list, or @file.json (see README)")

    bot = sub.add_parser("bot", help="run the Telegram control bot (token from $HURACAN_TELEGRAM_TOKEN)")
    bot.add_argument(
        "--home", type=Path, default=None, help="home of the embedded store, registry and Dagster instance"
    )
    bot.add_argument("--base-url", default=None, help="a Bot API server other than api.telegram.org")

    km = sub.add_parser(
        "k8s-manifest",
        help="print the Kubernetes Jobs dagster-k8s builds for an asset's steps (no cluster needed)",
        description="Each step of ASSET as the k8s executor (execution.executor: k8s) would submit it: the image, "
        "namespace, secrets and requests of the kubernetes settings, and for a training step that wants a GPU, "
        "its nvidia.com/gpu limit, node selector and tolerations. YAML, one document per step.",
    )
    km.add_argument("asset", help="an asset of the daily graph, e.g. challenger_model or features")
    km.add_argument("--gpu", action="store_true", help="as if models.gpu_request were set")

    bf = sub.add_parser("backfill", help="materialize a date range in bounded chunks of dates")
    _common(bf)
    bf.add_argument("--start", type=_date, required=True)
    bf.add_argument("--end", type=_date, required=True)
    bf.add_argument("--chunk-days", type=int, default=None, help="dates per ranged run (default: config)")
    bf.add_argument("--data-only", action="store_true", help="candles through engine signals; no model training")
    return parser


def _settings(args):
    from huracan_assets.settings import load_settings

    overrides = {"timeframe": args.timeframe, "data_dir": args.data, "symbols": args.symbols}
    if args.home is not None:
        overrides["home"] = str(args.home.expanduser().resolve())
    settings = load_settings(**overrides)
    windows = {k: v for k, v in (("training_days", args.training_days), ("shadow_days", args.shadow_days)) if v}
    if windows:
        settings = settings.model_copy(
            update={"windows": settings.windows.model_validate({**settings.windows.model_dump(), **windows})}
        )
    workers = getattr(args, "workers", None)
    if workers is not None:
        if workers < 1:
            raise SystemExit("error: --workers must be >= 1")
        execution = {"executor": "multiprocess" if workers > 1 else "in_process", "workers": workers}
        settings = settings.model_copy(
            update={"execution": settings.execution.model_validate({**settings.execution.model_dump(), **execution})}
        )
    return settings


def _print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def cmd_demo(args) -> int:
    settings = _settings(args)
    if args.end < args.start:
        print("error: --end is before --start", file=sys.stderr)
        return 2
    if args.serve and not os.environ.get(settings.serve.read_token_env):
        print(f"error: --serve needs a read token in ${settings.serve.read_token_env}", file=sys.stderr)
        return 2
    code = _demo(settings, args)
    if args.serve and code in (0, 3):
        return _serve(settings, settings.serve.host, args.port or settings.serve.port)
    return code


def _demo(settings, args) -> int:
    _prepare_env(settings)

    from huracan_assets.core.market_data.candles import ms_to_date
    from huracan_assets.exchange.files import FilesExchange

    folder = FilesExchange(settings.data_dir, settings.timeframe, settings.universe.quote)
    coverage = folder.coverage()
    if coverage is None:
        print(f"error: no {settings.universe.quote} candles in {folder.folder}", file=sys.stderr)
        return 2
    data_first, data_last = ms_to_date(coverage[0]), ms_to_date(coverage[1])
    history_first = max(args.start - timedelta(days=demo_history_days(settings)), data_first)
    print(
        f"Huracan demo · data {settings.data_dir} ({data_first}..{data_last}, {len(folder.markets)} markets, "
        f"{settings.timeframe})"
    )
    with replayed(settings, min(history_first, args.start), max(data_last, args.end)) as (settings, replay):
        print(f"home {settings.home} · replay exchange {replay.url} · dates {args.start}..{args.end}")
        firsts = {s: ms_to_date(ms) for s, ms in folder.first_bars().items()}
        return _run_demo(settings, args.start, args.end, history_first, clock=lambda d: replay.set_now(after_day_ms(d)),
                         first_days=firsts)  # fmt: skip


@contextmanager
def replayed(settings, first, last):
    """``(settings, replay)``: a replay exchange server of the settings' data folder, and the settings pointed at
    it (production's code path: the stock ccxt Binance client), with the partitions covering ``first..last``."""
    from huracan_assets.exchange.replay import running_replay_server

    with running_replay_server(settings.data_dir) as replay:
        yield (
            settings.model_copy(
                update={
                    "partitions": settings.partitions.model_copy(update={"start_date": first, "end_date": last}),
                    "exchange": settings.exchange.model_copy(
                        update={"kind": "ccxt", "exchange_id": "binance", "base_url": replay.url, "rate_limit_ms": 1}
                    ),
                }
            ),
            replay,
        )


def after_day_ms(day) -> int:
    """02:00 UTC of the day after ``day``: when the schedule runs D, all of D's bars are in."""
    from huracan_assets.core.market_data.candles import day_bounds_ms

    return day_bounds_ms(day)[1] + 2 * 3_600_000


def demo_history_days(settings) -> int:
    """Days before --start the loop needs: training, embargo and shadow windows, plus the largest warm-up."""
    from huracan_assets.defs.derived import history_days_needed

    w = settings.windows
    return w.training_days + w.embargo_days + w.shadow_days + max(w.warmup_days, history_days_needed(settings))


def _run_demo(settings, start, end, history_first, clock, first_days=None) -> int:
    from dagster import DagsterInstance
    from tqdm import tqdm

    from huracan_assets.runner import backfill, daily_loop, definitions_for
    from huracan_assets.storage.object_store import LocalObjectStore

    defs = definitions_for(settings)
    instance = DagsterInstance.get()
    store = LocalObjectStore(settings.store_root, prefix=settings.object_store.prefix)
    started = time.monotonic()
    if history_first < start:
        last_hist = start - timedelta(days=1)
        print(f"history {history_first}..{last_hist} (training, shadow and warm-up windows)")
        with tqdm(total=(last_hist - history_first).days + 1, desc="history", unit="day", file=sys.stderr) as bar:
            backfill(
                defs,
                instance,
                history_first,
                last_hist,
                settings.execution.backfill_chunk_days,
                with_summary=False,
                progress=lambda lo, hi, _s: bar.update((hi - lo).days + 1),
                clock=clock,
                job="symbol_day_data_job",  # history feeds the windows; models are trained in the daily loop
            )
    with tqdm(total=(end - start).days + 1, desc="daily loop", unit="date", file=sys.stderr) as bar:

        def _progress(outcome) -> None:
            bar.update(1)
            s = outcome.summary
            tqdm.write(
                f"  {outcome.day}: {s.get('symbols_done', 0)} done, {len(s.get('skipped', {}))} skipped, "
                f"{len(s.get('failed', {}))} failed ({outcome.seconds:.1f}s)",
                file=sys.stderr,
            )

        outcomes = daily_loop(defs, instance, store, start, end, progress=_progress, clock=clock)
    if hasattr(defs, "close"):
        defs.close()
    return _report(settings, outcomes, time.monotonic() - started, first_days or {})


def _report(settings, outcomes, seconds: float, first_days: dict | None = None) -> int:
    """The demo's tables. ``first_days``: each coin of the data folder and its first day of bars, so a coin not
    listed yet on a date is named with why (the exchange does not list it yet, so no asset sees it)."""
    rows = []
    named = settings.universe.symbols
    for o in outcomes:
        done = o.summary.get("done", [])
        if done:
            rows.append([o.day.isoformat(), f"{len(done)} coins", "done", ", ".join(done)])
        for sym, first in sorted((first_days or {}).items()):
            if first > o.day and (not named or sym in named):
                rows.append([o.day.isoformat(), sym, "not listed", f"its first bar is on {first} (later)"])
        for sym, why in sorted(o.summary.get("skipped", {}).items()):
            rows.append([o.day.isoformat(), sym, "skipped", why])
        for sym, why in sorted(o.summary.get("failed", {}).items()):
            rows.append([o.day.isoformat(), sym, "FAILED", why])
    print()
    _print_table(rows, ["date", "symbol", "status", "coins / reason"])
    _print_models(settings, [o.day for o in outcomes])
    from huracan_assets.core.reporting.summary import summary_markdown

    for o in outcomes:
        if "trades" in o.summary:
            print()
            print(summary_markdown(o.summary).split("\n\n**")[0])
    _print_presets(outcomes)
    done = sum(o.summary.get("symbols_done", 0) for o in outcomes)
    skipped = sum(len(o.summary.get("skipped", {})) for o in outcomes)
    failed = sum(len(o.summary.get("failed", {})) for o in outcomes)
    print(f"\n{done} symbol-days done, {skipped} skipped, {failed} failed in {seconds:.1f}s")
    print(f"store: {settings.store_root}   summaries: {settings.store_root / 'summaries' / 'daily'}")
    print(f"UI: HURACAN_HOME={settings.home} make ui   (then open http://localhost:3000)")
    if failed:
        return 1 if done == 0 else 3
    return 0 if done else 1


def _print_presets(outcomes) -> None:
    """The preset each coin would use tomorrow per strategy, learned from its replayed shadow trades (the last date
    that has them; ``param_posteriors``)."""
    last = next((o for o in reversed(outcomes) if o.summary.get("presets")), None)
    if last is None:
        return
    rows = []
    for symbol, plan in sorted(last.summary["presets"].items()):
        for strategy, item in sorted(plan.items()):
            mean, sd = item.get("mean_bps"), item.get("sd_bps")
            rows.append([
                symbol,
                strategy,
                item["preset"] + (" (kill switch)" if item.get("killed") else ""),
                item["in_force_today"],
                item["reason"],
                "-" if mean is None else f"{mean:+.1f} ± {sd:.1f}",
                probability(item.get("p_beats")),
                str(item.get("trades_today", "-")),
            ])  # fmt: skip
    tomorrow = last.day + timedelta(days=1)
    print(f"\npresets for {tomorrow} (parameter controller, learned from each preset's replayed shadow trades)")
    _print_table(rows, ["symbol", "strategy", "preset", "today", "reason", "posterior bps/trade", "P(beats)",
                        "trades today"])  # fmt: skip
    print(
        "reason: exploit (best posterior mean), explore (a Thompson draw), hysteresis-hold (a better preset is not "
        "yet sure enough), daily-limit, kill-switch; P(beats): the posterior probability that the bandit's "
        "proposal beats today's preset by the margin, when a change was weighed"
    )


def probability(value: float | None) -> str:
    """A probability for a table: 3 decimals, and "<0.001" / ">0.999" rather than a rounded 0 or 1."""
    if value is None:
        return "-"
    if value < 0.001:
        return "<0.001"
    return ">0.999" if value > 0.999 else f"{value:.3f}"


def _print_models(settings, days) -> None:
    """The challengers of the demo's dates: out-of-sample walk-forward numbers from the registry."""
    if settings.registry.kind != "sqlite" or not days:
        return
    from huracan_assets.registry.client import Registry

    reg = Registry(f"sqlite:///{settings.sqlite_path}")
    rows = reg.select("model_metrics", window="wf_overall", as_of=list(days), timeframe=settings.timeframe)
    if not rows:
        return

    def num(value, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    table = [
        [
            r["as_of"].isoformat(),
            r["symbol"],
            num(r["auc"], ".3f"),
            num(r["net_bps"], "+.1f"),
            str(r["n_trades"] if r["n_trades"] is not None else "-"),
            probability(r["dsr"]),
            "pass" if r["canaries_passed"] else "FAIL",
            r["model_id"],
        ]
        for r in sorted(rows, key=lambda r: (r["as_of"], r["symbol"]))
    ]
    print("\nchallengers (walk-forward, out of sample, net of costs)")
    _print_table(table, ["date", "symbol", "AUC", "net bps/trade", "trades", "DSR", "canaries", "bundle"])
    print(
        "DSR: the deflated Sharpe ratio, the probability that the true Sharpe is above zero given the strategy "
        "variants tried; near 0 when the walk-forward net is negative"
    )


def cmd_replay_server(args) -> int:
    from huracan_assets.exchange import replay

    argv = [str(args.data), "--port", str(args.port), "--host", args.host]
    argv += ["--now", args.now] if args.now else []
    argv += ["--faults", args.faults] if args.faults else []
    print(f"replaying {args.data} on http://{args.host}:{args.port} (Binance spot REST); Ctrl-C stops it")
    replay.main(argv)
    return 0


def cmd_backfill(args) -> int:
    settings = _settings(args)
    if settings.env == "local":
        _prepare_env(settings)
    from dagster import DagsterInstance
    from tqdm import tqdm

    from huracan_assets.runner import backfill, definitions_for

    defs = definitions_for(settings)
    instance = DagsterInstance.get()
    chunk = args.chunk_days or settings.execution.backfill_chunk_days
    with tqdm(total=(args.end - args.start).days + 1, desc="backfill", unit="day", file=sys.stderr) as bar:
        backfill(
            defs,
            instance,
            args.start,
            args.end,
            chunk,
            progress=lambda lo, hi, _s: bar.update((hi - lo).days + 1),
            job="symbol_day_data_job" if args.data_only else "symbol_day_job",
        )
    if hasattr(defs, "close"):
        defs.close()
    print(f"backfilled {args.start}..{args.end} in chunks of {chunk} dates")
    return 0


def cmd_bot(args) -> int:
    from huracan_assets.core.market_data.universe import UniverseRules
    from huracan_assets.defs.build import build_resources
    from huracan_assets.settings import load_settings
    from huracan_assets.specs import recipe_for
    from huracan_assets.telegram.bot import RedactToken, redact, run_bot
    from huracan_assets.telegram.control import EngineControl

    settings = load_settings(home=str(args.home.expanduser().resolve()) if args.home else None)
    tg = settings.telegram
    token = os.environ.get(tg.token_env)
    if not token:
        print(f"error: set the bot token in ${tg.token_env}", file=sys.stderr)
        return 2
    if not tg.allowed_chat_ids:
        print("warning: telegram.allowed_chat_ids is empty: every command will be refused", file=sys.stderr)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines hold the token in the URL
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactToken(token))
    resources = build_resources(settings)
    store = resources["object_store"].process_config_and_initialize().get_store()
    u = settings.universe
    rules = UniverseRules(u.max_symbols, u.min_history_days, u.min_quote_volume, u.max_spread_bps)

    def registry():  # built on the first confirmed /rollback, not at start
        return resources["registry"].process_config_and_initialize().get_registry()

    control = EngineControl(store, frozenset(tg.allowed_chat_ids), tg.max_trade_symbols, rules=rules,
                            allowed_user_ids=frozenset(tg.allowed_user_ids),
                            admin_user_ids=frozenset(tg.admin_user_ids), registry_factory=registry,
                            recipe_hash=recipe_for(settings).hash, timeframe=settings.timeframe)  # fmt: skip
    print(f"Huracan bot · store {store.describe()} · allowed chats {list(tg.allowed_chat_ids)} · "
          f"rollback admins {list(tg.admin_user_ids) or 'none'} · Ctrl-C stops it")  # fmt: skip
    try:
        run_bot(token, control, args.base_url or tg.base_url)
    except Exception as exc:  # e.g. a rejected token: Telegram's message quotes it
        print(f"error ({type(exc).__name__}): {redact(str(exc), token)}", file=sys.stderr)
        return 2
    return 0


def _home_settings(args):
    from huracan_assets.settings import load_settings

    return load_settings(home=str(args.home.expanduser().resolve()) if args.home else None)


def _engine_io(settings):
    """The Engine's resources of ``settings`` (built as the Dagster definitions build them) and its store."""
    from huracan_assets.defs.build import build_resources

    resources = build_resources(settings)
    return resources, resources["object_store"].process_config_and_initialize().get_store()


def _dagster_instance(settings):
    """The graph's Dagster instance: ``$DAGSTER_HOME`` (the deployment), else the home's own (None: no runs)."""
    from dagster import DagsterInstance

    if os.environ.get("DAGSTER_HOME"):
        return DagsterInstance.get()
    local = settings.home / "dagster"
    return DagsterInstance.from_config(str(local)) if (local / "dagster.yaml").exists() else None


def cmd_metrics(args) -> int:
    """The exporter: the Engine's metrics (``metrics.py``) on ``/metrics``, read at each scrape."""
    import threading

    from prometheus_client import CollectorRegistry, start_http_server

    from huracan_assets.metrics import EngineCollector

    settings = _home_settings(args)
    resources, store = _engine_io(settings)
    host, port = args.host or settings.metrics.host, args.port or settings.metrics.port
    registry = CollectorRegistry()
    registry.register(EngineCollector(
        store, lambda: resources["registry"].process_config_and_initialize().get_registry(), days=settings.metrics.days,
        instance_factory=partial(_dagster_instance, settings)))  # fmt: skip
    server, thread = start_http_server(port, addr=host, registry=registry)
    print(f"Huracan metrics · http://{host}:{port}/metrics · store {store.describe()}", flush=True)
    try:
        threading.Event().wait()
    finally:
        server.shutdown()
        thread.join(timeout=5)
    return 0


def _serve(settings, host: str, port: int) -> int:
    import uvicorn

    from huracan_assets.exchange.files import ExchangeError
    from huracan_assets.serve.app import create_app
    from huracan_assets.serve.build import build_service

    cfg = settings.serve
    read, admin = os.environ.get(cfg.read_token_env), os.environ.get(cfg.admin_token_env)
    if not read:
        print(f"error: set the service's read token in ${cfg.read_token_env}", file=sys.stderr)
        return 2
    resources, store = _engine_io(settings)
    exchange = None
    if cfg.fetch_missing_days:
        exchange = resources["exchange"].process_config_and_initialize().client()
        try:
            exchange.refresh()
        except ExchangeError as exc:
            print(f"warning: the exchange is not answering ({exc}); its days will be refused", file=sys.stderr)

    def registry():
        return resources["registry"].process_config_and_initialize().get_registry()

    service = build_service(settings, store, read_tokens=frozenset({read}),
                            admin_tokens=frozenset({admin}) if admin else frozenset(), exchange=exchange,
                            registry_factory=registry,
                            instance_factory=partial(_dagster_instance, settings))  # fmt: skip
    admin_state = "on" if admin else f"off (no ${cfg.admin_token_env})"
    print(f"Huracan serve · http://{host}:{port} · store {store.describe()} · "
          f"{len(service.models.champions())} champions · admin {admin_state}")  # fmt: skip
    uvicorn.run(create_app(service), host=host, port=port, log_level="info")
    return 0


def cmd_serve(args) -> int:
    settings = _home_settings(args)
    return _serve(settings, args.host or settings.serve.host, args.port or settings.serve.port)


def cmd_k8s_manifest(args) -> int:
    import yaml

    from huracan_assets.k8s import requests_gpu, step_jobs
    from huracan_assets.settings import load_settings

    settings = load_settings()
    updates = {"execution": settings.execution.model_copy(update={"executor": "k8s"})}
    if args.gpu:
        updates["models"] = settings.models.model_copy(update={"gpu_request": True})
    settings = settings.model_copy(update=updates)
    try:
        jobs = step_jobs(settings, args.asset)
    except KeyError:
        print(f"error: no asset {args.asset!r} in the daily graph", file=sys.stderr)
        return 2
    for i, (step, manifest) in enumerate(jobs):
        gpu = "requests nvidia.com/gpu" if requests_gpu(manifest) else "no GPU"
        print(("---\n" if i else "") + f"# step {step}: {gpu}")
        print(yaml.safe_dump(manifest, sort_keys=False).rstrip())
    return 0


def cmd_champion(args) -> int:
    from huracan_assets.publishing.champion import PointerError, champion_symbols, read_pointer
    from huracan_assets.publishing.rollback import perform_rollback
    from huracan_assets.specs import recipe_for

    settings = _home_settings(args)
    resources, store = _engine_io(settings)
    if args.action == "list":
        rows = []
        for symbol in champion_symbols(store):
            try:
                p = read_pointer(store, symbol)
                rows.append([symbol, p.model_id, p.as_of.isoformat(), p.kind, p.reason[:60]])
            except PointerError as exc:
                rows.append([symbol, "INVALID", "-", "-", str(exc)[:60]])
        _print_table(rows, ["symbol", "champion", "as of", "kind", "reason"])
        return 0
    registry = resources["registry"].process_config_and_initialize().get_registry()
    pointer, wrote = perform_rollback(
        store, registry, args.symbol, args.to, args.reason, recipe_hash=recipe_for(settings).hash,
        timeframe=settings.timeframe, as_of=args.as_of, requested_by="cli",
    )  # fmt: skip
    verb = "rolled back" if wrote else "already rolled back"
    print(f"{args.symbol} {verb} to {pointer.model_id} as of {pointer.as_of} "
          f"(from {pointer.snapshot.get('rolled_back_from')}): {pointer.reason}")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    handlers = {"demo": cmd_demo, "backfill": cmd_backfill, "replay-server": cmd_replay_server, "bot": cmd_bot,
                "serve": cmd_serve, "champion": cmd_champion, "metrics": cmd_metrics,
                "k8s-manifest": cmd_k8s_manifest}  # fmt: skip
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # infrastructure errors: a clear message and a non-zero code
        from huracan_assets.publishing.champion import NoChampion
        from huracan_assets.publishing.rollback import RollbackRefused
        from huracan_assets.runner import RunFailed

        if isinstance(exc, RollbackRefused | NoChampion):
            print(f"refused: {exc}", file=sys.stderr)
            return 1

        kind = "run failed" if isinstance(exc, RunFailed) else type(exc).__name__
        print(f"error ({kind}): {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
