"""Machine-independent bundles: the same inputs and seed give the same ``model.bin`` and bundle id whatever the
thread budget of the fit, i.e. whatever the core count of the machine (the default ``execution.threads: 0`` is
"all cores").

The bundles are built by the challenger op's own code (``build_specs(settings).training``,
``_Training.publish``) from real 1h candles of ``replay_long``: the feature recipe and the engines' directions
of BTCUSDT, y = the sign of the 12-bar forward return. ``metrics.json`` holds the out-of-sample predictions of
a model fitted on the first 70 %, so a prediction that moved in the last bit would move the bundle id too.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from datetime import date

import numpy as np
import polars as pl
import pytest

from huracan_assets.core.engines.base import engine_input
from huracan_assets.core.models import lgbm as lgbm_kind
from huracan_assets.core.models.base import ModelSpec, TrainSet, fit, load_model
from huracan_assets.core.models.bundle import BundleError, load_bundle_model, make_bundle, verify_bundle
from huracan_assets.defs.models import _Training
from huracan_assets.settings import load_settings
from huracan_assets.specs import build_specs, engine_registry, recipe_for
from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets_tests.conftest import TEST_DATA

REPLAY_LONG = TEST_DATA.parent / "replay_long" / "1h"
DAY = date(2024, 8, 9)
HORIZON = 12  # bars of the forward return that makes y


class _Rows:
    """The registry's ``upsert``, recording rows (the ``models`` row carries ``params``)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def upsert(self, table: str, rows: list[dict]) -> None:
        self.rows += [{"table": table, **r} for r in rows]


@pytest.fixture(scope="module")
def inputs():
    """(model input frame in the challenger's column order, y) from real BTCUSDT candles."""
    settings = load_settings("local")
    recipe, registry = recipe_for(settings), engine_registry(settings)
    btc = pl.read_parquet(REPLAY_LONG / "BTC_USDT.parquet").sort("ts")
    eth = pl.read_parquet(REPLAY_LONG / "ETH_USDT.parquet").sort("ts")
    inp = engine_input(btc, settings.bar_minutes, reference=eth, recipe=recipe)
    directions = registry.directions(inp)
    engines = list(registry.names())
    frame = inp.frame.select("ts", "close", *recipe.names).join(
        directions.select("ts", *[pl.col(e).alias(f"{e}__direction") for e in engines]), on="ts"
    )
    frame = frame.with_columns(
        combined_score=pl.mean_horizontal(*[pl.col(f"{e}__direction") for e in engines]),
        regime_code=pl.lit(1.0),
        y=(pl.col("close").shift(-HORIZON) > pl.col("close")).cast(pl.Int8),
    )
    frame = frame.slice(recipe.warmup_bars, frame.height - recipe.warmup_bars - HORIZON)  # warm-up and unknown y cut
    assert frame.height > 600 and frame["y"].n_unique() == 2
    return frame


