"""``huracan serve`` on the published replay history (two dates decided, champions promoted, refits published).

Parity: the service's probability of a bar equals the one the graph logged in ``shadow_logs/predictions/D.parquet``
for the same model, bit for bit, whether the candles come from the store and the exchange or from the request's
body; the client's ``Champion.from_service`` downloads the bundle through the presigned URLs and predicts the same.
Auth, bad input (4xx, never 500), hot reload after a rollback and /metrics are checked on the same service.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta

import httpx
import polars as pl
import pytest
import schemathesis
import yaml
from dagster import AssetKey
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from huracan_assets.client import Champion
from huracan_assets.core.market_data.candles import date_range
from huracan_assets.defs.partitions import SYMBOLS, range_tags
from huracan_assets.exchange.files import FilesExchange
from huracan_assets.names import CHAMPION_ASSETS
from huracan_assets.publishing.champion import read_pointer
from huracan_assets.publishing.rollback import perform_rollback
from huracan_assets.registry.client import Registry, sqlite_url
from huracan_assets.runner import backfill
from huracan_assets.serve.app import create_app
from huracan_assets.serve.build import build_service
from huracan_assets.specs import recipe_for, replay_lead_days
from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets.storage.partitioned import usable_days
from huracan_assets_tests.conftest import _free_port, _kill_group
from huracan_assets_tests.defs.helpers import defs_for
from huracan_assets_tests.integration.history import PUBLISHED_DATES, world

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("replay_history")]
READ, ADMIN = {"Authorization": "Bearer read-token"}, {"Authorization": "Bearer admin-token"}
D1, D2 = PUBLISHED_DATES
D3 = date(2024, 8, 9)
SYMBOL = "ETHUSDT"


def _service(published, **overrides):
    settings = published.settings()
    if overrides:
        settings = settings.model_copy(update={"serve": settings.serve.model_copy(update=overrides)})
    store = LocalObjectStore(settings.store_root)
    exchange = FilesExchange(published.data, settings.timeframe, settings.universe.quote)
    service = build_service(
        settings, store, read_tokens=frozenset({"read-token"}), admin_tokens=frozenset({"admin-token"}),
        exchange=exchange, registry_factory=lambda: Registry(sqlite_url(settings.sqlite_path)),
    )  # fmt: skip
    return settings, store, service


@pytest.fixture
def served(published_history):
    settings, store, service = _service(published_history, reload_seconds=0.0)
    with TestClient(create_app(service)) as client:
        yield settings, store, client


def _logged(store, day) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(store.get(f"shadow_logs/predictions/{day}.parquet")))


def test_predictions_equal_the_graphs_logged_probabilities(served):
    settings, store, client = served
    log = _logged(store, D2).filter(pl.col("symbol") == SYMBOL)
    for role in ("champion", "challenger"):
        mine = log.filter(pl.col("role") == role).sort("ts")
        [model_id] = set(mine["model_id"])
        for ts, p in zip(mine["ts"].to_list()[::5], mine["p"].to_list()[::5], strict=True):
            answer = client.get(f"/predict/{SYMBOL}", params={"ts": ts, "model": model_id}, headers=READ)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert (body["p"], body["model_id"], body["ts"]) == (p, model_id, ts)  # bit for bit
            assert body["inputs"]["meta_weights_of"] == str(D1) and body["inputs"]["candle_days"]["store"] > 30
    # ?model=challenger is the newest challenger: D2's, the one the graph logged as D2's challenger
    ts, p = log.filter(pl.col("role") == "challenger").sort("ts").row(7)[0], None
    p = log.filter((pl.col("role") == "challenger") & (pl.col("ts") == ts))["p"][0]
    answer = client.get(f"/predict/{SYMBOL}", params={"ts": str(ts), "model": "challenger"}, headers=READ).json()
    assert answer["role"] == "challenger" and answer["p"] == p

    # the body's candles (the graph's stored days) give the same number as the store
    days = date_range(D2 - timedelta(days=replay_lead_days(settings)), D2)
    stored = usable_days(store, "candles", SYMBOL, days)  # the history starts 2024-07-01: fewer than the lead days
    candles = pl.concat(list(stored.values()))
    bars = candles.select("ts", "open", "high", "low", "close", "volume").to_dicts()
    champion_d2 = log.filter(pl.col("role") == "champion")
    ts, p, model_id = champion_d2.select("ts", "p", "model_id").row(11)
    answer = client.post(f"/predict/{SYMBOL}", json={"ts": ts, "model": model_id, "candles": bars}, headers=READ)
    assert answer.status_code == 200, answer.text
    assert answer.json()["p"] == p and answer.json()["inputs"]["candle_days"] == {"body": len(stored)}


def test_the_champion_now_and_the_client_through_presigned_urls(served):
    settings, store, client = served
    pointer = read_pointer(store, SYMBOL)  # D2's refit
    model = client.get(f"/model/{SYMBOL}", headers=READ).json()
    assert model["pointer"]["model_id"] == pointer.model_id == model["model_id"]
    assert model["training_window"] == f"[{D2 - timedelta(days=20)}, {D2 + timedelta(days=1)})"
    assert set(model["urls"]) == {"model.bin", "config.json", "metrics.json", "sha256.txt"}
    assert model["validation"] and isinstance(model["canaries"]["passed"], bool)  # the walk-forward summary
    listed = client.get("/champions", headers=READ).json()["champions"]
    assert {c["symbol"] for c in listed} == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}

    # the last closed bar (the exchange's last bar, 23:00 of D2) by the current champion ...
    now = client.get(f"/predict/{SYMBOL}", headers=READ).json()
    assert now["model_id"] == pointer.model_id and now["time"] == f"{D2}T23:00:00Z" and now["role"] == "champion"
    # ... equals what the live side's client predicts with the bundle it downloaded through the presigned URLs
    champion = Champion.from_service(str(client.base_url), SYMBOL, "read-token", recipe_for(settings).hash,
                                     http=client)  # fmt: skip
    assert champion.model_id == pointer.model_id and champion.bundle.content_hash == pointer.sha256
    days = date_range(D2 - timedelta(days=replay_lead_days(settings)), D2)
    from huracan_assets.core.engines.signals import MetaState
    from huracan_assets.specs import build_specs
    from huracan_assets.storage.partitioned import reference_closes

    meta = MetaState.from_frame(usable_days(store, "meta_weights", SYMBOL, [D1])[D1])
    live = champion.predict_candles(
        usable_days(store, "candles", SYMBOL, days), reference_closes(store, "BTCUSDT", days), meta, D2,
        build_specs(settings).replay, usable_days(store, "spreads", SYMBOL, days),
    )  # fmt: skip
    assert live.filter(pl.col("ts") == now["ts"])["p"][0] == now["p"]


def test_auth_and_bad_input_get_clear_4xx(served):
    _, store, client = served
    assert client.get("/health").status_code == 200
    for path in ("/champions", f"/model/{SYMBOL}", f"/predict/{SYMBOL}", "/metrics"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401, path
    rollback = {"to": str(D1), "reason": "test"}
    assert client.post(f"/champion/{SYMBOL}/rollback", json=rollback).status_code == 401
    assert client.post(f"/champion/{SYMBOL}/rollback", json=rollback, headers=READ).status_code == 403
    assert client.get("/champions", headers=ADMIN).status_code == 200  # admin reads too

    ts = int(_logged(store, D2)["ts"][0])
    bad = [
        ("/predict/XRPUSDT", {}, 404),  # a coin of the history without a champion
        (f"/predict/{SYMBOL}", {"ts": ts + 1}, 422),  # not a bar's open time
        (f"/predict/{SYMBOL}", {"ts": "yesterday"}, 422),
        (f"/predict/{SYMBOL}", {"ts": "2023-01-01T00:00:00Z"}, 422),  # no candles then
        (f"/predict/{SYMBOL}", {"model": "BTCUSDT-2024-08-08-0123456789ab"}, 404),  # another coin's id
        (f"/predict/{SYMBOL}", {"model": f"{SYMBOL}-2024-08-08-0123456789ab"}, 404),  # no such bundle
        (f"/predict/{SYMBOL}", {"model": "../../etc"}, 422),
        ("/predict/BAD SYMBOL!", {}, 422),
    ]
    for path, params, status in bad:
        answer = client.get(path, params=params, headers=READ)
        assert answer.status_code == status, (path, params, answer.text)
        assert answer.json()["detail"], answer.text
    one_day = [{"ts": ts + i * 3_600_000, "open": 1, "high": 1, "low": 1, "close": 1, "volume": 1} for i in range(24)]
    posts = [
        ({"candles": one_day}, 422),  # too few bars: the warm-up days are missing
        ({"candles": [{"ts": "x", "open": 1}]}, 422),  # malformed
        ({"candles": [{"ts": ts, "open": 2, "high": 1, "low": 3, "close": 1, "volume": -5}] * 3}, 422),
        ({"model": "nope"}, 422),
    ]
    for body, status in posts:
        answer = client.post(f"/predict/{SYMBOL}", json=body, headers=READ)
        assert answer.status_code == status, (body, answer.text)


def test_wrong_recipe_is_a_conflict(published_history):
    _, _, service = _service(published_history)
    service.models.recipe_hash = "0" * 16
    with TestClient(create_app(service)) as client:
        answer = client.get(f"/predict/{SYMBOL}", headers=READ)
    assert answer.status_code == 409 and "recipe" in answer.json()["detail"]


def test_rollback_and_hot_reload_without_restart(served):
    settings, store, client = served
    before = client.get(f"/predict/{SYMBOL}", headers=READ).json()
    d1_model = _logged(store, D2).filter((pl.col("symbol") == SYMBOL) & (pl.col("role") == "champion"))["model_id"][0]
    answer = client.post(f"/champion/{SYMBOL}/rollback", json={"to": str(D1), "reason": "live drawdown"},
                         headers=ADMIN)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["pointer"]["model_id"] == d1_model and answer.json()["pointer"]["kind"] == "rollback"
    after = client.get(f"/predict/{SYMBOL}", headers=READ).json()
    assert after["model_id"] == d1_model != before["model_id"] and after["ts"] == before["ts"]
    # a rollback made elsewhere (the CLI's path) is served on the next request, no restart
    registry = Registry(sqlite_url(settings.sqlite_path))
    perform_rollback(store, registry, SYMBOL, before["model_id"], "back again", recipe_hash=recipe_for(settings).hash,
                     timeframe=settings.timeframe)  # fmt: skip
    again = client.get(f"/predict/{SYMBOL}", headers=READ).json()
    assert again["model_id"] == before["model_id"] and again["p"] == before["p"]
    rows = [r for r in registry.select("promotions", symbol=SYMBOL) if r["kind"] == "rollback"]
    assert [r["to_model_id"] for r in sorted(rows, key=lambda r: r["at"])] == [d1_model, before["model_id"]]
    assert client.post(f"/champion/{SYMBOL}/rollback", json={"to": "2020-01-01", "reason": "x"},
                       headers=ADMIN).status_code == 409  # fmt: skip

    metrics = client.get("/metrics", headers=READ).text
    assert 'huracan_serve_predictions_total{role="champion",symbol="ETHUSDT"} 3.0' in metrics
    assert 'huracan_serve_champion_loads{symbol="ETHUSDT"} 3.0' in metrics
    assert 'huracan_serve_requests_total{endpoint="/champion/{symbol}/rollback",status="409"} 1.0' in metrics
    # the Engine's own, from the registry and the store
    assert (
        'huracan_promotions{kind="rollback"} 2.0' in metrics and 'huracan_promotions{kind="promotion"} 6.0' in metrics
    )
    assert 'huracan_champion_age_days{symbol="ETHUSDT"}' in metrics and "huracan_metrics_errors{" not in metrics


# ------------------------------------------------------------------------------------------------ fuzzing
def test_no_generated_input_gets_a_500(published_history):
    """Schemathesis against the service's own OpenAPI, every operation, with the admin token (a generated rollback
    may go through: this is a copy): every answer is below 500, for the generated coin and for one with a champion
    (where timestamps, model ids and candles are parsed)."""
    _, _, service = _service(published_history, reload_seconds=0.0)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(service))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "GET /predict/{symbol}",
        "POST /predict/{symbol}",
        "POST /champion/{symbol}/rollback",
        "GET /model/{symbol}",
    }

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)  # fmt: skip
        def fuzz(case):
            case.call_and_validate(headers=ADMIN, checks=[not_a_server_error])
            if "symbol" in (case.path_parameters or {}):  # again on a coin with a champion: the deeper paths
                case.path_parameters["symbol"] = SYMBOL
                case.call_and_validate(headers=ADMIN, checks=[not_a_server_error])

        fuzz()


# ------------------------------------------------------------------------------------------------ the graph
def test_the_next_run_starts_from_the_rolled_back_champion(published_history, tmp_path):
    """A rollback as of the last decided date D2: the run of D3 paper-trades the rolled-back champion (its ledger
    starts on D3), its pointer row names it, and latest.json still does (the graph never undoes a rollback)."""
    base = published_history.settings()
    data = world(tmp_path / "world", D3)
    settings = base.model_copy(update={"exchange": base.exchange.model_copy(update={"data_dir": str(data)})})
    store = LocalObjectStore(settings.store_root)
    registry = Registry(sqlite_url(settings.sqlite_path))
    promoted = read_pointer(store, SYMBOL)  # D2's promotion; roll back to D1's champion
    pointer, _ = perform_rollback(store, registry, SYMBOL, str(D1), "test", recipe_hash=recipe_for(settings).hash,
                                  timeframe=settings.timeframe)  # fmt: skip
    assert pointer.as_of == D2 and pointer.model_id != promoted.model_id
    defs = defs_for(settings)
    instance = published_history.history.instance()
    backfill(defs, instance, D3, D3, 1, with_summary=False, job="symbol_day_data_job")
    result = defs.resolve_job_def("symbol_day_job").execute_in_process(
        instance=instance,
        tags=range_tags(D3, D3, instance.get_dynamic_partitions(SYMBOLS)),
        asset_selection=[AssetKey(a) for a in CHAMPION_ASSETS],
    )
    assert result.success
    row = pl.read_parquet(io.BytesIO(store.get(f"champion_pointer/{SYMBOL}/{D3}.parquet"))).row(0, named=True)
    assert (row["champion_model_id"], row["sha256"], row["champion_as_of"]) == (pointer.model_id, pointer.sha256, D2)
    assert row["tests_since_promotion"] == 0 and not row["promoted"]
    champion_ledger = json.loads(row["champion_ledger"])
    assert champion_ledger["model_id"] == pointer.model_id and champion_ledger["since"] == str(D3)
    logged = _logged(store, D3).filter((pl.col("symbol") == SYMBOL) & (pl.col("role") == "champion"))
    assert set(logged["model_id"]) == {pointer.model_id} and logged.height == 24
    other = _logged(store, D3).filter((pl.col("symbol") == "BTCUSDT") & (pl.col("role") == "champion"))
    assert set(other["model_id"]) == {read_pointer(store, "BTCUSDT").model_id}  # no rollback there
    assert read_pointer(store, SYMBOL) == pointer


# ------------------------------------------------------------------------------------------------ the CLI
def test_huracan_serve_answers_curl_with_the_graphs_number(published_history, tmp_path):
    """``huracan serve`` as a user starts it (its own process, uvicorn, tokens from the environment): a plain HTTP
    GET of a bar the graph scored returns the probability the graph logged; without the token it refuses to start."""
    settings = published_history.settings()
    config = tmp_path / "config"
    config.mkdir()
    (config / "base.yaml").write_text(yaml.safe_dump(settings.model_dump(mode="json", exclude={"home"})))
    (config / "local.yaml").write_text("{}\n")
    env = {**os.environ, "HURACAN_CONFIG_DIR": str(config), "HURACAN_SERVE_READ_TOKEN": "read-token"}
    env.pop("HURACAN_SERVE_ADMIN_TOKEN", None)
    cmd = [sys.executable, "-m", "huracan_assets.cli", "serve", "--home", str(published_history.history.home)]
    refused = subprocess.run(cmd, env={**env, "HURACAN_SERVE_READ_TOKEN": ""}, capture_output=True, text=True,
                             timeout=120)  # fmt: skip
    assert refused.returncode == 2 and "HURACAN_SERVE_READ_TOKEN" in refused.stderr

    port = _free_port()
    proc = subprocess.Popen([*cmd, "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        store = LocalObjectStore(settings.store_root)
        ts, p, model_id = _logged(store, D2).filter(pl.col("symbol") == SYMBOL).select("ts", "p", "model_id").row(5)
        answer = httpx.get(f"{base}/predict/{SYMBOL}", params={"ts": ts, "model": model_id}, headers=READ, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["p"] == p and answer.json()["model_id"] == model_id
        assert httpx.get(f"{base}/champions", timeout=10).status_code == 401
        assert httpx.post(f"{base}/champion/{SYMBOL}/rollback", json={"to": str(D1), "reason": "x"}, headers=READ,
                          timeout=10).status_code == 403  # fmt: skip
        assert "huracan_serve_requests_total" in httpx.get(f"{base}/metrics", headers=READ, timeout=10).text
    finally:
        _kill_group(proc, signal.SIGTERM)
        output = proc.communicate(timeout=30)[0]
    assert "read-token" not in output  # the token never reaches the log
