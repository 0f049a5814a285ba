"""The world of the fault tests: the Engine wired as in production, on servers the tests may break.

- The object store on S3 (:class:`~huracan_assets_tests.faults.servers.PrivateSeaweed`), the registry and the
  Dagster instance on PostgreSQL (:class:`~huracan_assets_tests.faults.servers.PrivatePostgres`), candles through
  the stock ccxt client from the replay exchange, its clock at 02:00 UTC after the date being run.
- Three real coins of the bundled 1h replay data; windows short enough (14 training days) that three weeks of
  history train models, and gates that promote, so the daily loop publishes champions from its first date.

A *world* is one set of places (a database for the Dagster instance, one for the registry, a prefix in the
bucket). :func:`build_golden` runs the data assets of the history once; each world starts as a copy of it
(databases from templates, objects copied on the server). The undisturbed *reference* world runs the dates in
order; a fault world runs the same dates with a fault each, and after each date its outputs are compared with the
reference's (:func:`store_snapshot`, :func:`registry_snapshot`) and its invariants checked (:func:`invariants`).
"""

from __future__ import annotations

import difflib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from unittest import mock

import sqlalchemy as sa
from dagster import DagsterInstance

from huracan_assets.publishing.champion import champion_symbols, check_pointer
from huracan_assets.settings import Settings, load_settings
from huracan_assets.storage.object_store import S3ObjectStore, sha256_hex
from huracan_assets_tests.conftest import S3_TEST_BUCKET
from huracan_assets_tests.defs.helpers import s3_settings
from huracan_assets_tests.faults.servers import PrivatePostgres, PrivateSeaweed
from huracan_assets_tests.integration.history import RELAXED, after

COINS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
FIRST, HISTORY_LAST = date(2024, 7, 1), date(2024, 7, 20)  # data assets only: the history every world starts from
WINDOWS = {"warmup_days": 3, "training_days": 14, "shadow_days": 2, "embargo_days": 1}
MODELS = {"min_train_rows": 100, "params": {"num_boost_round": 20}}
S3_KEYS = {"AWS_ACCESS_KEY_ID": "faults", "AWS_SECRET_ACCESS_KEY": "faults-secret"}
# columns the registry fills with the wall clock or a run id: the only ones two runs of a date may differ in
VOLATILE_COLUMNS = frozenset({"created_at", "updated_at", "registered_at", "at", "run_id"})
# how a key's candles were had (fetched now from a bar, or reused from the store): a rerun of a date reuses what the
# first run fetched, so these differ; the candles themselves are compared byte for byte
FETCH_PROVENANCE = frozenset({"fetched_from_ts", "reused_bars"})


@dataclass
class Servers:
    pg: PrivatePostgres
    s3: PrivateSeaweed
    replay: object  # ReplayServerHandle

    def environment(self) -> dict[str, str]:
        """What every Engine process of the fault tests needs in its environment (the test process too)."""
        return {"HURACAN_S3_ENDPOINT_URL": self.s3.endpoint, **S3_KEYS}


@dataclass
class World:
    name: str
    servers: Servers

    @property
    def instance_url(self) -> str:
        return self.servers.pg.url(f"{self.name}_dagster")

    @property
    def registry_url(self) -> str:
        return self.servers.pg.url(f"{self.name}_registry")

    @property
    def registry_env(self) -> str:
        return f"HURACAN_FAULTS_{self.name.upper()}_REGISTRY_URL"

    def environment(self) -> dict[str, str]:
        return {**self.servers.environment(), self.registry_env: self.registry_url}

    def settings(self, home: Path, **overrides) -> Settings:
        sections = {
            "home": str(home),
            "partitions": {"start_date": FIRST.isoformat()},
            "object_store": s3_settings(f"{self.name}/"),
            "registry": {"kind": "postgres", "url_env": self.registry_env},
            "exchange": {
                "kind": "ccxt",
                "exchange_id": "binance",
                "base_url": self.servers.replay.url,
                "rate_limit_ms": 1,
            },
            "universe": {"symbols": list(COINS)},
            "windows": WINDOWS,
            "models": MODELS,
            "validation": {"n_folds": 3},
            "promotion": RELAXED,
            **overrides,
        }
        with environment(self.environment()):
            return load_settings("prod", **sections)

    def dagster_home(self, root: Path, instance_config: dict | None = None) -> Path:
        """A Dagster home whose instance is this world's database (``instance_config`` adds sections)."""
        import yaml

        home = root / f"dagster-{self.name}"
        home.mkdir(parents=True, exist_ok=True)
        config = {"storage": {"postgres": {"postgres_url": self.instance_url}}, "telemetry": {"enabled": False}}
        (home / "dagster.yaml").write_text(yaml.safe_dump({**config, **(instance_config or {})}))
        return home

    def instance(self, root: Path) -> DagsterInstance:
        return DagsterInstance.from_config(str(self.dagster_home(root)))

    def store(self) -> S3ObjectStore:
        return S3ObjectStore(
            S3_TEST_BUCKET, prefix=f"{self.name}/", endpoint_url=self.servers.s3.endpoint,
            access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"], secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"],
        )  # fmt: skip


