"""The parameter controller's API on ``huracan serve`` (``params/service.py``, ``serve/app.py``), over a real SQLite
registry and the bundled strategy schemas: what a live engine does (ask, tag, settle), the guardrails seen from
outside, auth, bad input, a restart, and schemathesis over the endpoints."""

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from huracan_assets.core.params import Controller, load_schemas, posterior_to_dict
from huracan_assets.params.service import ParamService, controller_spec
from huracan_assets.params.store import ParamStore
from huracan_assets.registry.client import Registry, sqlite_url
from huracan_assets.serve.app import Service, create_app
from huracan_assets.settings import config_dir, load_settings
from huracan_assets.storage.object_store import LocalObjectStore

READ, ADMIN = {"Authorization": "Bearer read-token"}, {"Authorization": "Bearer admin-token"}
TREND = {"regime_trend": 0.8, "regime_range": 0.1, "regime_panic": 0.0, "volatility": 0.01, "efficiency_ratio": 0.4}
RANGE = {"regime_trend": 0.1, "regime_range": 0.8, "regime_panic": 0.0, "volatility": 0.01, "efficiency_ratio": 0.0}
START = datetime(2024, 8, 10, tzinfo=UTC)


class Clock:
    """An hour later at each call: the daily change limit sees the days go by."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(hours=1)
        return self.now


def _client(tmp_path, clock=None, replay_evidence: bool = True) -> TestClient:
    registry = Registry(sqlite_url(tmp_path / "registry.db"))
    params = ParamService.from_folder(
        lambda: registry, config_dir() / "strategy_schemas", controller_spec(load_settings("local").params),
        clock=clock or Clock(), replay_evidence=replay_evidence,
    )  # fmt: skip
    service = Service(
        store=LocalObjectStore(tmp_path / "store"), models=SimpleNamespace(reloads={}, served_pointers=dict),
        reader=None, recipe_hash="", read_tokens=frozenset({"read-token"}), admin_tokens=frozenset({"admin-token"}),
        params=params,
    )  # fmt: skip
    return TestClient(create_app(service))


def _query(features: dict) -> dict:
    return {f"features[{k}]": v for k, v in features.items()}


def test_a_live_engine_asks_tags_and_settles(tmp_path):
    """A new instrument starts on the safe preset; a position keeps its config_id for its life whatever is learned
    meanwhile; its settlement teaches that preset at the context it was opened in, then releases it."""
    api = _client(tmp_path)
    first = api.get("/param/trend_following/BTCUSDT", params={**_query(TREND), "position_id": "p-1"}, headers=READ)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["preset_id"] == "safe" and body["config_id"].startswith("trend_following:BTCUSDT:safe:")
    assert body["params"]["threshold"] == 0.12 and body["reason"] in ("exploit", "explore", "hysteresis-hold")
    listed = api.get("/presets/trend_following/BTCUSDT", headers=READ).json()
    assert listed["presets"]["safe"]["config_id"] == body["config_id"] and listed["current"] == "safe"
    for _ in range(30):  # the world says: long_ride is far better in trends
        for preset, reward in (("long_ride", 60.0), ("safe", -10.0)):
            r = api.post(f"/learn/outcome/trend_following/BTCUSDT/{preset}", json={"reward": reward, "features": TREND},
                         headers=READ)  # fmt: skip
            assert r.status_code == 200, r.text
    again = api.get("/param/trend_following/BTCUSDT", params={**_query(TREND), "position_id": "p-1"}, headers=READ)
    assert again.json()["reason"] == "position-pinned" and again.json()["config_id"] == body["config_id"]
    fresh = api.get("/param/trend_following/BTCUSDT", params=_query(TREND), headers=READ).json()
    assert fresh["preset_id"] == "long_ride" and fresh["reason"] == "exploit"  # new positions get the learned one
    wrong = api.post("/learn/outcome/trend_following/BTCUSDT/long_ride", json={"reward": 5.0, "position_id": "p-1"},
                     headers=READ)  # fmt: skip
    assert wrong.status_code == 409 and "opened with preset 'safe'" in wrong.json()["detail"]
    settled = api.post("/learn/outcome/trend_following/BTCUSDT/safe", json={"reward": 5.0, "position_id": "p-1"},
                       headers=READ)  # fmt: skip
    assert settled.status_code == 200 and settled.json()["observations"] == 31 and settled.json()["open_positions"] == 0
    twice = api.post("/learn/outcome/trend_following/BTCUSDT/safe", json={"reward": 5.0, "position_id": "p-1"},
                     headers=READ)  # fmt: skip
    assert twice.status_code == 409  # a position settles once
    other = api.get("/presets/trend_following/ETHUSDT", headers=READ).json()
    assert other["current"] == "safe" and all(p["observations"] == 0 for p in other["presets"].values())


def _engine_evidence(tmp_path, as_of: date, reward: float) -> None:
    """What ``param_posteriors`` records: a replay where long_ride earned ``reward`` bps a trade in trends, 200
    times, and safe lost 10."""
    schema = load_schemas(config_dir() / "strategy_schemas")["trend_following"]
    spec = controller_spec(load_settings("local").params)
    controller = Controller(schema, spec)
    state = controller.initial_state("BTCUSDT")
    for _ in range(200):
        state = controller.observe(state, "long_ride", TREND, reward, realised=False)
        state = controller.observe(state, "safe", TREND, -10.0)
    registry = Registry(sqlite_url(tmp_path / "registry.db"))
    posteriors = {"trend_following": {k: posterior_to_dict(v) for k, v in state.posteriors.items()}}
    ParamStore(registry).publish_evidence("BTCUSDT", as_of, posteriors, "model-x")
    registry.dispose()


def test_the_live_controller_decides_with_what_the_engine_learned_from_its_shadow_trades(tmp_path):
    """Evidence the Engine recorded moves a new instrument off the safe preset at its first order (the live state
    has no outcome yet); a service told to ignore it keeps the safe preset. The live state keeps its own outcomes
    only, and a backfill of an older date does not replace newer evidence."""
    _engine_evidence(tmp_path, date(2024, 8, 9), 60.0)
    blind = _client(tmp_path / "blind", replay_evidence=False)
    _engine_evidence(tmp_path / "blind", date(2024, 8, 9), 60.0)
    answer = blind.get("/param/trend_following/BTCUSDT", params=_query(TREND), headers=READ).json()
    assert answer["preset_id"] == "safe" and answer["evidence_as_of"] is None
    api = _client(tmp_path)
    answer = api.get("/param/trend_following/BTCUSDT", params=_query(TREND), headers=READ).json()
    assert (answer["preset_id"], answer["reason"], answer["evidence_as_of"]) == ("long_ride", "exploit", "2024-08-09")
    assert answer["p_beats"] > 0.9 and answer["means"]["long_ride"] > 50
    listed = api.get("/presets/trend_following/BTCUSDT", headers=READ).json()
    assert listed["presets"]["long_ride"]["replay_observations"] == 200
    assert listed["presets"]["long_ride"]["observations"] == 0  # the live state holds live outcomes only
    _engine_evidence(tmp_path, date(2024, 8, 1), -500.0)  # an old date's backfill: ignored
    listed = api.get("/presets/trend_following/BTCUSDT", headers=READ).json()
    assert listed["evidence_as_of"] == "2024-08-09"
    answer = api.get("/param/trend_following/BTCUSDT", params=_query(TREND), headers=READ).json()
    assert answer["means"]["long_ride"] > 50


def test_the_daily_change_limit_holds_through_the_api(tmp_path):
    """An adversary that, after every order, makes the preset not in force look best (its outcomes sum to zero, so
    the kill switch stays off): the instrument's preset changes at most max_changes_per_day times a UTC day."""
    api = _client(tmp_path)
    presets = ["steady", "long_ride"]
    changes: dict[str, int] = {}
    last = None
    for i in range(60):  # 60 hours: three UTC days
        best = presets[0] if last == presets[1] else presets[1]
        for preset in sorted(presets, key=lambda p: p != best):
            api.post(f"/learn/outcome/trend_following/SOLUSDT/{preset}",
                     json={"reward": 900.0 if preset == best else -900.0, "features": RANGE}, headers=READ)  # fmt: skip
        answer = api.get("/param/trend_following/SOLUSDT", params=_query(RANGE), headers=READ).json()
        day = (START + timedelta(hours=i + 1)).date().isoformat()  # only the orders move the clock
        if last is not None and answer["preset_id"] != last:
            changes[day] = changes.get(day, 0) + 1
        last = answer["preset_id"]
    limit = load_settings("local").params.max_changes_per_day
    assert max(changes.values()) == limit  # the limit binds (the outcomes ask for a change every hour) and holds


