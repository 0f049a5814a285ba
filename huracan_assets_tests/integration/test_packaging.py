"""A built wheel carries what the package needs at run time, and finds it with no repository around.

The wheel is built from a copy of the project (so the build leaves nothing in the working tree), its file list
must hold the YAML settings, the Alembic migrations and the bundled sample, and the extracted wheel is then
imported from another directory: it must load its packaged settings, see its sample data and migrate a fresh
SQLite registry to the head revision. No network: the build uses the project venv's setuptools.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from huracan_assets.registry.client import MIGRATIONS_DIR
from huracan_assets.registry.tables import TABLES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "huracan_assets"
# what is not part of the build (the copy would only be slower)
_NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".tmp", ".*_cache", "huracan_assets_tests"
)

_PROBE = """
import json, sys
from pathlib import Path
import huracan_assets
from huracan_assets import settings
from huracan_assets.registry.client import Registry, sqlite_url
from sqlalchemy import inspect

home = Path(sys.argv[1])
loaded = settings.load_settings("local")
registry = Registry(sqlite_url(home / "registry.db"))
print(json.dumps({
    "package": huracan_assets.__file__,
    "config_dir": str(settings.config_dir()),
    "config_files": sorted(p.name for p in settings.config_dir().glob("*.yaml")),
    "home": str(loaded.home),
    "data_dir": str(loaded.data_dir),
    "sample_files": sorted(p.name for p in loaded.data_dir.rglob("*.parquet")),
    "revision": registry.current_revision(),
    "tables": sorted(inspect(registry.engine).get_table_names()),
}))
"""


def _package_files(folder: Path, pattern: str) -> set[str]:
    """Wheel names (``huracan_assets/...``) of the repository's files under ``folder`` matching ``pattern``."""
    return {
        path.relative_to(REPO).as_posix()
        for path in folder.rglob(pattern)
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCES)
    out = root / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        cwd=source,
        check=True,
        timeout=300,
    )
    (built,) = out.glob("huracan_engine-*.whl")
    return built


def test_wheel_lists_config_migrations_and_sample(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())

    config = {f"huracan_assets/config/{path.name}" for path in (REPO / "config").glob("*.yaml")}
    migrations = _package_files(MIGRATIONS_DIR, "*")
    sample = _package_files(PACKAGE / "sample_data", "*")
    assert {"huracan_assets/config/base.yaml", "huracan_assets/config/local.yaml"} <= config
    assert any(name.endswith(".py") for name in migrations if "/versions/" in name)
    assert any(name.endswith(".parquet") for name in sample)

    assert sorted(config - names) == []
    assert sorted(migrations - names) == []
    assert sorted(sample - names) == []
    assert not [name for name in names if name.startswith("huracan_assets_tests")]


def test_installed_wheel_loads_settings_and_migrates_from_elsewhere(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    home = tmp_path / "home"
    env = {name: value for name, value in os.environ.items() if not name.startswith("HURACAN_")}
    env |= {"PYTHONPATH": str(site), "HURACAN_HOME": str(home)}

    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(home)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    probe = json.loads(done.stdout.strip().splitlines()[-1])

    packaged = site / "huracan_assets"
    assert Path(probe["package"]) == packaged / "__init__.py"  # the wheel's copy, not the repository's
    assert Path(probe["config_dir"]) == packaged / "config"
    assert probe["config_files"] == sorted(path.name for path in (REPO / "config").glob("*.yaml"))
    assert Path(probe["home"]) == home
    assert Path(probe["data_dir"]) == packaged / "sample_data" / "ohlcv"
    assert probe["sample_files"] == sorted(path.name for path in (PACKAGE / "sample_data").rglob("*.parquet"))
    assert probe["revision"] == ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert set(TABLES) <= set(probe["tables"])