def environment(values: dict[str, str]):
    """``values`` in this process's environment while inside (the settings and the stores read them)."""
    return mock.patch.dict(os.environ, values)


def build_golden(servers: Servers, root: Path) -> World:
    """The history's data assets (:data:`FIRST` .. :data:`HISTORY_LAST`) in a world named ``golden``."""
    from huracan_assets.defs.build import build_definitions
    from huracan_assets.runner import backfill

    golden = World("golden", servers)
    servers.pg.create_database(f"{golden.name}_dagster")
    servers.pg.create_database(f"{golden.name}_registry")
    settings = golden.settings(root / "golden-home")
    with environment(golden.environment()):
        instance = golden.instance(root)
        clock = lambda d: servers.replay.set_now(after(d))  # noqa: E731
        backfill(build_definitions(settings), instance, FIRST, HISTORY_LAST, 40, with_summary=False, clock=clock,
                 job="symbol_day_data_job")  # fmt: skip
        instance.dispose()
    return golden


def copy_world(golden: World, name: str) -> World:
    """A world that starts where ``golden`` is: its databases as templates, its objects copied on the server."""
    pg = golden.servers.pg
    for part in ("dagster", "registry"):
        pg.create_database(f"{name}_{part}", template=f"{golden.name}_{part}")
    world = World(name, golden.servers)
    source, client = golden.store(), golden.store()._client
    for key in source.list(""):
        client.copy_object(
            Bucket=S3_TEST_BUCKET, Key=f"{name}/{key}", CopySource={"Bucket": S3_TEST_BUCKET, "Key": f"golden/{key}"}
        )
    return world


# ----------------------------------------------------------------------------------------------- what is compared
# documents that record when or by which run they were written: compared without those fields
STAMPED = {"_status/": "run_id", "champion/": "promoted_at"}


def _normalized(key: str, data: bytes) -> bytes:
    """The bytes compared between two runs of a date: a status marker without the id of the run that wrote it, a
    champion pointer without the time it was written."""
    for prefix, stamp in STAMPED.items():
        if key.startswith(prefix) and key.endswith(".json"):
            document = json.loads(data)
            document.pop(stamp, None)
            return json.dumps(document, sort_keys=True).encode()
    return data


# what the deployed sensors send operators (the alert ledger): it depends on the wall clock and on the faults
# themselves (a killed run is alerted), so it is not an output a rerun must reproduce
NOT_COMPARED = ("alerts/",)


def store_snapshot(store) -> tuple[dict[str, str], dict[str, str]]:
    """Every object under the world's prefix but :data:`NOT_COMPARED`: key -> sha256 of its (normalized) bytes; and
    the JSON documents' text (summaries, pointers, markers: small), so a difference can be shown, not only named."""
    hashes, texts = {}, {}
    for key in store.list(""):
        if not key.startswith(NOT_COMPARED):
            data = _normalized(key, store.get(key))
            hashes[key] = sha256_hex(data)
            if key.endswith(".json"):
                texts[key] = json.dumps(json.loads(data), indent=1, sort_keys=True)
    return hashes, texts


