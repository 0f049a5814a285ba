"""No secret leaves the environment: a production-wired run with fake but recognisable secrets, then a scan of
everything the run wrote.

The run is the daily graph's three runs (prelude, every symbol x day asset, summary) over a few days and coins, the
way production wires it: the object store on S3 (SeaweedFS), the registry and the Dagster instance on PostgreSQL
(each URL carrying a password), the stock ccxt client with exchange API keys against the replay exchange, and the
summary sent to Telegram (a bot token, and a Bot API address where nothing listens, so the error path runs too).
Every secret is a recognisable string. Then the scan reads:

- what the processes printed (stdout, stderr) and logged (Python logging);
- the Dagster instance: every event of every run (messages, metadata, errors), the runs' tags and config;
- every object under the run's prefix in the object store;
- every row of every table of the registry;
- every file under the Engine's home and the Dagster home.

None holds any secret. The scanner is shown to find a secret planted in each kind of place, so an empty result
means something."""

import uuid
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance
from dagster._serdes import serialize_value

from huracan_assets.exchange.replay import running_replay_server
from huracan_assets.runner import run_prelude, run_summary, run_symbol_days
from huracan_assets.settings import load_settings
from huracan_assets.storage.object_store import S3ObjectStore
from huracan_assets_tests.conftest import S3_TEST_BUCKET
from huracan_assets_tests.defs.helpers import defs_for, s3_settings
from huracan_assets_tests.integration.history import after

pytestmark = pytest.mark.integration

FIRST, LAST = date(2024, 3, 1), date(2024, 3, 11)


def _secrets() -> dict[str, str]:
    tag = uuid.uuid4().hex[:12]
    return {
        "AWS_ACCESS_KEY_ID": f"AKIAHX5{tag.upper()}",
        "AWS_SECRET_ACCESS_KEY": f"hx5ecret-s3-{tag}",
        "HURACAN_TELEGRAM_TOKEN": f"7000000001:hx5ecret-tg-{tag}",
        "HURACAN_EXCHANGE_API_KEY": f"hx5ecret-api-key-{tag}",
        "HURACAN_EXCHANGE_API_SECRET": f"hx5ecret-api-secret-{tag}",
        "HURACAN_SERVE_READ_TOKEN": f"hx5ecret-read-{tag}",
        "HURACAN_SERVE_ADMIN_TOKEN": f"hx5ecret-admin-{tag}",
        "PG_PASSWORD": f"hx5ecret-pg-{tag}",
    }


def _with_password(url: str, password: str) -> str:
    """``postgresql+psycopg2://user@host/db`` with a password (the test server trusts local connections, so any
    password connects: the point is that it is in the URL the Engine holds)."""
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user.split(':')[0]}:{password}@{host}"


def _instance_from_env(home: Path, url: str, monkeypatch) -> DagsterInstance:
    """A PostgreSQL instance whose dagster.yaml names the URL's environment variable, as production's does."""
    home.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HURACAN_TEST_DAGSTER_PG_URL", url)
    storage = "storage:\n  postgres:\n    postgres_url:\n      env: HURACAN_TEST_DAGSTER_PG_URL\n"
    (home / "dagster.yaml").write_text(storage + "telemetry:\n  enabled: false\n")
    return DagsterInstance.from_config(str(home))


