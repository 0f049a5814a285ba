"""Typed settings from ``config/*.yaml`` plus one environment switch.

This is the only module of the package that reads the process environment. Everything it reads:

- ``HURACAN_ENV``        ``local`` (default, the embedded setup) or ``prod``
- ``HURACAN_HOME``       home directory of the embedded setup (object store, SQLite, Dagster home)
- ``HURACAN_DATA_DIR``   a candle folder ``DIR/<timeframe>/<BASE>_<QUOTE>.parquet`` for the files exchange
- ``HURACAN_TIMEFRAME``  overrides ``timeframe``
- ``HURACAN_SYMBOLS``    comma-separated explicit symbols (bypass the liquidity ranking)
- ``HURACAN_CONFIG_DIR`` where the YAML files live (default: the repository's ``config/``, else the wheel's copy)

Secrets are not read here. Fields named ``*_env`` hold the *name* of an environment variable, which
the Dagster wiring turns into an ``EnvVar`` so the value is resolved only at run time and never
logged or stored.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from huracan_assets.core.market_data.candles import TIMEFRAME_MINUTES

PACKAGE_DIR = Path(__file__).resolve().parent
SAMPLE_DATA_DIR = PACKAGE_DIR / "sample_data" / "ohlcv"
_REPO_CONFIG_DIR = PACKAGE_DIR.parent / "config"
_PACKAGED_CONFIG_DIR = PACKAGE_DIR / "config"


class _Strict(BaseModel):
    # unknown keys are refused, and so are NaN and infinities ("1e999" or .inf would pass any bound)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_empty_path(cls, value: object, info) -> object:
        """An empty string is no path: pydantic would read it as the current directory."""
        field = cls.model_fields.get(info.field_name)
        if value == "" and field is not None and "Path" in str(field.annotation):
            raise ValueError("an empty string is not a path (leave the setting out, or null, for its default)")
        return value


class PartitionSettings(_Strict):
    start_date: date
    # The last date of the ``date`` dimension (inclusive). None: yesterday, moving with the clock (production).
    # "data": the last day of the files exchange's candles, resolved when the definitions load (the local
    # default: the catalog spans the data it can run, not every day since start_date).
    end_date: date | Literal["data"] | None = None

    def resolved(self, last_data_day: Callable[[], date | None]) -> PartitionSettings:
        """A concrete end date ("data" becomes ``last_data_day()``; None without candles leaves it open)."""
        if self.end_date != "data":
            return self
        return self.model_copy(update={"end_date": last_data_day()})


class UniverseSettings(_Strict):
    quote: str = "USDT"
    max_symbols: int = Field(400, ge=1)
    rank_lookback_days: int = Field(7, ge=1)
    min_history_days: float = Field(1, ge=0)
    min_quote_volume: float = Field(0.0, ge=0)
    max_spread_bps: float = Field(float("inf"), gt=0, allow_inf_nan=True)  # inf (the default): no spread filter
    reference_symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")  # fetched every day (reference_candles)
    # the market series the features (relative strength, beta) and the engines read: one of reference_symbols
    reference_symbol: str = "BTCUSDT"
    # explicit symbols bypass the ranking filters (``--symbols``, the Telegram selector)
    symbols: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _reference_is_fetched(self) -> UniverseSettings:
        if self.reference_symbol not in self.reference_symbols:
            raise ValueError(
                f"reference_symbol {self.reference_symbol!r} must be one of reference_symbols "
                f"{list(self.reference_symbols)} (the coins reference_candles fetches every day)"
            )
        return self


class CandleQualitySettings(_Strict):
    """Cleaning policy and the thresholds of the candle checks (see core/market_data/cleaning.py)."""

    fill_gaps: Literal["none", "ffill_flat"] = "none"
    max_gap_fill_bars: int = Field(3, ge=0)
    extreme_move_sigma: float = Field(10.0, gt=0)
    min_completeness: float = Field(0.5, ge=0, le=1)  # below: the key fails and is held out downstream
    warn_completeness: float = Field(0.99, ge=0, le=1)  # below: candles_complete warns
    max_lag_bars: int = Field(1, ge=0)  # freshness against the partition's end
    # thin book: candles_liquid applies these to the whole of D; the ILLIQUID regime per bar to its trailing day
    max_spread_bps: float = Field(300.0, gt=0)  # Corwin-Schultz estimate (coarse at >= 1h)
    max_zero_volume_share: float = Field(0.25, ge=0, le=1)
    min_day_quote_volume: float = Field(2_000_000.0, ge=0)  # traded value, sum(close * volume)


class FeatureSettings(_Strict):
    recipe: Literal["default"] = "default"
    # pin of the recipe hash: when set, the feature_recipe_hash_matches check fails on any other recipe
    recipe_hash: str | None = None
    canary_samples: int = Field(8, ge=0)  # timestamps per run re-checked with the future cut off


class LabelSettings(_Strict):
    pt_mult: float = Field(2.0, gt=0)
    sl_mult: float = Field(2.0, gt=0)
    # vertical barrier; at most one day, so labels[D] (the events of D-1) are resolved by the end of D
    horizon_minutes: int = Field(1440, ge=1, le=1440)
    vol_window: int = Field(48, ge=2)
    side: Literal[-1, 0, 1] = 0
    cost_bps: float = Field(0.0, ge=0)
    min_coverage: float = Field(0.9, ge=0, le=1)  # resolved events / events, per run
    max_class_share: float = Field(0.9, gt=0, le=1)  # label balance guard
    # execution (core/execution.py), read by the labels, the walk-forward's costs and the shadow trader alike, so
    # the three can never disagree: the signal of bar t fills at the open of bar t + entry_lag_bars (0: at t's
    # close), and a stop pays stop_slippage_half_spreads x the exit bar's half-spread + stop_slippage_bps
    entry_lag_bars: int = Field(1, ge=0)
    stop_slippage_half_spreads: float = Field(1.0, ge=0)
    stop_slippage_bps: float = Field(2.0, ge=0)


class RegimeSettings(_Strict):
    method: Literal["rules", "hmm"] = "rules"
    hmm_states: int = Field(3, ge=2)
    hmm_fit_days: int = Field(30, ge=2)  # days before D the HMM is fitted on
    hmm_seed: int = 7
    max_single_regime_share: float = Field(0.95, gt=0, le=1)


class EngineSettings(_Strict):
    """The signal engines (core/engines): which run, their parameters, and their calibration."""

    enabled: tuple[str, ...] | None = None  # None: every engine of the library
    params: dict[str, dict[str, float | int | str | bool]] = {}
    calibration_days: int = Field(30, ge=2)  # labels before D the edges are fitted on
    min_samples: int = Field(20, ge=2)  # fewer past signals: edge 0, confidence 0
    shrinkage: float = Field(10.0, ge=0)  # edge = mean x n_eff / (n_eff + shrinkage)
    clip_bps: float = Field(2000.0, gt=0)  # outcomes are winsorized here


class CostSettings(_Strict):
    """The cost model (core/costs.py): fees of the venue, spread and slippage per bar, net-edge floor; and the
    ``spreads`` asset (one spread estimate per coin-day from the ``spread_timeframe`` bars)."""

    venue: str = "binance_spot"
    maker_bps: float | None = None  # overrides of the venue's schedule
    taker_bps: float | None = None
    spread_estimator: Literal["corwin_schultz", "abdi_ranaldo", "roll"] = "abdi_ranaldo"
    spread_timeframe: str = "5m"  # the spreads asset's bars; the training bars when the exchange lacks them
    spread_days: int = Field(7, ge=1)  # a bar pays the median spread of this many days before its day
    spread_window: int = Field(24, ge=2)  # bars: the per-bar estimate, used only without daily spreads
    min_spread_bps: float = Field(1.0, ge=0)  # floor (with one tick, from the daily spreads)
    max_spread_bps: float = Field(500.0, gt=0)
    slippage_vol_coef: float = Field(0.0, ge=0)  # uncalibrated extra slippage in bar volatilities: off
    impact_y: float = Field(1.0, ge=0)  # Y of the square-root impact law (core/costs.py cites the source)
    vol_window: int = Field(24, ge=2)
    funding_bps_per_8h: float = 0.0  # perpetuals only; spot pays no funding
    net_edge_floor_bps: float = 5.0
    order_notional: float = Field(1000.0, ge=0)  # quote currency per trade, for slippage

    @field_validator("spread_timeframe")
    @classmethod
    def _known_timeframe(cls, value: str) -> str:
        if value not in TIMEFRAME_MINUTES:
            raise ValueError(f"spread_timeframe must be one of {sorted(TIMEFRAME_MINUTES)}, got {value!r}")
        return value

    def model_config_mapping(self) -> dict:
        return self.model_dump(exclude={"order_notional", "spread_timeframe"}, exclude_none=True)


class GateSettings(_Strict):
    window_days: int = Field(30, ge=1)  # trailing days of the leaderboard
    refresh_days: int = Field(7, ge=1)  # cadence of the gate table (weekly)
    min_samples: int = Field(20, ge=1)  # fewer scored signals in a regime: the engine is off there
    soft_scale_bps: float = Field(20.0, gt=0)  # soft gate = min(1, net edge / scale)


class MetaSettings(_Strict):
    alpha: float = Field(0.1, gt=0, le=1)
    min_weight: float = Field(0.005, ge=0, le=1)
    max_weight: float = Field(0.25, gt=0, le=1)
    # |combined score| needed to act, per regime (absent or null: never act in that regime)
    thresholds: dict[str, float | None] = {"TREND": 0.10, "RANGE": 0.15, "PANIC": 0.25, "ILLIQUID": None}


class ModelSettings(_Strict):
    """The per-coin challenger model (core/models): kind, hyperparameters, seed and the guards of a fit."""

    kind: Literal["lightgbm", "torch_mlp"] = "lightgbm"
    params: dict[str, float | int | str | bool | list[int]] = {}
    seed: int = 7
    min_train_rows: int = Field(300, ge=10)  # fewer resolved events in the window: the coin is skipped
    timeout_seconds: float = Field(900.0, gt=0)  # per coin: walk-forward + final fit; past it the coin fails
    gpu_request: bool = False  # tag training runs so a Kubernetes run launcher requests a GPU
    # also fit the same spec and seed on [D+1-W, D+1) (through D) and publish that refit on promotion; the
    # decision still rests on the validated model, which the refit's metrics.json names
    publish_refit: bool = False


class ValidationSettings(_Strict):
    """Purged, embargoed walk-forward and its leakage canaries (core/validation)."""

    n_folds: int = Field(4, ge=2)
    scheme: Literal["expanding", "sliding"] = "expanding"
    min_train_fraction: float = Field(0.4, gt=0, lt=1)
    threshold: float = Field(0.05, ge=0, lt=0.5)  # trade when |p - 0.5| >= threshold
    dsr_trials: int = Field(30, ge=1)  # the deflated Sharpe's N: variants tried (promotion: per retest)
    shuffle_block_hours: int = Field(24, ge=1)  # block length of the shuffled-label canary
    canary_sigmas: float = Field(3.0, gt=0)
    leak_min_auc: float = Field(0.75, gt=0.5, le=1)
    leak_canary_folds: int = Field(1, ge=0)  # the injected-leak control on the last this many folds (0: all)
    # truncation canary: coins per date whose training frame is rebuilt from raw candles cut at the window's
    # end (0: every coin); a failure marks the date's models not promotable, and so does a canary that cannot run
    truncation_canary_coins: int = Field(2, ge=0)


class ShadowSettings(_Strict):
    """Paper trading of challenger and champion on the shadow window (core/shadow); the net-edge floor is
    ``costs.net_edge_floor_bps``, and the barriers, the entry latency and the stop slippage are ``labels``'s."""

    threshold: float = Field(0.05, ge=0, lt=0.5)  # model side when |p - 0.5| >= threshold
    max_spread_bps: float = Field(50.0, gt=0)  # no entry on a thinner book
    cooldown_bars: int = Field(2, ge=0)
    dedup_bars: int = Field(6, ge=0)
    respect_meta: bool = True  # no entry against the meta combiner
    risk_preset: Literal["conservative", "balanced", "aggressive"] = "balanced"