def registry_snapshot(url: str) -> dict[str, list[tuple]]:
    """Every row of every registry table without its :data:`VOLATILE_COLUMNS`, sorted (duplicates kept)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            meta = sa.MetaData()
            meta.reflect(conn)
            tables = {}
            for name, table in sorted(meta.tables.items()):
                columns = [c for c in table.columns if c.name not in VOLATILE_COLUMNS]
                rows = [dict(row._mapping) for row in conn.execute(sa.select(*columns))]
                for row in rows:
                    if isinstance(row.get("detail"), dict):
                        row["detail"] = {k: v for k, v in row["detail"].items() if k not in FETCH_PROVENANCE}
                tables[name] = sorted(tuple(repr(v) for v in row.values()) for row in rows)
            return tables
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Snapshot:
    store: dict[str, str]
    registry: dict[str, list[tuple]]
    texts: dict[str, str] = field(default_factory=dict)


def snapshot(world: World, store=None) -> Snapshot:
    """The world's outputs: its objects (in ``store``, default its S3 prefix) and its registry rows."""
    hashes, texts = store_snapshot(store or world.store())
    return Snapshot(hashes, registry_snapshot(world.registry_url), texts)


def _text_diff(key: str, got: Snapshot, want: Snapshot, lines: int = 16) -> str:
    """The first lines of a unified diff of a JSON document that differs (empty for other objects)."""
    if key not in got.texts or key not in want.texts:
        return ""
    diff = difflib.unified_diff(want.texts[key].splitlines(), got.texts[key].splitlines(), "reference", "rerun",
                                n=1, lineterm="")  # fmt: skip
    return "\n" + "\n".join(list(diff)[:lines])


def differences(got: Snapshot, want: Snapshot) -> list[str]:
    """What differs between two snapshots, in words (empty: the same outputs, byte for byte)."""
    found = [f"object {k}: {'missing' if k not in got.store else 'extra' if k not in want.store else 'differs'}"
             + _text_diff(k, got, want)
             for k in sorted(set(got.store) | set(want.store)) if got.store.get(k) != want.store.get(k)]  # fmt: skip
    for table in sorted(set(got.registry) | set(want.registry)):
        have, expected = Counter(got.registry.get(table, [])), Counter(want.registry.get(table, []))
        if have != expected:
            missing, extra = list((expected - have).elements()), list((have - expected).elements())
            found.append(f"registry {table}: {len(missing)} rows missing (e.g. {missing[:1]}), {len(extra)} rows extra"
                         f" (e.g. {extra[:1]})")  # fmt: skip
    return found


def invariants(world: World, before: Snapshot, store=None) -> list[str]:
    """What must hold right after a fault, before anything is rerun (empty: all hold).

    - every champion pointer verifies (its bundle is there and matches its hashes);
    - every object's bytes match the sha256 recorded with it: nothing partial under a final key;
    - no registry row is duplicated, and every row of ``before`` (the state the date started from) is still there;
    - no object of ``before`` is lost or changed."""
    store = store or world.store()
    broken = []
    for symbol in champion_symbols(store):
        ok, why = check_pointer(store, symbol)
        if not ok:
            broken.append(f"champion pointer {symbol}: {why}")
    for key in store.list(""):
        data, recorded = store.get(key), store.info(key).sha256
        if recorded is None or recorded != sha256_hex(data):
            broken.append(f"object {key}: bytes do not match the recorded sha256 {recorded}")
    now = snapshot(world, store)
    for table, rows in now.registry.items():
        dupes = [row for row, n in Counter(rows).items() if n > 1]
        if dupes:
            broken.append(f"registry {table}: {len(dupes)} duplicated rows")
        lost = Counter(before.registry.get(table, [])) - Counter(rows)
        if lost and table not in REWRITTEN_TABLES:
            broken.append(f"registry {table}: {sum(lost.values())} rows of the earlier dates lost")
    lost_objects = [k for k, sha in before.store.items() if k not in now.store]
    if lost_objects:
        broken.append(f"{len(lost_objects)} objects of the earlier dates lost, e.g. {lost_objects[:3]}")
    return broken


# tables whose rows a date replaces by design (one row per key holding the latest state), so a row of an earlier
# date may legitimately change: the comparison with the reference after the rerun covers them
REWRITTEN_TABLES = frozenset({"param_state", "posteriors", "param_evidence", "symbol_status"})