def _bundle(inputs: pl.DataFrame, tmp_path, monkeypatch, cores: int, threads: int):
    """The bundle the challenger op writes on a machine with ``cores`` cores and ``execution.threads: threads``."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    settings = load_settings("local", execution={"threads": threads})
    run = _Training(
        settings, build_specs(settings), LocalObjectStore(tmp_path / f"store-{cores}-{threads}"), _Rows(), inputs={}
    )
    assert run.spec.model.threads == (min(threads, cores) if threads else cores)  # the budget really differs
    x = np.ascontiguousarray(inputs.select([pl.col(c).cast(pl.Float64) for c in run.spec.names]).to_numpy())
    y = inputs["y"].to_numpy()
    cut = int(0.7 * len(y))
    early = fit(TrainSet(x[:cut], y[:cut], run.spec.names), run.spec.model)
    p = early.predict_proba(x[cut:])  # with the budget's threads
    metrics = {"out_of_sample": {"p": p, "rows": len(p)}}
    final = fit(TrainSet(x, y, run.spec.names), run.spec.model)
    bundle, model_id = run.publish(DAY, "BTCUSDT", final, {"training": "replay_long"}, metrics, "challengers", None)
    return bundle, model_id, run.reg.rows[0], run.spec.model.threads


def test_the_same_model_on_any_core_count_has_the_same_bytes_and_id(inputs, tmp_path, monkeypatch):
    machines = [(1, 0), (2, 0), (2, 1), (6, 0)]  # (cores, execution.threads): budgets 1, 2, 1 and 6
    built = [_bundle(inputs, tmp_path, monkeypatch, cores, threads) for cores, threads in machines]
    assert sorted({b[3] for b in built}) == [1, 2, 6]
    bundle, model_id, row, _ = built[0]
    for other, other_id, other_row, budget in built[1:]:
        sha = hashlib.sha256(other.files["model.bin"]).hexdigest()
        assert sha == hashlib.sha256(bundle.files["model.bin"]).hexdigest(), budget
        assert other.files == bundle.files, budget  # config.json and metrics.json too
        assert (other_id, other.bundle_id(), other_row["params"]) == (model_id, bundle.bundle_id(), row["params"])
    assert model_id == f"BTCUSDT-{bundle.bundle_id()}" and "threads" not in bundle.config["model"]
    assert b"[num_threads: 0]" in bundle.files["model.bin"]


def _legacy(files: dict[str, bytes], threads: int) -> dict[str, bytes]:
    """A bundle as written before issue 14: the thread budget in config.json's model and in the model string."""
    config = json.loads(files["config.json"])
    config["model"]["threads"] = threads
    out = {
        "model.bin": files["model.bin"].replace(b"[num_threads: 0]", f"[num_threads: {threads}]".encode()),
        "config.json": (json.dumps(config, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode(),
        "metrics.json": files["metrics.json"],
    }
    out["sha256.txt"] = "".join(f"{hashlib.sha256(out[n]).hexdigest()}  {n}\n" for n in out).encode()
    return out


def test_older_bundles_with_a_thread_count_still_load(inputs, tmp_path, monkeypatch):
    bundle, _, _, _ = _bundle(inputs, tmp_path, monkeypatch, 2, 0)
    files = _legacy(bundle.files, 8)
    old = verify_bundle(files)
    assert old.config["model"]["threads"] == 8 and b"[num_threads: 8]" in old.files["model.bin"]
    assert old.bundle_id() != bundle.bundle_id()  # its id is what it was
    model, new = load_bundle_model(old, threads=2), load_bundle_model(bundle)
    assert model.spec.same_model_as(new.spec) and model.spec.threads == 2
    x = inputs.select([pl.col(c).cast(pl.Float64) for c in model.feature_names]).to_numpy()[:200]
    assert np.array_equal(model.predict_proba(x), new.predict_proba(x))
    # a new bundle that names the budget is refused, with the reason
    config = json.loads(bundle.files["config.json"])
    config["model"]["threads"] = 2
    with pytest.raises(BundleError, match="thread budget"):
        make_bundle(new, config, json.loads(bundle.files["metrics.json"]))


def test_an_older_torch_payload_with_threads_loads():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] > 0).astype(np.int8)
    spec = ModelSpec("torch_mlp", {"epochs": 1, "hidden": [8], "device": "cpu"}, seed=3, threads=2)
    model = fit(TrainSet(X, y, ("a", "b", "c", "d")), spec)
    payload = torch.load(io.BytesIO(model.to_bytes()), weights_only=True)
    assert "threads" not in payload["spec"]
    payload["spec"]["threads"] = 4  # as written before issue 14
    buf = io.BytesIO()
    torch.save(payload, buf)
    old = load_model("torch_mlp", buf.getvalue(), threads=2)
    assert old.spec == spec and old.spec.threads == 2
    assert np.array_equal(old.predict_proba(X), model.predict_proba(X))


def test_torch_mlp_runs_on_one_thread_whatever_the_budget(monkeypatch):
    """oneMKL promises identical results only for a fixed thread count: every CPU fit and prediction of the MLP
    runs on one intra-op thread, so its bytes and predictions cannot depend on the budget."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2000, 16))
    y = (X[:, 0] - X[:, 1] + rng.normal(size=2000) > 0).astype(np.int8)
    train = TrainSet(X, y, tuple(f"f{i}" for i in range(16)))
    before, seen, real = torch.get_num_threads(), [], torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), real(n)))
    model = fit(train, ModelSpec("torch_mlp", {"epochs": 3, "device": "cpu"}, seed=5, threads=3))
    p = model.predict_proba(X)
    assert seen == [1, before, 1, before]  # fit, restore; predict, restore
    one = fit(train, ModelSpec("torch_mlp", {"epochs": 3, "device": "cpu"}, seed=5, threads=1))
    assert one.to_bytes() == model.to_bytes() and one.predict_proba(X).tobytes() == p.tobytes()


def test_lightgbm_model_string_keeps_one_thread_entry():
    text = "tree\n...\nparameters:\n[boosting: gbdt]\n[num_threads: 12]\n[deterministic: 1]\nend of parameters\n"
    assert lgbm_kind.without_thread_count(text) == text.replace("[num_threads: 12]", "[num_threads: 0]")
    with pytest.raises(ValueError, match="one num_threads entry"):
        lgbm_kind.without_thread_count(text.replace("[num_threads: 12]\n", ""))
