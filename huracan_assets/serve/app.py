"""``huracan serve``: the champions of the Engine's store, served to the live side (FastAPI).

Endpoints (every one but ``/health`` needs a bearer token; the read scope reads, the admin scope also writes):

* ``GET /health``: the store answers; the number of champions.
* ``GET /champions``: every coin's current pointer.
* ``GET /model/{symbol}``: the pointer, the bundle's metadata, training window and validation summary, and
  presigned URLs of its four files (``Champion.from_service`` in ``client.py`` downloads and verifies them).
* ``GET|POST /predict/{symbol}``: P(y = 1) of the champion (``model=challenger`` or a model id for another) at
  the last closed bar or at ``ts``, from the inputs the graph would give that bar (``serve/inputs.py``); POST
  may carry the coin's candles (and the reference coin's). The answer names the model that gave it.
* ``POST /champion/{symbol}/rollback``: admin; ``publishing/rollback.py``, then the next answer names the
  rolled-back model.
* ``GET /metrics``: Prometheus text format.
* The parameter controller (``params/service.py``): ``GET /param/{strategy}/{instrument}`` (``features[name]=v``
  query parameters, optional ``position_id``) answers the preset and its ``config_id`` for a new order;
  ``POST /learn/outcome/{strategy}/{instrument}/{preset_id}`` learns a realised reward; ``GET
  /presets/{strategy}/{instrument}`` lists the presets; ``POST /preset/register/{strategy}/{instrument}`` (admin)
  adds one.

Bad input gets a 4xx naming the problem, never a 500: an unknown coin or model 404, a bar that cannot be built
422, a refused rollback 409, an exchange failure while fetching missing days 503.
"""

import datetime as dt
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import polars as pl
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from huracan_assets.core.inference import InferenceError, check_inputs, predict_loaded
from huracan_assets.core.market_data.candles import ms_to_date
from huracan_assets.core.params.schema import PRESET_ID_PATTERN, PresetError
from huracan_assets.params.service import OutcomeRefused, ParamService, UnknownStrategy
from huracan_assets.publishing.champion import NoChampion, PointerError, champion_urls
from huracan_assets.publishing.rollback import RollbackRefused
from huracan_assets.serve.inputs import InputError, InputReader, UpstreamError, bars_frame
from huracan_assets.serve.models import ModelCache, ModelUnavailable, RecipeMismatch, Served
from huracan_assets.storage.object_store import ObjectStore, ObjectStoreError

SYMBOL = Path(pattern=r"^[A-Za-z0-9._-]{1,32}$", description="the coin, e.g. BTCUSDT")
MODEL_PATTERN = r"^(champion|challenger|[A-Za-z0-9._-]{1,32}-\d{4}-\d{2}-\d{2}-[0-9a-f]{12})$"
MODEL = Query(
    pattern=MODEL_PATTERN,
    description="champion (default), challenger (the newest), or a model id",
)
STRATEGY = Path(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="a strategy schema's name, e.g. trend_following")
INSTRUMENT = Path(pattern=r"^[A-Za-z0-9._-]{1,32}$", description="the instrument, e.g. BTCUSDT")
PRESET = Path(pattern=PRESET_ID_PATTERN, description="a preset id of the strategy")
POSITION_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
TS = Query(description="the bar's open time: epoch milliseconds or ISO 8601 UTC; default: the last closed bar")


@dataclass
class Service:
    """What the app serves from, built by the CLI (``cmd_serve``) or a test."""

    store: ObjectStore
    models: ModelCache
    reader: InputReader
    recipe_hash: str
    read_tokens: frozenset[str]
    admin_tokens: frozenset[str] = frozenset()
    presign_seconds: int = 900
    rollback: Callable[..., Any] | None = None  # (symbol, to, reason, requested_by) -> (pointer, wrote)
    collectors: tuple = ()  # more prometheus collectors for /metrics (the Engine's: huracan_assets/metrics.py)
    params: ParamService | None = None  # the parameter controller (None: its endpoints answer 503)


class Bar(BaseModel):
    ts: int = Field(description="open time, epoch milliseconds")
    open: float
    high: float
    low: float
    close: float
    volume: float


class PredictBody(BaseModel):
    ts: int | str | None = Field(None, description="epoch ms or ISO 8601; default: the last posted bar")
    model: str | None = Field(None, pattern=MODEL_PATTERN, description="champion, challenger or a model id")
    candles: list[Bar] | None = Field(None, description="the coin's bars of D and the days its inputs read")
    reference: list[Bar] | None = Field(None, description="the reference coin's bars of the same days")


