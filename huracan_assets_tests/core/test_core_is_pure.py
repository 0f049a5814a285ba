"""The pure core never imports Dagster, boto3, SQL or reads the environment (ARCHITECTURE "Pure core")."""

import ast
from pathlib import Path

import huracan_assets

CORE = Path(huracan_assets.__file__).parent / "core"
BANNED_MODULES = ("dagster", "boto3", "botocore", "sqlalchemy", "alembic", "psycopg2", "psycopg", "ccxt", "telegram")


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        found += [f"{path.name}: import {n}" for n in names if n.split(".")[0] in BANNED_MODULES]
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
            found.append(f"{path.name}: os.{node.attr}")
    return found


def test_core_modules_are_pure():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) >= 5
    assert [v for f in files for v in _violations(f)] == []


def test_the_purity_check_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nimport dagster\nfrom sqlalchemy import select\nx = os.environ['A']\n")
    assert len(_violations(bad)) == 3