def test_auth_and_bad_input_get_clear_4xx(tmp_path):
    api = _client(tmp_path)
    good = {"preset_id": "slow_ride", "params": {"threshold": 0.07, "net_edge_floor_bps": 9.0, "cooldown_bars": 6,
                                                 "dedup_bars": 24, "pt_mult": 4.0, "sl_mult": 3.0,
                                                 "max_holding_bars": 36}}  # fmt: skip
    url = "/preset/register/trend_following/BTCUSDT"
    assert api.post(url, json=good).status_code == 401
    assert api.post(url, json=good, headers={"Authorization": "Bearer nope"}).status_code == 401
    refused = api.post(url, json=good, headers=READ)
    assert refused.status_code == 403  # a read token never registers a preset
    assert "slow_ride" not in api.get("/presets/trend_following/BTCUSDT", headers=READ).json()["presets"]
    out = {**good, "preset_id": "too_wide", "params": {**good["params"], "pt_mult": 50.0}}
    bad = api.post(url, json=out, headers=ADMIN)
    assert bad.status_code == 422 and "'pt_mult' = 50" in bad.json()["detail"] and "bounds" in bad.json()["detail"]
    assert api.post(url, json=good, headers=ADMIN).status_code == 200
    assert api.post(url, json=good, headers=ADMIN).status_code == 409  # an id is never reused
    listed = api.get("/presets/trend_following/BTCUSDT", headers=READ).json()["presets"]
    assert listed["slow_ride"]["params"]["cooldown_bars"] == 6
    assert "slow_ride" not in api.get("/presets/trend_following/ETHUSDT", headers=READ).json()["presets"]
    assert api.get("/param/nope/BTCUSDT", params=_query(TREND), headers=READ).status_code == 404
    missing = api.get("/param/trend_following/BTCUSDT", params={"features[regime_trend]": 1}, headers=READ)
    assert missing.status_code == 422 and "missing" in missing.json()["detail"]
    nan = api.get("/param/trend_following/BTCUSDT", params={**_query(TREND), "features[volatility]": "x"},
                  headers=READ)  # fmt: skip
    assert nan.status_code == 422
    assert api.post("/learn/outcome/trend_following/BTCUSDT/nope", json={"reward": 1.0, "features": TREND},
                    headers=READ).status_code == 409  # fmt: skip
    assert api.post("/learn/outcome/trend_following/BTCUSDT/safe", json={"reward": 1.0},
                    headers=READ).status_code == 422  # fmt: skip
    assert api.get("/param/trend_following/BTCUSDT", params=_query(TREND)).status_code == 401