class RollbackBody(BaseModel):
    to: str = Field(min_length=1, max_length=64, description="an earlier champion: model id or YYYY-MM-DD")
    reason: str = Field(min_length=1, max_length=500)
    as_of: dt.date | None = Field(None, description="default: the last date the graph decided for the coin")


# ------------------------------------------------------------------------------------------------ helpers
class OutcomeBody(BaseModel):
    reward: float = Field(allow_inf_nan=False, description="the realised reward: net bps of the settled trade")
    position_id: str | None = Field(None, pattern=POSITION_PATTERN, description="the position it settles")
    features: dict[str, float] | None = Field(None, description="the context, when no position_id is given")


class PresetBody(BaseModel):
    preset_id: str = Field(pattern=PRESET_ID_PATTERN, description="a new id (presets are immutable)")
    params: dict[str, float] = Field(description="every parameter of the strategy's schema, inside its bounds")


def _parse_ts(value: int | str | None, bar_ms: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit()):
        ts = int(value)
    else:
        try:
            stamp = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as exc:
            raise InputError(f"ts {value!r} is neither epoch milliseconds nor ISO 8601") from exc
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.UTC)
        ts = int(stamp.timestamp() * 1000)
    if not 0 <= ts < 4_102_444_800_000:  # 1970..2100
        raise InputError(f"ts {ts} is out of range")
    if ts % bar_ms:
        raise InputError(f"ts {ts} is not the open time of a {bar_ms // 60_000}-minute bar")
    return ts


def _iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


def _bundle_summary(served: Served) -> dict[str, Any]:
    cfg, metrics = served.bundle.config, served.bundle.metrics
    wf = metrics.get("walk_forward") or {}
    overall = wf.get("overall", wf) if isinstance(wf, dict) else {}
    return {
        "model_id": served.model_id,
        "bundle_id": served.bundle.bundle_id(),
        "sha256": served.bundle.content_hash,
        "as_of": cfg.get("as_of"),
        "model": cfg.get("model"),
        "seed": cfg.get("seed"),
        "recipe_hash": cfg.get("recipe_hash"),
        "training_window": (cfg.get("windows") or {}).get("training"),
        "windows": cfg.get("windows"),
        "n_features": len(cfg.get("feature_names", [])),
        "library_versions": cfg.get("library_versions"),
        "validation": {k: v for k, v in overall.items() if not isinstance(v, dict | list)} if overall else {},
        "canaries": metrics.get("canaries"),
    }


def _error_handler(status: int):
    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc).strip("'\"")}, status_code=status)

    return handler


