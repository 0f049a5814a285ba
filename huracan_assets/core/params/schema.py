"""Strategy schemas of the parameter controller: the parameters a preset sets, the presets, the safe preset and the
contextual features, read from ``config/strategy_schemas/<strategy>.yaml`` and validated strictly.

A schema is configuration, so a mistake in it must fail where it is loaded, with the file, the strategy, the preset
and the parameter named, never later as a wrong order. What is refused:

* unknown keys anywhere (a typo is not silently a default);
* a parameter whose ``min >= max``, or whose bounds are not finite, or not integral for an ``int`` parameter;
* a preset that misses a parameter, names one the schema does not have, or holds a value outside the bounds (the
  error names strategy, preset, parameter, value and bounds), a non-number (``true`` is not 1), or a non-integral
  value for an ``int`` parameter;
* a ``safe_preset`` that is not one of the presets; fewer than two presets (nothing to choose from);
* duplicate feature names, or a feature with only one bound or ``min >= max``.

Values are normalised: an ``int`` parameter's value is a Python ``int`` (``3.0`` in YAML is 3), a ``float``
parameter's a ``float``; so the parameter hash (:func:`params_hash`, part of a preset's ``config_id``) is the same
however the number was written.

**Context vector.** :meth:`StrategySchema.context` turns a mapping of feature values into the bandit's
``x = [1, f_1, ..., f_k]`` (a bias term, then the features in the schema's order). A feature with bounds is clipped
to them and mapped to ``[0, 1]`` (``(f - min) / (max - min)``): the features then share one scale, so the bandit's
single prior precision shrinks them alike (a volatility of 0.01 and a regime share of 0.8 would otherwise get very
different effective priors), and a value outside the range the schema vouches for does not extrapolate the linear
model. A feature without bounds enters as it is. Every schema feature must be given, finite; unknown names are
refused (a renamed feature upstream must not silently become a missing one).

File reading is here because this is configuration loading (as ``huracan_assets/settings.py``); nothing else in
the module does I/O.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"  # strategy, parameter and feature names
PRESET_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
PARAMS_HASH_CHARS = 12  # hex characters of the parameter hash in a config_id (48 bits)

ParamValue = int | float


class SchemaError(ValueError):
    """A strategy schema file that cannot be loaded: the file and the reason."""


class PresetError(ValueError):
    """A preset that does not fit its strategy's schema: the strategy, the preset and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParamSpec(_Strict):
    """One tunable parameter: its type and inclusive bounds."""

    type: Literal["int", "float"]
    min: float
    max: float
    description: str = ""

    @model_validator(mode="after")
    def _bounds(self) -> ParamSpec:
        if not (math.isfinite(self.min) and math.isfinite(self.max)):
            raise ValueError(f"bounds must be finite, got min={self.min!r}, max={self.max!r}")
        if self.min >= self.max:
            raise ValueError(f"min must be < max, got min={self.min!r}, max={self.max!r}")
        if self.type == "int" and not (float(self.min).is_integer() and float(self.max).is_integer()):
            raise ValueError(f"an int parameter needs integral bounds, got min={self.min!r}, max={self.max!r}")
        return self


class FeatureSpec(_Strict):
    """One contextual feature; optional bounds (both or neither) clip and scale it to [0, 1] in the context."""

    name: str = Field(pattern=NAME_PATTERN)
    min: float | None = None
    max: float | None = None
    description: str = ""

    @model_validator(mode="after")
    def _bounds(self) -> FeatureSpec:
        if (self.min is None) != (self.max is None):
            raise ValueError(f"feature {self.name!r}: give both bounds or neither")
        if self.min is not None and self.max is not None:
            if not (math.isfinite(self.min) and math.isfinite(self.max)) or self.min >= self.max:
                raise ValueError(f"feature {self.name!r}: bounds must be finite with min < max")
        return self


