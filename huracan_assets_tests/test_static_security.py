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


# third-party images that start as root only to own their data volume and then drop to the server's own user,
# with the first tag that does so (None: every tag); and images whose default user is unprivileged already
DROPS_TO_ITS_USER = {"postgres": None, "chrislusf/seaweedfs": (4, 1)}
UNPRIVILEGED_IMAGES = {"prom/prometheus", "grafana/grafana"}


def _image(svc: dict) -> tuple[str, tuple[int, ...] | None]:
    """The image's name and its version (``${VAR:-default}`` resolved to its default; None if not numeric)."""
    ref = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(svc.get("image", "")))
    name, _, tag = ref.partition(":")
    version = tuple(int(p) for p in tag.split(".")) if re.fullmatch(r"\d+(\.\d+)*", tag) else None
    return name, version


def _root(user) -> bool:
    return user is not None and str(user).split(":")[0] in ("root", "0")


def root_services(compose: dict, engine_user: str) -> list[str]:
    """Services of ``compose`` whose long-running process would run as root, each with why. Allowed: the Engine's
    image (its Dockerfile's last ``USER``), an unprivileged ``user:``, an image that drops to its own user (from the
    tag that does), an image unprivileged by default, and a root one-shot that only ``chown``s, with no network,
    that a service waits for (``service_completed_successfully``)."""
    services = compose["services"]
    awaited = {dep for svc in services.values() for dep, cond in (svc.get("depends_on") or {}).items()
               if isinstance(cond, dict) and cond.get("condition") == "service_completed_successfully"}  # fmt: skip
    found = []
    for name, svc in services.items():
        user = svc.get("user")
        engine = "build" in svc or "huracan-engine" in str(svc.get("image", ""))
        image, version = _image(svc)
        if _root(user):
            one_shot = svc.get("network_mode") == "none" and (svc.get("entrypoint") or [""])[0] == "chown"
            if not (one_shot and name in awaited and svc.get("restart", "no") == "no"):
                found.append(f"{name}: user {user}")
        elif user is None and engine and _root(engine_user):
            found.append(f"{name}: the Engine's image runs as {engine_user}")
        elif user is None and not engine and image not in UNPRIVILEGED_IMAGES:
            if image not in DROPS_TO_ITS_USER:
                found.append(f"{name}: {image} runs as root by default and sets no user")
            elif DROPS_TO_ITS_USER[image] and (version is None or version < DROPS_TO_ITS_USER[image]):
                found.append(f"{name}: {image} drops to its own user only from {DROPS_TO_ITS_USER[image]}")
    return found


def test_every_container_runs_as_a_non_root_user():
    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    engine_user = _final_user((REPO / "docker" / "Dockerfile").read_text())
    assert root_services(compose, engine_user) == []
    assert {"ui-proxy", "seaweedfs", "postgres", "ui-proxy-volumes"} <= set(compose["services"])


def test_the_user_guard_catches_planted_root_containers():
    import copy

    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    plants = {
        "ui-proxy": lambda s: s["ui-proxy"].pop("user"),  # Caddy's image runs as root
        "seaweedfs": lambda s: s["seaweedfs"].update(image="chrislusf/seaweedfs:${SEAWEEDFS_TAG:-latest}"),
        "ui-proxy-volumes": lambda s: s["ui-proxy-volumes"].pop("network_mode"),
        "code": lambda s: s["code"].update(user="0"),
    }
    for name, plant in plants.items():
        broken = copy.deepcopy(compose)
        plant(broken["services"])
        assert [f.split(":")[0] for f in root_services(broken, "dagster")] == [name], name
    assert root_services(compose, "root") != []  # the Engine's image itself as root


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