class PromotionSettings(_Strict):
    """Statistical gates of a challenger replacing the champion (core/promotion/gates.py)."""

    min_trades: int = Field(20, ge=2)
    margin_bps: float = 2.0  # net bps/trade over the champion's ...
    confidence: float = Field(0.90, ge=0.5, lt=1)  # ... at least this one-sided confidence in any retest (t test)
    min_dsr: float = Field(0.5, ge=0, le=1)  # deflated Sharpe, trials = validation.dsr_trials x retests
    max_drawdown: float = Field(0.25, gt=0, le=1)
    first_min_net_bps: float = 0.0  # absolute gate of the first champion (same test)
    kill_switch_drawdown: float = Field(0.35, gt=0, le=1)  # per coin: past it, no promotion for the coin
    global_kill_share: float = Field(0.5, gt=0, le=1)  # share of coins past the kill switch that stops all
    # multiple testing (core/promotion/multiplicity.py): retest k since a coin's last promotion is tested at
    # alpha x h / ((h + k - 1)(h + k)) (sum over all retests <= alpha), then BH at fdr_q across the day's coins
    alpha: float = Field(0.05, gt=0, lt=1)  # per coin: P(a false promotion before its next promotion) <= alpha
    spending_half_tests: int = Field(30, ge=1)  # h: half of alpha is spent over the first h retests
    fdr_q: float = Field(0.10, gt=0, le=1)  # Benjamini-Hochberg level across the coins decided on a day