def test_the_state_survives_a_restart(tmp_path):
    """A new service on the same registry continues where the first one stopped: same observations, same decision
    counter, same answer as the first service would give."""
    api = _client(tmp_path)
    for reward in (30.0, -5.0, 12.0):
        api.post("/learn/outcome/mean_reversion/XRPUSDT/safe", json={"reward": reward, "features": _mr()},
                 headers=READ)  # fmt: skip
    api.get("/param/mean_reversion/XRPUSDT", params=_query(_mr()), headers=READ)
    before = api.get("/presets/mean_reversion/XRPUSDT", headers=READ).json()
    restarted = _client(tmp_path)
    after = restarted.get("/presets/mean_reversion/XRPUSDT", headers=READ).json()
    assert after == before and after["decisions"] == 1 and after["presets"]["safe"]["observations"] == 3


def _mr() -> dict:
    from huracan_assets.core.params import load_schema

    schema = load_schema(config_dir() / "strategy_schemas" / "mean_reversion.yaml")
    return dict.fromkeys(schema.feature_names, 0.01)


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(tmp_path):
    schema = schemathesis.openapi.from_asgi("/openapi.json", _client(tmp_path).app)
    operations = [r.ok() for r in schema.get_all_operations() if "param" in r.ok().path or "preset" in r.ok().path]
    assert {f"{op.method.upper()} {op.path}" for op in operations} == {
        "GET /param/{strategy}/{instrument}",
        "POST /learn/outcome/{strategy}/{instrument}/{preset_id}",
        "GET /presets/{strategy}/{instrument}",
        "POST /preset/register/{strategy}/{instrument}",
    }
    for operation in operations:
        for headers in (READ, ADMIN):
            _fuzz(operation, headers)


def _fuzz(operation, headers: dict) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)  # fmt: skip
    def fuzz(case):
        case.call_and_validate(headers=headers, checks=[not_a_server_error])
        if "strategy" in (case.path_parameters or {}):  # again on a real strategy: the deeper paths
            case.path_parameters["strategy"] = "trend_following"
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

    fuzz()


def test_a_config_folder_without_schemas_still_serves_the_bundled_ones(tmp_path, monkeypatch):
    """A deployment's config folder holds settings files only: the service still starts, with the bundled
    strategies (a crash here once kept `huracan serve` from starting at all)."""
    import yaml

    from huracan_assets.serve.build import build_service

    config = tmp_path / "config"
    config.mkdir()
    settings = load_settings("local", home=str(tmp_path / "home"))
    (config / "base.yaml").write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    (config / "local.yaml").write_text("{}\n")
    monkeypatch.setenv("HURACAN_CONFIG_DIR", str(config))
    registry = Registry(sqlite_url(tmp_path / "r.db"))
    service = build_service(load_settings("local"), LocalObjectStore(tmp_path / "store"),
                            read_tokens=frozenset({"read-token"}), registry_factory=lambda: registry)  # fmt: skip
    assert set(service.params.schemas) == {"momentum_breakout", "trend_following", "mean_reversion"}
