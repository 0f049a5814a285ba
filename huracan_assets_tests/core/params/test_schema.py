"""Strategy schemas: the bundled ones load and map onto the shadow trader's spec; malformed ones are refused with an
error that says where; new presets are validated; the context vector is built in schema order."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml

from huracan_assets.core.params import (
    PresetError,
    SchemaError,
    StrategySchema,
    load_schema,
    load_schemas,
    params_hash,
    validate_new_preset,
)
from huracan_assets.core.shadow.trader import ShadowSpec

REPO = Path(__file__).resolve().parents[3]
SCHEMAS = REPO / "config" / "strategy_schemas"
BUNDLED = ("mean_reversion", "momentum_breakout", "trend_following")


def _raw(name: str = "momentum_breakout") -> dict:
    return yaml.safe_load((SCHEMAS / f"{name}.yaml").read_text())


def _write(tmp_path: Path, data: dict, name: str | None = None) -> Path:
    path = tmp_path / f"{name or data.get('strategy', 'x')}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_three_bundled_schemas_load():
    schemas = load_schemas(SCHEMAS)
    assert sorted(schemas) == list(BUNDLED)
    for name, schema in schemas.items():
        assert schema.strategy == name
        assert len(schema.presets) >= 3
        assert schema.safe_preset in schema.presets
        assert {"regime_trend", "regime_range", "regime_panic", "volatility"} <= set(schema.feature_names)
        assert schema.dim == 1 + len(schema.features)


@pytest.mark.parametrize("name", BUNDLED)
def test_every_parameter_is_a_shadow_spec_field_and_every_preset_builds_a_valid_spec(name):
    """The 1:1 mapping the schemas' descriptions promise: a later asset replays the shadow trader with
    ``replace(shadow_spec, **preset)``; ShadowSpec's own checks (and its BarrierSpec's) accept every preset."""
    schema = load_schema(SCHEMAS / f"{name}.yaml")
    fields = {f.name for f in dataclasses.fields(ShadowSpec)}
    assert set(schema.parameters) <= fields
    for preset_id, params in schema.presets.items():
        spec = dataclasses.replace(ShadowSpec(), **params)
        assert all(getattr(spec, k) == v for k, v in params.items()), preset_id
        assert spec.barrier_spec.pt_mult == params["pt_mult"]
        assert spec.barrier_spec.max_holding_bars == params["max_holding_bars"]
        for key in schema.parameters:
            assert key in schema.description, f"the description must write down the mapping of {key}"


def test_the_safe_preset_trades_least():
    """The safe preset is the strictest entry of each strategy: the highest threshold and net-edge floor."""
    for schema in load_schemas(SCHEMAS).values():
        safe = schema.presets[schema.safe_preset]
        for params in schema.presets.values():
            assert safe["threshold"] >= params["threshold"]
            assert safe["net_edge_floor_bps"] >= params["net_edge_floor_bps"]


def test_a_preset_outside_the_bounds_is_refused_with_every_detail(tmp_path):
    data = _raw()
    data["presets"]["fast"]["pt_mult"] = 7.5
    with pytest.raises(SchemaError) as err:
        load_schema(_write(tmp_path, data))
    text = str(err.value)
    for part in ("momentum_breakout.yaml", "'momentum_breakout'", "'fast'", "'pt_mult'", "7.5", "[0.5, 6.0]"):
        assert part in text, (part, text)
    data["presets"]["wide"]["max_holding_bars"] = 2  # below an int parameter's min
    data["presets"]["fast"]["pt_mult"] = 3.0
    with pytest.raises(SchemaError, match=r"'wide': parameter 'max_holding_bars' = 2 is outside its bounds \[4, 96\]"):
        load_schema(_write(tmp_path, data))


def _set(*path, value):
    def mutate(d):
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value

    return mutate


def _delete(*path):
    def mutate(d):
        for key in path[:-1]:
            d = d[key]
        del d[path[-1]]

    return mutate


def _rename_preset(d):
    d["presets"]["Fast Preset"] = d["presets"].pop("fast")


def _only_safe(d):
    d["presets"] = {"safe": d["presets"]["safe"]}


# name: (mutation of the bundled momentum_breakout schema, a part of the expected error)
MALFORMED = {
    "top_level_typo": (_set("safe_presets", value="safe"), "safe_presets"),
    "param_key_typo": (_set("parameters", "pt_mult", "maximum", value=3), "maximum"),
    "min_not_below_max": (_set("parameters", "pt_mult", "min", value=6.0), "min must be < max"),
    "int_bounds_not_integral": (_set("parameters", "dedup_bars", "max", value=48.5), "integral bounds"),
    "int_value_not_integral": (_set("presets", "fast", "dedup_bars", value=6.5), "'dedup_bars' is an int, got 6.5"),
    "bool_value": (_set("presets", "fast", "threshold", value=True), "'threshold' must be a number"),
    "string_value": (_set("presets", "fast", "threshold", value="0.05"), "'threshold' must be a number"),
    "missing_parameter": (_delete("presets", "fast", "sl_mult"), "missing ['sl_mult']"),
    "unknown_parameter": (_set("presets", "fast", "vol_window", value=48), "unknown ['vol_window']"),
    "safe_preset_missing": (_set("safe_preset", value="careful"), "safe_preset 'careful' is not a preset"),
    "duplicate_feature": (_set("features", 4, value={"name": "volatility"}), "repeated: ['volatility']"),
    "one_bound_feature": (_delete("features", 3, "max"), "both bounds or neither"),
    "one_preset": (_only_safe, "at least 2 items"),
    "bad_type": (_set("parameters", "pt_mult", "type", value="double"), "'int' or 'float'"),
    "bad_preset_id": (_rename_preset, "preset ids must match"),
    "no_parameters": (_set("parameters", value={}), "at least 1 item"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_schemas_are_refused(tmp_path, name):
    mutate, expected = MALFORMED[name]
    data = copy.deepcopy(_raw())
    if name == "duplicate_feature":
        data["features"].append(None)
    mutate(data)
    with pytest.raises(SchemaError, match=r"momentum_breakout\.yaml: invalid strategy schema") as err:
        load_schema(_write(tmp_path, data))
    assert expected in str(err.value)


def test_the_unmutated_copy_loads(tmp_path):
    """The mutations above fail because of what they change, not because the copy itself is broken."""
    assert load_schema(_write(tmp_path, _raw())).presets == load_schema(SCHEMAS / "momentum_breakout.yaml").presets


def test_file_name_must_be_the_strategy_name_and_files_must_be_mappings(tmp_path):
    _write(tmp_path, _raw(), name="momentum")
    with pytest.raises(SchemaError, match="the file name must be the strategy name 'momentum_breakout'"):
        load_schemas(tmp_path)
    (tmp_path / "momentum.yaml").write_text("- a\n- b\n")
    with pytest.raises(SchemaError, match="a strategy schema is a mapping"):
        load_schemas(tmp_path)
    with pytest.raises(SchemaError, match="no strategy schema folder"):
        load_schemas(tmp_path / "nope")


def test_values_are_normalised_so_the_hash_does_not_depend_on_how_a_number_was_written(tmp_path):
    data = _raw()
    data["presets"]["fast"]["dedup_bars"] = 6.0
    data["presets"]["fast"]["pt_mult"] = 3
    schema = load_schema(_write(tmp_path, data))
    fast = schema.presets["fast"]
    assert type(fast["dedup_bars"]) is int and type(fast["pt_mult"]) is float
    assert params_hash(fast) == params_hash(load_schema(SCHEMAS / "momentum_breakout.yaml").presets["fast"])
    assert params_hash(fast) != params_hash({**fast, "pt_mult": 3.5})


def test_a_new_preset_is_validated_against_the_schema():
    schema = load_schema(SCHEMAS / "mean_reversion.yaml")
    new = {**schema.presets["symmetric"], "max_holding_bars": 8.0, "pt_mult": 1}
    assert validate_new_preset(schema, "eight_bars", new) == {**new, "max_holding_bars": 8, "pt_mult": 1.0}
    with pytest.raises(
        PresetError, match=r"'mean_reversion', preset 'x1': parameter 'sl_mult' = 9 is outside .*\[0\.5"
    ):
        validate_new_preset(schema, "x1", {**new, "sl_mult": 9})
    with pytest.raises(PresetError, match="the id is taken"):
        validate_new_preset(schema, "symmetric", new)
    with pytest.raises(PresetError, match="preset ids must match"):
        validate_new_preset(schema, "has space", new)
    with pytest.raises(PresetError, match=r"unknown \['risk'\]"):
        validate_new_preset(schema, "x2", {**new, "risk": 1})


def test_the_context_is_bias_then_features_in_schema_order_scaled_by_their_bounds():
    schema = load_schema(SCHEMAS / "momentum_breakout.yaml")
    features = {"volatility": 0.01, "regime_panic": 0.0, "regime_range": 0.25, "regime_trend": 0.75}
    assert np.allclose(schema.context(features), [1.0, 0.75, 0.25, 0.0, 0.2], rtol=1e-15, atol=0)
    assert schema.context({**features, "volatility": 0.2})[4] == 1.0  # clipped to the bounds
    assert schema.context({**features, "volatility": -1})[4] == 0.0
    with pytest.raises(ValueError, match=r"missing \['volatility'\], unknown \[\]"):
        schema.context({k: v for k, v in features.items() if k != "volatility"})
    with pytest.raises(ValueError, match=r"unknown \['spread'\]"):
        schema.context({**features, "spread": 1.0})
    with pytest.raises(ValueError, match="must be finite"):
        schema.context({**features, "volatility": float("nan")})


def test_a_feature_without_bounds_enters_as_it_is():
    data = _raw()
    data["features"].append({"name": "funding_bps"})
    schema = StrategySchema.model_validate(data)
    x = schema.context({"regime_trend": 1, "regime_range": 0, "regime_panic": 0, "volatility": 0.05, "funding_bps": -3})
    assert x.tolist() == [1.0, 1.0, 0.0, 0.0, 1.0, -3.0]