class WindowSettings(_Strict):
    warmup_days: int = Field(3, ge=0)
    training_days: int = Field(90, ge=1)
    shadow_days: int = Field(14, ge=0)
    embargo_days: int = Field(1, ge=0)


class KubernetesSettings(_Strict):
    """Dagster's Kubernetes executor (``execution.executor: k8s``, dagster-k8s ``k8s_job_executor``): one pod per
    step, in the code location's image. Secrets reach the pods as environment variables from the Kubernetes
    Secrets named in ``env_secrets``, never through this file. A training step that wants a GPU (a torch model, or
    ``models.gpu_request``) asks for ``nvidia.com/gpu`` on the GPU nodes; at most ``gpu_steps`` of them run at once
    per run (tag concurrency on ``huracan/accelerator``). ``huracan k8s-manifest ASSET`` prints the Jobs."""

    image: str = "huracan-engine:latest"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    namespace: str = "huracan"
    service_account: str | None = None
    env_secrets: tuple[str, ...] = ("huracan-engine-secrets",)
    max_concurrent: int = Field(16, ge=1)  # pods at once per run
    gpu_steps: int = Field(2, ge=1)  # GPU training steps at once per run
    gpus_per_step: int = Field(1, ge=1)
    gpu_node_selector: dict[str, str] = {"nvidia.com/gpu.present": "true"}
    gpu_tolerations: tuple[dict[str, str], ...] = (
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    )
    step_cpu: str = "2"  # every step's requests
    step_memory: str = "8Gi"
    # the instance the step pods read (the official Helm chart's defaults)
    dagster_home: str = "/opt/dagster/dagster_home"
    instance_config_map: str = "dagster-instance"
    postgres_password_secret: str = "dagster-postgresql-secret"


