"""The settings loader refuses every malformed settings file with a message naming the field (hypothesis).

Each example writes a config folder: the repository's ``base.yaml`` with one change, and its ``local.yaml``.
- a leaf given a value of another shape (a mapping, a list, a word, a number, a boolean): the settings either
  load and hold exactly that value, or the error names the field's dotted path;
- an unknown key anywhere: refused, naming it;
- the text cut or garbled: the settings load, or the error names the file (and the line, for YAML syntax) or the
  field.
"""

import math
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from huracan_assets.settings import load_settings, settings_environment

CONFIG = Path(__file__).resolve().parents[1] / "config"
BASE_TEXT = (CONFIG / "base.yaml").read_text()
BASE = yaml.safe_load(BASE_TEXT)
LOCAL = (CONFIG / "local.yaml").read_text()
PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _leaves(tree: dict, prefix: tuple = ()) -> list[tuple[str, ...]]:
    out = []
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out += _leaves(value, (*prefix, key))
        else:
            out.append((*prefix, key))
    return out


def _sections(tree: dict, prefix: tuple = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    for key, value in tree.items():
        if isinstance(value, dict) and value and key not in ("params", "thresholds"):  # free-form mappings
            out += _sections(value, (*prefix, key))
    return out


LEAVES = _leaves(BASE)
SECTIONS = _sections(BASE)


def _with(tree: dict, path: tuple, value: object) -> dict:
    out = dict(tree)
    if len(path) == 1:
        out[path[0]] = value
    else:
        out[path[0]] = _with(tree.get(path[0]) or {}, path[1:], value)
    return out


def _load(base_text: str):
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "base.yaml").write_text(base_text)
        Path(folder, "local.yaml").write_text(LOCAL)
        Path(folder, "prod.yaml").write_text("{}\n")
        with settings_environment(Path(folder), "local"):
            return load_settings("local", home=folder)


def _at(dumped: dict, path: tuple) -> object:
    for key in path:
        dumped = dumped[key]
    return dumped


NO_LIMIT = {("universe", "max_spread_bps")}  # settings where infinity is a value: "no limit"


def _same(given_value: object, loaded: object, path: tuple = ()) -> bool:
    if isinstance(given_value, dict) and isinstance(loaded, dict):
        return set(given_value) <= set(loaded) and all(_same(v, loaded[k]) for k, v in given_value.items())
    if isinstance(given_value, list | tuple) and isinstance(loaded, list | tuple):
        return len(given_value) == len(loaded) and all(_same(a, b) for a, b in zip(given_value, loaded, strict=True))
    if isinstance(loaded, float) and not math.isfinite(loaded) and not (path in NO_LIMIT and loaded > 0):
        return False  # no setting is meant to be NaN or infinite: it would pass any bound
    if isinstance(given_value, str) and not isinstance(loaded, str):  # pydantic's lax reading of a word
        if isinstance(loaded, bool):
            return given_value.lower() in (("yes", "true", "on", "1") if loaded else ("no", "false", "off", "0"))
        try:
            return float(given_value) == loaded
        except (TypeError, ValueError):
            return False
    return given_value == loaded or str(given_value) == str(loaded)


garbage = st.one_of(
    st.dictionaries(st.sampled_from(["oops", "x"]), st.integers(0, 3), min_size=1, max_size=2),
    st.lists(st.integers(-3, 3), min_size=1, max_size=3),
    st.sampled_from(["not-a-value", "", "1e999", "-5", "yes"]),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)


@PROPERTY
@given(path=st.sampled_from(LEAVES), value=garbage)
@example(path=("universe", "min_history_days"), value="1e999")  # found by this test: it loaded as inf
@example(path=("promotion", "margin_bps"), value=float("nan"))
@example(path=("windows", "training_days"), value="ninety")
@example(path=("params", "schemas_dir"), value="")  # found by this test: it loaded as the current directory
def test_a_wrong_value_is_loaded_exactly_or_refused_naming_the_field(path, value):
    text = yaml.safe_dump(_with(BASE, path, value))
    dotted = ".".join(path)
    try:
        loaded = _load(text)
    except ValidationError as exc:  # the dotted path, or a section's check naming the field in its message
        text = str(exc)
        assert dotted in text or (path[-1] in text and ".".join(path[:-1]) in text), f"{dotted} not named: {text}"
    except ValueError as exc:
        assert path[-1] in str(exc), f"the error does not name {dotted}: {exc}"
    else:
        assert _same(value, _at(loaded.model_dump(mode="json"), path), path), f"{dotted}={value!r} changed on load"


@PROPERTY
@given(section=st.sampled_from(SECTIONS), key=st.from_regex(r"[a-z][a-z_]{2,12}", fullmatch=True))
def test_an_unknown_key_is_refused_naming_it(section, key):
    if key in _at(BASE, section):
        return
    text = yaml.safe_dump(_with(BASE, (*section, key), 1))
    with pytest.raises(ValidationError) as caught:
        _load(text)
    assert ".".join((*section, key)) in str(caught.value)


@PROPERTY
@given(cut=st.integers(0, len(BASE_TEXT)), junk=st.sampled_from(["", ":", "[", "\t", "- x", "{", "'", ": :"]))
def test_a_cut_or_garbled_file_loads_or_names_where(cut, junk):
    text = BASE_TEXT[:cut] + junk + BASE_TEXT[cut:] if junk else BASE_TEXT[:cut]
    try:
        _load(text)
    except ValidationError as exc:
        assert str(exc).splitlines()[1].strip()  # pydantic names the field on the line after the count
    except ValueError as exc:
        assert "base.yaml" in str(exc) and ("line" in str(exc) or "mapping" in str(exc)), str(exc)


def test_a_yaml_syntax_error_names_the_file_and_line():
    with pytest.raises(ValueError, match=r"base\.yaml is not valid YAML at line 3, column 1"):
        _load("timeframe: 1h\nuniverse: [\n")


def test_settings_written_for_the_workers_load_back(tmp_path):
    """The one setting that may be infinite (no spread filter, the default) survives the round trip of the settings
    folder the worker processes read (``write_settings_folder``)."""
    from huracan_assets.settings import write_settings_folder

    raw = _with(BASE, ("universe", "max_spread_bps"), float("inf"))
    original = _load(yaml.safe_dump(raw))
    assert original.universe.max_spread_bps == math.inf
    folder = write_settings_folder(original, tmp_path / "cfg")
    with settings_environment(folder, "local"):
        assert load_settings("local") == original