def _scopes(service: Service):
    """The read and admin dependencies: 401 without a valid bearer token, 403 for a read token on admin."""
    bearer = HTTPBearer(auto_error=False)

    def scope_of(credentials: HTTPAuthorizationCredentials | None) -> str | None:
        if credentials is None:
            return None
        token = credentials.credentials
        if any(secrets.compare_digest(token, t) for t in service.admin_tokens):
            return "admin"
        if any(secrets.compare_digest(token, t) for t in service.read_tokens):
            return "read"
        return None

    def unauthorized() -> HTTPException:
        return HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})

    def read_scope(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        scope = scope_of(credentials)
        if scope is None:
            raise unauthorized()
        return scope

    def admin_scope(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        scope = scope_of(credentials)
        if scope is None:
            raise unauthorized()
        if scope != "admin":
            raise HTTPException(403, "this needs the admin scope")
        return scope

    return read_scope, admin_scope


@dataclass
class _Metrics:
    predictions: Counter
    seconds: Histogram


def _predict(service: Service, metrics: _Metrics, symbol: str, model_name: str, ts_value, body) -> dict[str, Any]:
    """One prediction (module docstring): the model, the bar, the graph's inputs of its day, P(y = 1)."""
    started = time.perf_counter()
    served = service.models.resolve(symbol, model_name)
    posted = bars_frame([b.model_dump() for b in body.candles]) if body and body.candles else None
    posted_ref = bars_frame([b.model_dump() for b in body.reference]) if body and body.reference else None
    ts = _parse_ts(ts_value, service.reader.bar_ms)
    if ts is None:
        ts = int(posted["ts"].max()) if posted is not None else service.reader.last_closed_bar(symbol)
    day = ms_to_date(ts)
    inputs = service.reader.inputs(symbol, day, posted, posted_ref)
    rows = service.reader.rows(symbol, day, inputs)
    row = rows.filter(pl.col("ts") == ts)
    if row.is_empty():
        raise InputError(f"{symbol} has no model input row at {_iso(ts)}: that bar is missing")
    check_inputs(served.bundle, row, service.recipe_hash)
    p = float(predict_loaded(served.model, served.bundle, row)["p"][0])
    metrics.predictions.labels(symbol, served.role).inc()
    metrics.seconds.observe(time.perf_counter() - started)
    return {
        "symbol": symbol,
        "ts": ts,
        "time": _iso(ts),
        "p": p,
        "model_id": served.model_id,
        "role": served.role,
        "sha256": served.bundle.content_hash,
        "model_as_of": served.as_of,
        "pointer_as_of": served.pointer.as_of.isoformat() if served.pointer else None,
        "recipe_hash": service.recipe_hash,
        "inputs": inputs.describe(),
    }


# ------------------------------------------------------------------------------------------------ the app
def create_app(service: Service) -> FastAPI:
    app = FastAPI(
        title="Huracan model service",
        version="1",
        description="The Engine's champions for the live side: pointers, bundles and predictions with parity.",
    )
    reg = CollectorRegistry()
    for collector in service.collectors:
        reg.register(collector)
    requests_total = Counter("huracan_serve_requests", "Requests by endpoint and status", ["endpoint", "status"],
                             registry=reg)  # fmt: skip
    predict_seconds = Histogram("huracan_serve_predict_seconds", "Time to answer a prediction", registry=reg)
    predictions = Counter("huracan_serve_predictions", "Predictions by coin and role", ["symbol", "role"],
                          registry=reg)  # fmt: skip
    read_scope, admin_scope = _scopes(service)
    metrics_ = _Metrics(predictions, predict_seconds)

    @app.middleware("http")
    async def count(request: Request, call_next):
        response = await call_next(request)
        route = request.scope.get("route")
        requests_total.labels(getattr(route, "path", "unmatched"), str(response.status_code)).inc()
        return response

    for exc_type, status in (
        (InputError, 422),
        (InferenceError, 422),
        (RecipeMismatch, 409),
        (ModelUnavailable, 404),
        (NoChampion, 404),
        (RollbackRefused, 409),
        (PointerError, 409),
        (UpstreamError, 503),
        (ObjectStoreError, 503),
        (UnknownStrategy, 404),
        (OutcomeRefused, 409),
    ):
        app.add_exception_handler(exc_type, _error_handler(status))

    _model_routes(app, service, read_scope, metrics_)
    _ops_routes(app, service, read_scope, admin_scope, reg)
    _param_routes(app, service, read_scope, admin_scope)
    return app


def _model_routes(app: FastAPI, service: Service, read_scope, metrics_: _Metrics) -> None:
    @app.get("/health")
    def health() -> dict[str, Any]:
        """Liveness and readiness: the store answers. No token needed."""
        return {"status": "ok", "champions": len(service.models.champions()), "store": service.store.describe(),
                "recipe_hash": service.recipe_hash}  # fmt: skip

    @app.get("/champions")
    def champions(_: Annotated[str, Depends(read_scope)]) -> dict[str, Any]:
        """Every coin's current champion pointer (an invalid one is listed with its error)."""
        out = []
        for symbol in service.models.champions():
            try:
                out.append(service.models.pointer(symbol).to_dict())
            except (ModelUnavailable, NoChampion) as exc:
                out.append({"symbol": symbol, "error": str(exc)})
        return {"champions": out}

    @app.get("/model/{symbol}")
    def model(
        _: Annotated[str, Depends(read_scope)],
        symbol: Annotated[str, SYMBOL],
        model: Annotated[str, MODEL] = "champion",
    ) -> dict[str, Any]:
        """The model's pointer (champions), metadata, training window, validation summary and presigned URLs."""
        served = service.models.resolve(symbol, model)
        doc = {"symbol": symbol, "role": served.role, **_bundle_summary(served)}
        if served.pointer is not None:
            doc["pointer"] = served.pointer.to_dict()
            doc["urls"] = champion_urls(service.store, symbol, service.presign_seconds, verify=False)
            doc["urls_expire_s"] = service.presign_seconds
        return doc

    @app.get("/predict/{symbol}")
    def predict_get(
        _: Annotated[str, Depends(read_scope)],
        symbol: Annotated[str, SYMBOL],
        model: Annotated[str, MODEL] = "champion",
        ts: Annotated[str | None, TS] = None,
    ) -> dict[str, Any]:
        """P(y = 1) at a bar, the candles from the store and the configured exchange."""
        return _predict(service, metrics_, symbol, model, ts, None)

    @app.post("/predict/{symbol}")
    def predict_post(
        _: Annotated[str, Depends(read_scope)],
        symbol: Annotated[str, SYMBOL],
        body: PredictBody,
        model: Annotated[str, MODEL] = "champion",
    ) -> dict[str, Any]:
        """P(y = 1) at a bar; the body may carry the candles (else as GET)."""
        return _predict(service, metrics_, symbol, body.model or model, body.ts, body)


def _ops_routes(app: FastAPI, service: Service, read_scope, admin_scope, reg: CollectorRegistry) -> None:
    loads = Gauge("huracan_serve_champion_loads", "Champion bundles loaded per coin (hot reloads + 1)", ["symbol"],
                  registry=reg)  # fmt: skip
    age = Gauge("huracan_serve_champion_age_days", "Days since the served champion's pointer date", ["symbol"],
                registry=reg)  # fmt: skip

    @app.post("/champion/{symbol}/rollback")
    def rollback(
        scope: Annotated[str, Depends(admin_scope)], symbol: Annotated[str, SYMBOL], body: RollbackBody
    ) -> dict[str, Any]:
        """Admin: roll the coin back to an earlier champion (a new history entry; ``publishing/rollback.py``)."""
        if service.rollback is None:
            raise HTTPException(503, "rollback is not configured on this service")
        pointer, wrote = service.rollback(symbol, body.to, body.reason, body.as_of, f"serve:{scope}")
        service.models.forget(symbol)
        return {"pointer": pointer.to_dict(), "written": wrote}

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics(_: Annotated[str, Depends(read_scope)]) -> PlainTextResponse:
        """Prometheus text format."""
        today = dt.datetime.now(dt.UTC).date()
        for symbol, count in service.models.reloads.items():
            loads.labels(symbol).set(count)
        for symbol, pointer in service.models.served_pointers().items():
            age.labels(symbol).set((today - pointer.as_of).days)
        return PlainTextResponse(generate_latest(reg).decode(), media_type=CONTENT_TYPE_LATEST)


def _features(request: Request) -> dict[str, float]:
    """``features[name]=v`` query parameters (or bare ``name=v``) as numbers; 422 for one that is not a number."""
    out = {}
    for key, value in request.query_params.multi_items():
        if key == "position_id":
            continue
        name = key[len("features[") : -1] if key.startswith("features[") and key.endswith("]") else key
        try:
            out[name] = float(value)
        except ValueError:
            raise HTTPException(422, f"feature {name!r} must be a number, got {value!r}") from None
    return out


def _param_routes(app: FastAPI, service: Service, read_scope, admin_scope) -> None:
    def params() -> ParamService:
        if service.params is None:
            raise HTTPException(503, "the parameter controller is not configured on this service")
        return service.params

    def answer(fn, *args):
        """``fn(*args)``; a ValueError of the input (a feature missing, unknown or not finite) is a 422, the
        controller's refusals keep their own status."""
        try:
            return fn(*args)
        except OutcomeRefused:
            raise
        except PresetError as exc:
            raise HTTPException(409 if "is taken" in str(exc) else 422, str(exc)) from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    @app.get("/param/{strategy}/{instrument}")
    def param(
        _: Annotated[str, Depends(read_scope)],
        request: Request,
        strategy: Annotated[str, STRATEGY],
        instrument: Annotated[str, INSTRUMENT],
        position_id: Annotated[str | None, Query(pattern=POSITION_PATTERN)] = None,
    ) -> dict[str, Any]:
        """The preset for a new order: tag the order with ``config_id``; a ``position_id`` keeps its preset for
        the life of the position. Context: ``features[name]=value`` for each feature of the strategy's schema."""
        return answer(params().choose, strategy, instrument, _features(request), position_id)

    @app.post("/learn/outcome/{strategy}/{instrument}/{preset_id}")
    def learn(
        _: Annotated[str, Depends(read_scope)],
        strategy: Annotated[str, STRATEGY],
        instrument: Annotated[str, INSTRUMENT],
        preset_id: Annotated[str, PRESET],
        body: OutcomeBody,
    ) -> dict[str, Any]:
        """A realised reward of the preset: for the position it settles, or at the context of ``features``."""
        return answer(params().learn, strategy, instrument, preset_id, body.reward, body.features, body.position_id)

    @app.get("/presets/{strategy}/{instrument}")
    def presets(
        _: Annotated[str, Depends(read_scope)],
        strategy: Annotated[str, STRATEGY],
        instrument: Annotated[str, INSTRUMENT],
    ) -> dict[str, Any]:
        """The presets offered for the instrument, their config_ids and observations, and the one in force."""
        return params().presets(strategy, instrument)

    @app.post("/preset/register/{strategy}/{instrument}")
    def register(
        _: Annotated[str, Depends(admin_scope)],
        strategy: Annotated[str, STRATEGY],
        instrument: Annotated[str, INSTRUMENT],
        body: PresetBody,
    ) -> dict[str, Any]:
        """Admin: a new preset for the instrument, inside the schema's bounds; an id is never reused (409)."""
        return answer(params().register, strategy, instrument, body.preset_id, body.params)
