"""The parameter controller's tables (migration 0007) and store: the migration matches the table metadata and
reverses cleanly on both databases, the store maps the pure types exactly, and on PostgreSQL a controller's
posteriors and state survive a process restart: a new process on the same database loads identical posteriors and
makes the same next decision."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from huracan_assets.core.params import (
    BanditSpec,
    Controller,
    ControllerSpec,
    GuardrailSpec,
    PresetError,
    load_schema,
)
from huracan_assets.params import ALL_INSTRUMENTS, ParamStore
from huracan_assets.registry.client import Registry, sqlite_url
from huracan_assets.registry.tables import metadata

REPO = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO / "config" / "strategy_schemas" / "momentum_breakout.yaml"
SCHEMA = load_schema(SCHEMA_PATH)
NEW = ("param_decisions", "param_state", "posteriors", "presets", "param_evidence")  # 0007 and 0008
T0 = datetime(2024, 3, 1, tzinfo=UTC)
SPEC = ControllerSpec(
    bandit=BanditSpec(policy="lints", exploration=30.0),
    guardrails=GuardrailSpec(margin=2.0, confidence=0.8, max_changes_per_day=3, kill_drawdown=5000.0),
    seed=17,
)
NEXT_FEATURES = {"regime_trend": 0.2, "regime_range": 0.7, "regime_panic": 0.1, "volatility": 0.013}
NEXT_AT = T0 + timedelta(days=10)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def registry(request, tmp_path):
    url = sqlite_url(tmp_path / "r.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    reg = Registry(url)
    yield reg
    reg.dispose()


def test_0007_and_0008_create_the_controller_tables_matching_the_metadata(registry):
    assert registry.current_revision() == "0008"
    assert set(NEW) <= set(registry.table_names())
    with registry.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": "huracan_registry_version"})
        diff = compare_metadata(ctx, metadata)
    assert diff == []


def test_the_controller_tables_downgrade_to_0006_and_upgrade_again(registry):
    store = ParamStore(registry)
    store.save_schema_presets(SCHEMA, T0)
    before = set(registry.table_names())
    registry.downgrade("0006")
    assert registry.current_revision() == "0006"
    assert set(registry.table_names()) == before - set(NEW)
    registry.migrate()
    assert registry.current_revision() == "0008" and set(NEW) <= set(registry.table_names())
    assert registry.select("presets") == []


def _history(ctl: Controller, instrument: str = "BTCUSDT", rounds: int = 60):
    """Decisions with positions, settlements and a replay of every preset, with fixed outcomes."""
    rng = np.random.default_rng(5)
    state, decisions = ctl.initial_state(instrument), []
    for t in range(rounds):
        trend = float(rng.uniform())
        features = {"regime_trend": trend, "regime_range": 1 - trend, "regime_panic": 0.0, "volatility": 0.01}
        decision, state = ctl.decide(state, features, T0 + timedelta(hours=t), position_id=f"pos-{t}")
        decisions.append(decision)
        if t % 3:  # every third position stays open
            state = ctl.settle(state, f"pos-{t}", float(rng.normal(10, 30)))
        for arm in ctl.presets:
            mean = {"fast": 40 * trend - 10, "wide": 10 - 10 * trend, "safe": 0.0}.get(arm, 5.0)
            state = ctl.observe(state, arm, features, float(rng.normal(mean, 30)))
    return decisions, state


def test_the_store_round_trips_presets_state_and_decisions(registry):
    store = ParamStore(registry)
    assert store.save_schema_presets(SCHEMA, T0) == 3
    assert store.save_schema_presets(SCHEMA, T0) == 0  # idempotent
    new = {**SCHEMA.presets["fast"], "pt_mult": 3.5, "max_holding_bars": 8.0}
    assert store.register_preset(SCHEMA, "fast_short", new, instrument="BTCUSDT", at=T0)["max_holding_bars"] == 8
    with pytest.raises(PresetError, match="the id is taken"):
        store.register_preset(SCHEMA, "fast_short", new, instrument="ETHUSDT")
    with pytest.raises(PresetError, match=r"'sl_mult' = 0.1 is outside its bounds \[0.5, 6.0\]"):
        store.register_preset(SCHEMA, "bad", {**new, "sl_mult": 0.1})
    assert store.registered_presets(SCHEMA, "BTCUSDT") == {"fast_short": {**new, "max_holding_bars": 8}}
    assert store.registered_presets(SCHEMA, "ETHUSDT") == {}
    rows = registry.select("presets", strategy=SCHEMA.strategy)
    assert sorted((r["instrument"], r["source"]) for r in rows) == [("*", "schema")] * 3 + [("BTCUSDT", "admin")]
    assert ALL_INSTRUMENTS == "*"

    ctl = store.controller(SCHEMA, "BTCUSDT", SPEC)
    assert set(ctl.presets) == {"fast", "wide", "safe", "fast_short"}
    decisions, state = _history(ctl)
    assert store.load_state(SCHEMA.strategy, "BTCUSDT") is None
    store.save_state(state, at=T0)
    store.save_state(state, at=T0)  # idempotent
    loaded = store.load_state(SCHEMA.strategy, "BTCUSDT")
    assert loaded == state and loaded.to_dict() == state.to_dict()
    assert store.load_posteriors(SCHEMA.strategy, "BTCUSDT") == dict(state.posteriors)
    assert len(registry.select("posteriors")) == 4
    for decision in [*decisions, decisions[-1]]:
        store.record_decision(decision)
    rows = store.decisions(SCHEMA.strategy, "BTCUSDT")
    assert [r["config_id"] for r in rows] == [d.config_id for d in decisions]
    assert [r["scores"]["seq"] for r in rows] == list(range(60))
    assert rows[7]["features"] == dict(decisions[7].features)
    assert rows[7]["scores"]["scores"] == dict(decisions[7].scores)
    assert {r["reason"] for r in rows} <= {"explore", "exploit", "hysteresis-hold", "daily-limit"}


CHILD = r"""
import json, sys
from datetime import datetime
from huracan_assets.core.params import load_schema
from huracan_assets.params import ParamStore
from huracan_assets.registry.client import Registry
from huracan_assets_tests.registry.test_param_tables import SCHEMA_PATH, SPEC