class ExecutionSettings(_Strict):
    """How a run executes: Dagster's executor, its workers, the training shards and the threads per worker."""

    backfill_chunk_days: int = Field(30, ge=1)
    threads: int = Field(0, ge=0)  # per process; 0: the machine's cores shared out among the workers
    event_batch_size: int = Field(1000, ge=1)
    # in_process: every step in the run's process (tests, the CLI); multiprocess: Dagster's multiprocess executor,
    # at most ``workers`` steps at once, each in its own process
    # k8s: dagster-k8s's k8s_job_executor, one pod per step (the ``kubernetes`` settings)
    executor: Literal["in_process", "multiprocess", "k8s"] = "in_process"
    workers: int = Field(1, ge=1)
    training_shards: int = Field(0, ge=0)  # training steps per run (challenger_shard); 0: one per worker
    shard_retries: int = Field(1, ge=0)  # a training step lost to the infrastructure is run again this often
    run_timeout_seconds: int = Field(21600, ge=0)  # a date's symbol x day run fails past it (run monitoring); 0: none
    # each key's charts in its metadata (regimes, meta weights, shadow equity): for the last date of a ranged run
    # only (a backfill's earlier dates keep their numbers; a chart costs ~70 ms a key), or for every key
    key_charts: Literal["last_date", "all"] = "last_date"

    @property
    def cores(self) -> int:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return cores or 1

    @property
    def thread_budget(self) -> int:
        """Threads for one process's heavy work (LightGBM, torch): ``threads``, or the cores divided among the
        workers that can run at once, so workers x threads stays within the machine."""
        if self.threads:
            return min(self.threads, self.cores)
        workers = self.workers if self.executor == "multiprocess" else 1
        return max(1, self.cores // workers)


class ObjectStoreSettings(_Strict):
    kind: Literal["local", "s3"] = "local"
    root: str | None = None  # local only; defaults to <home>/store
    bucket: str | None = None
    prefix: str = ""
    region: str | None = None
    endpoint_url_env: str | None = None
    access_key_id_env: str | None = None
    secret_access_key_env: str | None = None


class RegistrySettings(_Strict):
    kind: Literal["sqlite", "postgres"] = "sqlite"
    url_env: str | None = None  # postgres: name of the env var holding the URL


class ExchangeSettings(_Strict):
    kind: Literal["files", "ccxt"] = "files"
    data_dir: str | None = None  # files only; defaults to the bundled sample
    exchange_id: str = "binance"
    base_url: str | None = None  # ccxt only: a local replay server instead of the live exchange
    page_limit: int = Field(1000, ge=1)
    attempts: int = Field(5, ge=1)
    retry_base_delay: float = Field(0.5, ge=0)
    rate_limit_ms: int | None = None  # None: ccxt's own default for the exchange
    api_key_env: str | None = None
    api_secret_env: str | None = None


class TelegramSettings(_Strict):
    """Control from Telegram (``huracan bot``) and the daily summary sent there. The token is a secret: it is
    read from the environment variable named by ``token_env``, never from a file."""

    notify: bool = False  # send each daily summary to notify_chat_ids
    token_env: str = "HURACAN_TELEGRAM_TOKEN"
    base_url: str | None = None  # a Bot API server other than api.telegram.org (a local fake in tests)
    allowed_chat_ids: tuple[int, ...] = ()  # chats whose commands are obeyed; others are refused
    allowed_user_ids: tuple[int, ...] = ()  # if set, only these people (in those chats) may command
    admin_user_ids: tuple[int, ...] = ()  # who may /rollback a champion (also needs an allowed chat); empty: nobody
    notify_chat_ids: tuple[int, ...] = ()
    alert_chat_ids: tuple[int, ...] = ()  # where the operator alerts go (alerts:); empty: no Telegram alerts
    max_trade_symbols: int = Field(400, ge=1)  # the largest N of /trade N


class AlertSettings(_Strict):
    """Operator alerts from the Dagster sensors (``defs/alerts.py``): to ``telegram.alert_chat_ids`` and to a
    webhook whose URL is in the environment variable ``webhook_url_env`` (a secret, never in a file)."""

    enabled: bool = True
    webhook_url_env: str | None = None  # e.g. HURACAN_ALERT_WEBHOOK_URL: a JSON POST per alert
    max_per_hour: int = Field(20, ge=1)  # more are held back and counted in the next alert
    fresh_by_hour_utc: int = Field(3, ge=0, le=23)  # no candles for D by this hour of D+1: a stale-data alert
    failing_dates: int = Field(3, ge=2)  # a coin failing this many dates in a row: an alert


class DagsterUiSettings(_Strict):
    webserver_url: str = "http://localhost:3000"  # the UI's address, for the links in alerts


class ServeSettings(_Strict):
    """``huracan serve``: the model service of the live side. The bearer tokens are secrets: they are read from
    the environment variables named here, never from a file; without a read token the service does not start."""

    host: str = "127.0.0.1"
    port: int = Field(8686, ge=1, le=65535)
    read_token_env: str = "HURACAN_SERVE_READ_TOKEN"  # reading: /champions, /model, /predict, /metrics
    admin_token_env: str = "HURACAN_SERVE_ADMIN_TOKEN"  # writing: rollback (unset: no admin endpoint works)
    reload_seconds: float = Field(5.0, ge=0)  # how stale a champion may be: latest.json is re-read after this
    presign_seconds: int = Field(900, ge=1, le=7 * 86400)  # lifetime of the bundle URLs of /model
    fetch_missing_days: bool = True  # candle days the graph has not stored come from the configured exchange
    cache_entries: int = Field(64, ge=1)  # (coin, day) input rows kept in memory
    # the Engine's metrics (huracan_assets/metrics.py) on /metrics beside the service's own; off where the
    # exporter `huracan metrics` serves them (the compose deployment)
    engine_metrics: bool = True


class ParamSettings(_Strict):
    """The parameter controller (``core/params``): strategy presets chosen per instrument by a contextual bandit,
    served by ``huracan serve`` (``/param``, ``/learn/outcome``, ``/preset/register``, ``/presets``)."""

    enabled: bool = True
    schemas_dir: Path | None = None  # default: <config dir>/strategy_schemas
    policy: Literal["lints", "egreedy"] = "lints"
    prior_precision: float = Field(1.0, gt=0)  # λ of the Gaussian posterior
    exploration: float = Field(100.0, gt=0)  # v, in reward units (net bps per trade)
    epsilon: float = Field(0.1, ge=0, le=1)  # egreedy only
    margin_bps: float = Field(2.0, ge=0)  # hysteresis: a new preset must beat the current one by this
    confidence: float = Field(0.9, gt=0, lt=1)  # ... with this posterior probability
    max_changes_per_day: int = Field(2, ge=0)  # per (strategy, instrument), UTC day
    kill_drawdown_bps: float = Field(2000.0, gt=0)  # of summed rewards: back to the safe preset
    seed: int = Field(0, ge=0)
    replay_evidence: bool = True  # decisions also use the Engine's param_posteriors (its replayed shadow trades)


class MetricsSettings(_Strict):
    """``huracan metrics``: the Prometheus exporter of the Engine's metrics (registry, store, Dagster instance)."""

    host: str = "127.0.0.1"
    port: int = Field(9187, ge=1, le=65535)
    days: int = Field(3, ge=1)  # dates before today the per-date metrics cover


class Settings(_Strict):
    env: Literal["local", "prod"] = "local"
    home: Path
    timeframe: str = "1h"
    partitions: PartitionSettings
    universe: UniverseSettings = UniverseSettings()
    windows: WindowSettings = WindowSettings()
    candles: CandleQualitySettings = CandleQualitySettings()
    features: FeatureSettings = FeatureSettings()
    labels: LabelSettings = LabelSettings()
    regimes: RegimeSettings = RegimeSettings()
    engines: EngineSettings = EngineSettings()
    costs: CostSettings = CostSettings()
    gate: GateSettings = GateSettings()
    meta: MetaSettings = MetaSettings()
    models: ModelSettings = ModelSettings()
    validation: ValidationSettings = ValidationSettings()
    shadow: ShadowSettings = ShadowSettings()
    promotion: PromotionSettings = PromotionSettings()
    execution: ExecutionSettings = ExecutionSettings()
    kubernetes: KubernetesSettings = KubernetesSettings()
    object_store: ObjectStoreSettings = ObjectStoreSettings()
    registry: RegistrySettings = RegistrySettings()
    exchange: ExchangeSettings = ExchangeSettings()
    telegram: TelegramSettings = TelegramSettings()
    serve: ServeSettings = ServeSettings()
    metrics: MetricsSettings = MetricsSettings()
    params: ParamSettings = ParamSettings()
    alerts: AlertSettings = AlertSettings()
    dagster: DagsterUiSettings = DagsterUiSettings()

    @field_validator("timeframe")
    @classmethod
    def _known_timeframe(cls, value: str) -> str:
        if value not in TIMEFRAME_MINUTES:
            raise ValueError(f"unknown timeframe {value!r}; expected one of {sorted(TIMEFRAME_MINUTES)}")
        return value

    @property
    def bar_minutes(self) -> int:
        return TIMEFRAME_MINUTES[self.timeframe]

    @property
    def store_root(self) -> Path:
        return Path(self.object_store.root).expanduser() if self.object_store.root else self.home / "store"

    @property
    def sqlite_path(self) -> Path:
        return self.home / "registry.db"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def data_dir(self) -> Path:
        return Path(self.exchange.data_dir).expanduser() if self.exchange.data_dir else SAMPLE_DATA_DIR


def config_dir() -> Path:
    explicit = os.environ.get("HURACAN_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    return _REPO_CONFIG_DIR if _REPO_CONFIG_DIR.is_dir() else _PACKAGED_CONFIG_DIR


def strategy_schemas_dir(settings: Settings) -> Path:
    """The parameter controller's schemas: ``params.schemas_dir``, else ``strategy_schemas/`` of the config folder,
    else the bundled ones (a config folder of settings files only, e.g. a deployment's, still has strategies)."""
    if settings.params.schemas_dir is not None:
        return settings.params.schemas_dir
    for folder in (config_dir(), _REPO_CONFIG_DIR, _PACKAGED_CONFIG_DIR):
        if (folder / "strategy_schemas").is_dir():
            return folder / "strategy_schemas"
    raise FileNotFoundError("no strategy_schemas folder: set params.schemas_dir")


def _deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"settings file {path} is missing")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:  # where, in the file's own words: "line 12, column 3"
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        raise ValueError(f"settings file {path} is not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping, not {type(data).__name__}")
    return data


SETTINGS_ENV = ("HURACAN_HOME", "HURACAN_TIMEFRAME", "HURACAN_DATA_DIR", "HURACAN_SYMBOLS")  # read by load_settings


def write_settings_folder(settings: Settings, folder: Path) -> Path:
    """A config folder from which :func:`load_settings` gives ``settings`` back (``base.yaml`` holds all of them,
    the environment files are empty): for processes that must rebuild the code location with the same settings.
    Settings hold the names of secrets' environment variables, never their values."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "base.yaml").write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    for env in ("local", "prod"):
        (folder / f"{env}.yaml").write_text("{}\n")
    return folder


@contextmanager
def settings_environment(folder: Path, env: str) -> Iterator[None]:
    """While inside, processes started from here load their settings from ``folder`` (``HURACAN_CONFIG_DIR``,
    ``HURACAN_ENV``) and not from this process's own overrides (:data:`SETTINGS_ENV` are unset); restored after."""
    names = (*SETTINGS_ENV, "HURACAN_CONFIG_DIR", "HURACAN_ENV")
    saved = {name: os.environ.get(name) for name in names}
    try:
        for name in SETTINGS_ENV:
            os.environ.pop(name, None)
        os.environ["HURACAN_CONFIG_DIR"] = str(folder)
        os.environ["HURACAN_ENV"] = env
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_settings(env: str | None = None, **overrides: object) -> Settings:
    """Settings for ``env`` (default: ``HURACAN_ENV`` or ``local``), with keyword overrides on top.

    Overrides use the top-level field names, plus the shortcuts ``data_dir`` and ``symbols``.
    """
    env = env or os.environ.get("HURACAN_ENV", "local")
    if env not in ("local", "prod"):
        raise ValueError(f"HURACAN_ENV must be 'local' or 'prod', not {env!r}")
    folder = config_dir()
    raw = _deep_merge(_read_yaml(folder / "base.yaml"), _read_yaml(folder / f"{env}.yaml"))

    if os.environ.get("HURACAN_HOME"):
        raw["home"] = os.environ["HURACAN_HOME"]
    if os.environ.get("HURACAN_TIMEFRAME"):
        raw["timeframe"] = os.environ["HURACAN_TIMEFRAME"]
    if os.environ.get("HURACAN_DATA_DIR"):
        raw.setdefault("exchange", {})["data_dir"] = os.environ["HURACAN_DATA_DIR"]
    if os.environ.get("HURACAN_SYMBOLS"):
        raw.setdefault("universe", {})["symbols"] = parse_symbols(os.environ["HURACAN_SYMBOLS"])

    data_dir = overrides.pop("data_dir", None)
    if data_dir is not None:
        raw.setdefault("exchange", {})["data_dir"] = str(data_dir)
    symbols = overrides.pop("symbols", None)
    if symbols is not None:
        raw.setdefault("universe", {})["symbols"] = parse_symbols(symbols)
    for key, value in overrides.items():
        if value is not None:
            raw[key] = value
    raw["home"] = str(Path(str(raw.get("home", "~/.huracan"))).expanduser())
    return Settings.model_validate(raw)


def parse_symbols(value: object) -> tuple[str, ...]:
    """``"BTC/USDT, ethusdt"`` or a list -> ``("BTCUSDT", "ETHUSDT")`` (partition-key form)."""
    items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[arg-type]
    out = []
    for item in items:
        key = str(item).strip().upper().replace("/", "").replace("_", "").replace("-", "")
        if key:
            if not key.isalnum():
                raise ValueError(f"bad symbol {item!r}")
            if key not in out:
                out.append(key)
    return tuple(out)


def export_runtime_env(settings: Settings) -> dict[str, str]:
    """Environment a Dagster process for these settings should run with (event-log tuning)."""
    return {
        "DAGSTER_HOME": str(settings.dagster_home),
        "DAGSTER_EVENT_BATCH_SIZE": str(settings.execution.event_batch_size),
        "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
    }
