"""The compose deploy's way in to the Dagster UI: ``docker/proxy/Caddyfile`` run by a real Caddy (Debian's, from
``make setup-proxy``; compose runs the official image) in front of a stand-in webserver.

A request without credentials, or with a wrong password, is refused with 401 and never reaches the webserver; the
right user and password get through. The password is given to Caddy as its bcrypt hash only."""

import base64
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

CADDYFILE = Path(__file__).resolve().parents[2] / "docker" / "proxy" / "Caddyfile"
PASSWORD = "correct horse battery staple"
PROXY_UID = 1000  # docker/compose.yaml, ui-proxy


def _caddy() -> str:
    binary = shutil.which("caddy") or ("/usr/bin/caddy" if Path("/usr/bin/caddy").exists() else None)
    if binary is None:
        message = "caddy is not installed (make setup-proxy)"
        if os.environ.get("CI"):
            pytest.fail(f"the proxy test must run under CI; {message}", pytrace=False)
        pytest.skip(message)
    return binary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Webserver(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self):
        self.seen.append(self.path)
        body = b"dagster ui"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    caddy = _caddy()
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Webserver)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    hashed = subprocess.run([caddy, "hash-password", "--plaintext", PASSWORD], capture_output=True, text=True,
                            check=True, timeout=60).stdout.strip()  # fmt: skip
    # as in the compose file, Caddy runs as uid 1000 (under root here, the test drops to it): its data and config in
    # a folder of that user's, the Caddyfile a copy it can read
    home = Path(tempfile.mkdtemp(prefix="huracan-caddy-"))
    caddyfile = home / "Caddyfile"
    shutil.copyfile(CADDYFILE, caddyfile)
    drop = {"user": PROXY_UID, "group": PROXY_UID, "extra_groups": []} if os.geteuid() == 0 else {}
    if drop:
        for path in (home, caddyfile):
            os.chown(path, PROXY_UID, PROXY_UID)
    port = _free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "XDG_DATA_HOME": str(home),
           "XDG_CONFIG_HOME": str(home), "HURACAN_UI_SITE": f"http://127.0.0.1:{port}", "HURACAN_UI_USER": "operator",
           "HURACAN_UI_PASSWORD_HASH": hashed, "HURACAN_UI_UPSTREAM": f"127.0.0.1:{upstream.server_port}"}  # fmt: skip
    log = (home / "caddy.log").open("w")
    proc = subprocess.Popen([caddy, "run", "--config", str(caddyfile), "--adapter", "caddyfile"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, **drop)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"caddy exited: {(home / 'caddy.log').read_text()[-2000:]}")
            time.sleep(0.1)
    else:
        pytest.fail("caddy did not listen within 30 s")
    yield url, hashed, proc.pid
    proc.terminate()
    proc.wait(timeout=10)
    upstream.shutdown()
    log.close()
    shutil.rmtree(home, ignore_errors=True)


def _get(url: str, user: str | None = None, password: str | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url)
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_no_credentials_no_ui(proxy):
    url, _, _ = proxy
    _Webserver.seen.clear()
    for path in ("/", "/graphql", "/server_info", "/assets/challenger_model"):
        status, headers, _ = _get(url + path)
        assert status == 401, path
        assert headers.get("Www-Authenticate", "").startswith("Basic"), path
    status, _, _ = _get(url + "/", "operator", "wrong password")
    assert status == 401
    status, _, _ = _get(url + "/", "someone", PASSWORD)
    assert status == 401
    assert _Webserver.seen == []  # nothing refused reached the webserver


def test_the_right_password_reaches_the_ui(proxy):
    url, hashed, _ = proxy
    status, headers, body = _get(url + "/graphql", "operator", PASSWORD)
    assert status == 200 and body == b"dagster ui"
    assert "/graphql" in _Webserver.seen
    assert "Server" not in headers  # the proxy does not advertise itself
    assert PASSWORD not in hashed  # Caddy holds the hash only


def test_the_proxy_serves_as_an_unprivileged_user(proxy):
    """Nothing in the Caddyfile needs root: the proxy above runs as the compose file's uid 1000 (or as the test's own
    unprivileged user)."""
    _, _, pid = proxy
    uids = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:"))
    assert "0" not in uids.split()[1:], uids  # real, effective, saved and filesystem uid