url, expected_path = sys.argv[1], sys.argv[2]
expected = json.loads(open(expected_path).read())
registry = Registry(url)
store = ParamStore(registry)
schema = load_schema(SCHEMA_PATH)
state = store.load_state(schema.strategy, "BTCUSDT")
ctl = store.controller(schema, "BTCUSDT", SPEC)
decision, _ = ctl.decide(state, expected["features"], datetime.fromisoformat(expected["at"]))
registry.dispose()
print(json.dumps({
    "state": state.to_dict(),
    "decision": [decision.seq, decision.preset_id, decision.config_id, decision.reason, dict(decision.scores)],
}))
"""


@pytest.mark.integration
def test_posteriors_and_the_next_decision_survive_a_process_restart_on_postgres(pg_url, tmp_path):
    registry = Registry(pg_url)
    assert registry.dialect == "postgresql"
    store = ParamStore(registry)
    store.save_schema_presets(SCHEMA, T0)
    store.register_preset(SCHEMA, "fast_short", {**SCHEMA.presets["fast"], "max_holding_bars": 8}, at=T0)
    ctl = store.controller(SCHEMA, "BTCUSDT", SPEC)
    decisions, state = _history(ctl, rounds=80)
    assert {d.preset_id for d in decisions} != {"safe"}  # the posteriors moved the controller
    store.save_state(state, at=T0 + timedelta(days=4))
    for decision in decisions:
        store.record_decision(decision)
    registry.dispose()  # the "process" that wrote them is gone
    expected, _ = ctl.decide(state, NEXT_FEATURES, NEXT_AT)
    path = tmp_path / "expected.json"
    path.write_text(json.dumps({"features": NEXT_FEATURES, "at": NEXT_AT.isoformat()}))

    out = subprocess.run(
        [sys.executable, "-c", CHILD, pg_url, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    child = json.loads(out.stdout.strip().splitlines()[-1])
    assert child["state"] == json.loads(json.dumps(state.to_dict()))  # identical posteriors, bit for bit
    assert child["state"]["posteriors"]["fast"]["n"] == state.posteriors["fast"].n > 0
    assert child["decision"] == [
        expected.seq,
        expected.preset_id,
        expected.config_id,
        expected.reason,
        dict(expected.scores),
    ]
    reopened = Registry(pg_url, migrate=False)
    assert len(reopened.select("param_decisions")) == 80
    reopened.dispose()