class StrategySchema(_Strict):
    """A strategy's parameters, presets (id -> complete parameter set), safe preset and features."""

    strategy: str = Field(pattern=NAME_PATTERN)
    description: str = Field(min_length=1)
    parameters: dict[str, ParamSpec] = Field(min_length=1)
    presets: dict[str, dict[str, Any]] = Field(min_length=2)
    safe_preset: str
    features: tuple[FeatureSpec, ...] = ()

    @field_validator("parameters")
    @classmethod
    def _parameter_names(cls, value: dict[str, ParamSpec]) -> dict[str, ParamSpec]:
        bad = [name for name in value if not re.fullmatch(NAME_PATTERN, name)]
        if bad:
            raise ValueError(f"parameter names must match {NAME_PATTERN}, got {bad}")
        return value

    @field_validator("features")
    @classmethod
    def _unique_features(cls, value: tuple[FeatureSpec, ...]) -> tuple[FeatureSpec, ...]:
        names = [f.name for f in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"feature names must be unique, repeated: {duplicates}")
        return value

    @field_validator("presets")
    @classmethod
    def _check_presets(cls, value: dict[str, dict[str, Any]], info: ValidationInfo) -> dict[str, dict[str, Any]]:
        parameters = info.data.get("parameters")
        if parameters is None:  # the parameters failed validation: that error is reported already
            return value
        strategy = info.data.get("strategy", "?")
        return {pid: check_params(strategy, parameters, pid, params) for pid, params in value.items()}

    @model_validator(mode="after")
    def _safe_preset(self) -> StrategySchema:
        if self.safe_preset not in self.presets:
            raise ValueError(
                f"strategy {self.strategy!r}: safe_preset {self.safe_preset!r} is not a preset; "
                f"presets: {sorted(self.presets)}"
            )
        return self

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def dim(self) -> int:
        """Length of the context vector: the bias term plus one per feature."""
        return 1 + len(self.features)

    def context(self, features: Mapping[str, float]) -> np.ndarray:
        """The bandit's context ``x = [1, f_1, ..., f_k]`` (module docstring: bounds clip and scale to [0, 1])."""
        unknown = sorted(set(features) - set(self.feature_names))
        missing = [name for name in self.feature_names if name not in features]
        if unknown or missing:
            raise ValueError(f"strategy {self.strategy!r}: features missing {missing}, unknown {unknown}")
        x = np.ones(self.dim)
        for i, spec in enumerate(self.features, start=1):
            value = features[spec.name]
            if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
                raise ValueError(f"strategy {self.strategy!r}: feature {spec.name!r} must be a number, got {value!r}")
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"strategy {self.strategy!r}: feature {spec.name!r} must be finite, got {value!r}")
            if spec.min is not None and spec.max is not None:
                value = (min(max(value, spec.min), spec.max) - spec.min) / (spec.max - spec.min)
            x[i] = value
        return x


def check_params(
    strategy: str, parameters: Mapping[str, ParamSpec], preset_id: str, params: Mapping[str, Any]
) -> dict[str, ParamValue]:
    """``params`` normalised (int parameters as ``int``, float ones as ``float``, in the schema's parameter order),
    or :class:`PresetError` naming the strategy, the preset, the parameter, the value and the bounds."""
    where = f"strategy {strategy!r}, preset {preset_id!r}"
    if not isinstance(preset_id, str) or not re.fullmatch(PRESET_ID_PATTERN, preset_id):
        raise PresetError(f"{where}: preset ids must match {PRESET_ID_PATTERN}")
    if not isinstance(params, Mapping):
        raise PresetError(f"{where}: a preset is a mapping of parameter -> value, got {type(params).__name__}")
    unknown = sorted(set(params) - set(parameters))
    missing = [name for name in parameters if name not in params]
    if unknown or missing:
        raise PresetError(f"{where}: parameters missing {missing}, unknown {unknown}")
    out: dict[str, ParamValue] = {}
    for name, spec in parameters.items():
        value = params[name]
        bounds = f"[{_num(spec.min, spec.type)}, {_num(spec.max, spec.type)}]"
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise PresetError(f"{where}: parameter {name!r} must be a number ({spec.type}), got {value!r}")
        if not math.isfinite(value):
            raise PresetError(f"{where}: parameter {name!r} must be finite, got {value!r}")
        if spec.type == "int" and not float(value).is_integer():
            raise PresetError(f"{where}: parameter {name!r} is an int, got {value!r}")
        if not spec.min <= value <= spec.max:
            raise PresetError(f"{where}: parameter {name!r} = {value!r} is outside its bounds {bounds}")
        out[name] = int(value) if spec.type == "int" else float(value)
    return out


def _num(value: float, kind: str) -> str:
    return str(int(value)) if kind == "int" else repr(float(value))


def validate_new_preset(schema: StrategySchema, preset_id: str, params: Mapping[str, Any]) -> dict[str, ParamValue]:
    """A preset to register (``POST /preset/register``): its normalised parameters, or :class:`PresetError` when
    it does not fit the schema or its id is taken (presets are immutable: a config_id must keep its meaning)."""
    normalised = check_params(schema.strategy, schema.parameters, preset_id, params)
    if preset_id in schema.presets:
        raise PresetError(
            f"strategy {schema.strategy!r}, preset {preset_id!r}: the id is taken (presets are immutable)"
        )
    return normalised


def params_hash(params: Mapping[str, ParamValue]) -> str:
    """SHA-256 (hex) of the canonical JSON of normalised parameters (sorted keys, Python float repr)."""
    text = json.dumps({k: params[k] for k in sorted(params)}, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def load_schema(path: Path | str) -> StrategySchema:
    """The schema in one YAML file, or :class:`SchemaError` naming the file and every validation failure."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SchemaError(f"{path}: cannot read the strategy schema: {exc}") from exc
    if not isinstance(data, dict):
        raise SchemaError(f"{path}: a strategy schema is a mapping, got {type(data).__name__}")
    try:
        return StrategySchema.model_validate(data)
    except ValidationError as exc:
        raise SchemaError(f"{path}: invalid strategy schema: {exc}") from exc


def load_schemas(folder: Path | str) -> dict[str, StrategySchema]:
    """Every ``*.yaml`` schema of ``folder`` by strategy name; a file's name must be its strategy's name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SchemaError(f"{folder}: no strategy schema folder")
    schemas: dict[str, StrategySchema] = {}
    for path in sorted(folder.glob("*.yaml")):
        schema = load_schema(path)
        if schema.strategy != path.stem:
            raise SchemaError(f"{path}: the file name must be the strategy name {schema.strategy!r}")
        schemas[schema.strategy] = schema
    return schemas
