"""Every core spec is built when the definitions load: a bad parameter fails there, naming its settings field."""

import os

import pytest

from huracan_assets.defs.build import build_definitions
from huracan_assets.settings import load_settings
from huracan_assets.specs import RECIPES, SpecError, build_specs, recipe_for


def test_the_default_settings_build_every_spec():
    specs = build_specs(load_settings("local"))
    assert len(specs.engines) == 23 and specs.recipe.hash == recipe_for(load_settings("local")).hash
    assert specs.shadow.latency_bars == specs.barrier.entry_lag_bars


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"models": {"params": {"num_leavez": 31}}}, "models"),
        ({"models": {"params": {"learning_rate": -1.0}}}, "models"),
        ({"engines": {"enabled": ["adx_trend", "no_such_engine"]}}, "engines"),
    ],
)
def test_a_bad_parameter_fails_when_the_definitions_load_and_names_its_field(overrides, field):
    settings = load_settings("local", **overrides)
    with pytest.raises(SpecError, match=f"settings {field}"):
        build_specs(settings)
    with pytest.raises(SpecError, match=f"settings {field}"):
        build_definitions(settings)


def test_the_reference_symbol_must_be_one_the_prelude_fetches():
    with pytest.raises(ValueError, match="reference_symbol"):
        load_settings("local", universe={"reference_symbol": "SOLUSDT"})
    settings = load_settings("local", universe={"reference_symbol": "ETHUSDT"})
    assert settings.universe.reference_symbol == "ETHUSDT"


def test_the_recipe_setting_names_a_recipe():
    assert set(RECIPES) == {"default"}
    with pytest.raises(ValueError, match="recipe"):
        load_settings("local", features={"recipe": "fancy"})


def test_the_cli_runs_dagster_with_the_configured_event_batch_size(tmp_path, monkeypatch):
    from huracan_assets.cli import _prepare_env

    for name in ("HURACAN_HOME", "DAGSTER_HOME", "DAGSTER_EVENT_BATCH_SIZE"):
        monkeypatch.setenv(name, "placeholder")  # restored after the test
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE")
    settings = load_settings("local", home=str(tmp_path / "h"), execution={"event_batch_size": 17})
    _prepare_env(settings)
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "17"
    assert os.environ["DAGSTER_HOME"] == str(settings.dagster_home)
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "5")  # an operator's own setting wins
    _prepare_env(settings)
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "5"
