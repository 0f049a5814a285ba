"""Servers a fault test may stop, kill and start again: its own PostgreSQL cluster and its own SeaweedFS.

Never the machine's PostgreSQL nor the session's SeaweedFS (other tests use those): :class:`PrivatePostgres` is a
cluster made with ``initdb`` in a temporary folder, on a port of its own, started and stopped with ``pg_ctl``;
:class:`PrivateSeaweed` is ``weed server -s3`` on a folder and ports of its own, started again on the same ones so
that it keeps its objects.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from huracan_assets_tests.conftest import S3_TEST_BUCKET, WEED_PORTS, _free_port, _kill_group, _start_seaweedfs

PG_USER = "huracan"
PROBE_KEY = "probe/ready"  # outside every world's prefix


def _pg_bin() -> Path:
    """The newest installed PostgreSQL's ``bin`` folder (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if not initdb:
        pytest.fail("PostgreSQL's initdb and pg_ctl are required for the fault tests", pytrace=False)
    return Path(initdb).parent


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (trust authentication on 127.0.0.1, user :data:`PG_USER`).

    The server refuses to run as root, so under root the cluster belongs to the ``postgres`` system user."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="huracan-pg-"))  # outside pytest's root-only tmp folders
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self._user = "postgres" if os.geteuid() == 0 else None
        self._run("initdb", "-D", str(self.data), "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        if self._user:
            shutil.chown(self.root, self._user)
        done = subprocess.run(
            [str(self.bin / tool), *args], user=self._user, capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {done.stdout}{done.stderr}\n{tail}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: disconnect every client and shut down cleanly; ``immediate``: as a crash (recovery on start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> str:
        engine = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                if template:  # a template must have no other session: the pools of the processes that built it
                    conn.execute(
                        sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db"),
                        {"db": template},
                    )
                suffix = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
                conn.execute(sa.text(f'CREATE DATABASE "{name}"{suffix}'))  # names made by the tests
        finally:
            engine.dispose()
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop("immediate")
        except RuntimeError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateSeaweed:
    """``weed server -s3`` of the test's own: :meth:`kill` it, :meth:`start` it again with its objects."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        taken: set[int] = set()
        self.ports = {name: _free_port(taken) for name in WEED_PORTS}
        self.proc = None
        self.log = None
        self.probe = None
        self.start()

    def start(self) -> None:
        """Start the server and wait until it serves objects: started again, it answers the bucket call before its
        filer reads stored objects (``InternalError`` meanwhile, for seconds on a busy machine)."""
        import boto3

        self.proc, self.endpoint, self.log = _start_seaweedfs(self.folder, set(), self.ports)
        client = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="probe",
                              aws_secret_access_key="probe", region_name="us-east-1")  # fmt: skip
        if self.probe is None:
            client.put_object(Bucket=S3_TEST_BUCKET, Key=PROBE_KEY, Body=b"ready")
            self.probe = PROBE_KEY
        deadline = time.monotonic() + 120
        while True:
            try:
                client.get_object(Bucket=S3_TEST_BUCKET, Key=self.probe)["Body"].read()
                return
            except Exception:
                if time.monotonic() > deadline or not self.running:
                    raise
                time.sleep(0.5)

    def kill(self) -> None:
        _kill_group(self.proc, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        if self.running:
            self.kill()