class Scan:
    """Where each secret was found (``place: [secret names]``)."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.found: dict[str, list[str]] = {}

    def text(self, place: str, value: str | bytes) -> None:
        data = value if isinstance(value, bytes) else value.encode("utf-8", "replace")
        hits = [name for name, secret in self.secrets.items() if secret.encode() in data]
        if hits:
            self.found.setdefault(place, []).extend(hits)

    def instance(self, instance: DagsterInstance) -> int:
        events = 0
        for run in instance.get_runs():
            self.text(f"run {run.run_id} tags/config", serialize_value(run.tags) + repr(run.run_config))
            for entry in instance.all_logs(run.run_id):
                self.text(f"run {run.run_id} event", serialize_value(entry))
                events += 1
        return events

    def store(self, store: S3ObjectStore) -> int:
        keys = list(store.list(""))
        for key in keys:
            self.text(f"object {key}", store.get(key))
        return len(keys)

    def database(self, url: str, label: str) -> int:
        engine = sa.create_engine(url)
        rows = 0
        try:
            with engine.connect() as conn:
                for table in sa.inspect(conn).get_table_names():
                    for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):  # names from the catalog
                        self.text(f"{label} table {table}", repr(tuple(row)))
                        rows += 1
        finally:
            engine.dispose()
        return rows

    def files(self, root: Path) -> int:
        paths = [p for p in root.rglob("*") if p.is_file()]
        for path in paths:
            self.text(f"file {path}", path.read_bytes())
        return len(paths)


def test_no_secret_in_logs_events_objects_registry_or_files(
    home, tmp_path, monkeypatch, pg_url, s3_endpoint, test_data_dir, capfd, caplog
):
    secrets = _secrets()
    registry_url = _with_password(pg_url, secrets["PG_PASSWORD"])
    for name, value in secrets.items():
        if name != "PG_PASSWORD":
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("HURACAN_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("HURACAN_REGISTRY_URL", registry_url)
    prefix = f"secrets-{uuid.uuid4().hex[:8]}/"
    with running_replay_server(test_data_dir, now_ms=after(LAST)) as replay:
        settings = load_settings(
            "prod",
            home=str(home),
            partitions={"start_date": FIRST.isoformat()},
            object_store=s3_settings(prefix),
            exchange={
                "kind": "ccxt",
                "exchange_id": "binance",
                "base_url": replay.url,
                "rate_limit_ms": 1,
                "api_key_env": "HURACAN_EXCHANGE_API_KEY",
                "api_secret_env": "HURACAN_EXCHANGE_API_SECRET",
            },
            telegram={"notify": True, "notify_chat_ids": [42], "base_url": "http://127.0.0.1:9/"},  # nothing there
            symbols="BTCUSDT,ETHUSDT,SOLUSDT",
        )
        defs = defs_for(settings)
        instance = _instance_from_env(tmp_path / "dagster_pg_home", _with_password(pg_url, secrets["PG_PASSWORD"]),
                                      monkeypatch)  # fmt: skip
        run_prelude(defs, instance, FIRST, LAST)
        assert run_symbol_days(defs, instance, FIRST, LAST)
        run_summary(defs, instance, LAST, LAST)

    store = S3ObjectStore(S3_TEST_BUCKET, prefix=prefix, endpoint_url=s3_endpoint,
                          access_key_id=secrets["AWS_ACCESS_KEY_ID"],
                          secret_access_key=secrets["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
    messages = [e.user_message for r in instance.get_runs() for e in instance.all_logs(r.run_id)]
    assert any("not sent to Telegram" in m for m in messages)  # the token was used, and the error path ran

    scan = Scan(secrets)
    out, err = capfd.readouterr()
    scan.text("stdout", out)
    scan.text("stderr", err)
    scan.text("logging", "\n".join(r.getMessage() for r in caplog.records))
    counts = {
        "events": scan.instance(instance),
        "objects": scan.store(store),
        "registry rows": scan.database(pg_url, "registry"),
        "home files": scan.files(home),
        "dagster files": scan.files(tmp_path / "dagster_pg_home"),
    }
    assert counts["events"] > 100 and counts["objects"] > 50 and counts["registry rows"] > 50, counts
    assert scan.found == {}, f"secrets found: {scan.found}"

    # the scanner finds a secret wherever one is planted, in each kind of place it reads
    planted = Scan(secrets)
    store.put("planted/leak.txt", f"token={secrets['HURACAN_TELEGRAM_TOKEN']}".encode())
    planted.store(store)
    (home / "leak.log").write_text(f"url={registry_url}")
    planted.files(home)
    planted.text("stderr", f"Authorization: Bearer {secrets['HURACAN_SERVE_READ_TOKEN']}")
    assert set(planted.found) == {"object planted/leak.txt", f"file {home / 'leak.log'}", "stderr"}
    assert sorted(n for names in planted.found.values() for n in names) == [
        "HURACAN_SERVE_READ_TOKEN", "HURACAN_TELEGRAM_TOKEN", "PG_PASSWORD"
    ]  # fmt: skip
