"""Static guards (issue 19, item 3, in part): no SQL is built from strings, and the Engine's containers run as a
non-root user. Each guard is shown to fail on a planted defect."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "huracan_assets"
SQL_CALLS = {"execute", "exec_driver_sql", "text", "executemany", "executescript"}
SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA|WHERE)\b", re.IGNORECASE)


def _built(node: ast.AST) -> bool:
    """An f-string, a concatenation or %-format, or a ``.format(...)`` call: a string made at run time."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"


def _literal_text(node: ast.AST) -> str:
    return " ".join(n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str))


def string_built_sql(source: str, name: str = "<source>") -> list[str]:
    """Places in ``source`` where SQL is handed to a database call as a string built at run time: the first
    argument of ``execute`` / ``text`` / ``exec_driver_sql`` (...) made by an f-string, ``+``, ``%`` or ``.format``,
    or such a string holding SQL words anywhere. SQLAlchemy constructs (``select``, ``table.insert()``) pass."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in SQL_CALLS and node.args and _built(node.args[0]):
                found.append(f"{name}:{node.lineno}: {called}() of a built string")
        if (
            _built(node)
            and SQL_WORDS.search(_literal_text(node))
            and re.search(
                r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s.+\sSET|DELETE\s+FROM)\b", _literal_text(node), re.I
            )
        ):
            found.append(f"{name}:{node.lineno}: SQL text built at run time")
    return found


def test_no_sql_is_built_from_strings():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        offenders += string_built_sql(path.read_text(), str(path.relative_to(REPO)))
    assert offenders == []


def test_the_sql_guard_catches_planted_string_built_sql():
    planted = {
        'conn.execute(text(f"SELECT * FROM {table} WHERE id = {key}"))': 2,  # the call and the SQL text
        'cur.execute("DELETE FROM runs WHERE id = " + run_id)': 2,
        'conn.exec_driver_sql("UPDATE t SET a = %s" % value)': 2,
        'q = "SELECT a FROM {} WHERE b = 1".format(name)': 1,
    }
    for source, hits in planted.items():
        assert len(string_built_sql(source)) == hits, source
    # parameterized and SQLAlchemy-built statements pass
    assert string_built_sql('conn.execute(text("SELECT 1 FROM t WHERE id = :id"), {"id": key})') == []
    assert string_built_sql("conn.execute(table.delete().where(table.c.id == key))") == []
    assert string_built_sql('log.info(f"stored {n} rows")') == []


def _final_user(dockerfile: str) -> str | None:
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    return users[-1] if users else None


def test_the_engine_image_and_its_services_run_as_a_non_root_user():
    user = _final_user((REPO / "docker" / "Dockerfile").read_text())
    assert user is not None and user.split(":")[0] not in ("root", "0")
    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    engine = [
        name
        for name, svc in compose["services"].items()
        if "build" in svc or "huracan-engine" in str(svc.get("image", ""))
    ]
    assert len(engine) >= 3  # code server, webserver, daemon (and serve, bot, metrics)
    for name in engine:
        assert str(compose["services"][name].get("user", user)).split(":")[0] not in ("root", "0"), name
    # the guard can fail: an image whose last USER is root
    assert _final_user("FROM python\nUSER dagster\nRUN x\nUSER root\n") == "root"
