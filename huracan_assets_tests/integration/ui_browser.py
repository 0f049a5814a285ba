"""The Dagster UI of a published home, in a real browser: the home's config, the servers, headless Chromium.

:func:`ui_home` turns a copy of the published history into what a user's machine has: a config folder whose
``local.yaml`` gives exactly the settings the history was built with, a ``workspace.yaml`` naming the code
location (``huracan_assets.definitions``, which builds its settings with ``load_settings()`` from the
environment) and the environment of the processes. :func:`running_dagster` starts ``dagster-webserver`` and
``dagster-daemon`` on it (the daemon launches queued runs and backfills); :func:`chromium` is Debian's
Chromium driven by Python Playwright (no browser download: ``make setup-browser`` installs it with apt-get).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
import yaml

from huracan_assets.settings import Settings
from huracan_assets_tests.conftest import REPO, _free_port, _kill_group
from huracan_assets_tests.integration.history import Published

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "ui"
LOCATION = "huracan_assets"
INSTALL_HINT = "run `make setup-browser` (apt-get install -y chromium) and `make setup-dev` (pip: playwright)"


@dataclass(frozen=True)
class UiHome:
    """What the servers read: the workspace, the config folder and the processes' environment."""

    root: Path
    workspace: Path
    config: Path
    dagster_home: Path
    env: dict[str, str]


def ui_home(published: Published, root: Path) -> UiHome:
    """The published history as a user's home: ``config/`` (base.yaml and a local.yaml with the history's
    settings), ``workspace.yaml`` and the environment (``HURACAN_CONFIG_DIR``, ``HURACAN_HOME``,
    ``DAGSTER_HOME`` = the history's Dagster instance)."""
    settings = published.settings()
    config = root / "config"
    config.mkdir(parents=True)
    shutil.copy(REPO / "config" / "base.yaml", config / "base.yaml")
    (config / "local.yaml").write_text(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False))
    dagster_home = published.history.dagster / "dagster_home"
    instance_yaml = dagster_home / "dagster.yaml"
    instance = yaml.safe_load(instance_yaml.read_text()) or {}
    instance["nux"] = {"enabled": False}  # no first-run dialog over the pages
    instance_yaml.write_text(yaml.safe_dump(instance))
    workspace = root / "workspace.yaml"
    location = {"module_name": "huracan_assets.definitions", "working_directory": str(REPO),
                "location_name": LOCATION}  # fmt: skip
    workspace.write_text(yaml.safe_dump({"load_from": [{"python_module": location}]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HURACAN_", "DAGSTER_"))}
    env.update(
        HURACAN_CONFIG_DIR=str(config),
        HURACAN_HOME=str(settings.home),
        HURACAN_ENV="local",
        DAGSTER_HOME=str(dagster_home),
    )
    return UiHome(root, workspace, config, dagster_home, env)


def settings_through_env(home: UiHome) -> Settings:
    """The settings the code location builds: ``load_settings()`` under the servers' environment."""
    from huracan_assets.settings import load_settings

    with mock.patch.dict(os.environ, home.env, clear=True):
        return load_settings()


# ---------------------------------------------------------------------------------------------------- servers
@dataclass
class Dagster:
    url: str
    logs: dict[str, Path]

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        """A GraphQL answer (only to wait for something the UI started, never to act)."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer = json.loads(resp.read())
        assert "errors" not in answer, answer
        return answer["data"]

    def tails(self, chars: int = 4000) -> str:
        return "\n".join(
            f"----- {name} ({path}) -----\n{path.read_text(errors='replace')[-chars:]}"
            for name, path in self.logs.items()
        )


LOCATION_QUERY = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def _wait_until_loaded(dagster: Dagster, procs: dict[str, subprocess.Popen], deadline: float) -> None:
    """``/server_info`` answers, then the code location is loaded (not an error)."""
    while True:
        dead = [name for name, proc in procs.items() if proc.poll() is not None]
        if dead or time.monotonic() > deadline:
            raise RuntimeError(f"dagster did not start ({dead or 'timeout'}):\n{dagster.tails()}")
        try:
            with urllib.request.urlopen(f"{dagster.url}/server_info", timeout=5):
                pass
            [entry] = dagster.graphql(LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
            if entry["loadStatus"] == "LOADED":
                loaded = entry["locationOrLoadError"]
                if loaded["__typename"] != "RepositoryLocation":
                    raise RuntimeError(f"the code location did not load: {loaded}\n{dagster.tails()}")
                return
        except (OSError, AssertionError, KeyError, ValueError):
            pass
        time.sleep(1)


@contextmanager
def running_dagster(home: UiHome, timeout: float = 180) -> Iterator[Dagster]:
    """``dagster-webserver`` and ``dagster-daemon`` on the home; both ended (process groups) on the way out,
    their logs printed when the body raised."""
    port = _free_port()
    bin_dir = Path(sys.executable).parent
    workspace = str(home.workspace)
    commands = {
        "webserver": [str(bin_dir / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", workspace],
        "daemon": [str(bin_dir / "dagster-daemon"), "run", "-w", workspace],
    }
    dagster = Dagster(f"http://127.0.0.1:{port}", {name: home.root / f"{name}.log" for name in commands})
    procs: dict[str, subprocess.Popen] = {}
    files = []
    try:
        for name, command in commands.items():
            log = dagster.logs[name].open("wb")
            files.append(log)
            procs[name] = subprocess.Popen(command, cwd=home.root, env=home.env, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        _wait_until_loaded(dagster, procs, time.monotonic() + timeout)
        yield dagster
    except BaseException:
        print(f"\n===== dagster logs =====\n{dagster.tails()}")
        raise
    finally:
        for proc in procs.values():
            _kill_group(proc, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _kill_group(proc, signal.SIGKILL)
                proc.wait(timeout=10)
        for log in files:
            log.close()


# ---------------------------------------------------------------------------------------------------- browser
@contextmanager
def chromium() -> Iterator[object]:
    """A headless Debian Chromium through Playwright; the test is skipped when either is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM}: {INSTALL_HINT}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(f"Python playwright is not installed: {INSTALL_HINT}")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page, name: str, shots: list[Path]) -> Path:
    """A full-page screenshot under ``test-artifacts/ui/`` (kept after the test)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{len(shots) + 1:02d}_{name}.png"
    page.screenshot(path=str(path), full_page=True)
    shots.append(path)
    return path


# ------------------------------------------------------------------------------------------------------ pages
# the asset names the global graph draws inside its clipping viewport (a long name is middle-truncated: "a…b")
_GRAPH_NAMES_IN_VIEW = """() => {
  const svg = document.querySelector('foreignObject')?.ownerSVGElement;
  if (!svg) return [];
  let clip = svg;
  while (clip && getComputedStyle(clip).overflow !== 'hidden') clip = clip.parentElement;
  const box = (clip || svg).getBoundingClientRect();
  return [...document.querySelectorAll('[class*="AssetNode_assetName"]')].filter(e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.left >= box.left && r.right <= box.right && r.top >= box.top && r.bottom <= box.bottom;
  }).map(e => e.textContent.trim());
}"""

# every <img> of an element: loaded (complete) and decoded (naturalWidth > 0), or not
_IMAGES = """root => [...root.querySelectorAll('img')].map(i => ({
  alt: i.alt, src: (i.getAttribute('src') || '').slice(0, 40), complete: i.complete, width: i.naturalWidth,
}))"""


def _label_is(label: str, name: str) -> bool:
    if "…" not in label:
        return label == name
    head, _, tail = label.partition("…")
    return name.startswith(head) and name.endswith(tail) and len(name) > len(head) + len(tail)


def graph_names_in_view(page, expected: set[str]) -> set[str]:
    """The expected asset names whose node the global graph shows inside its viewport (truncated labels
    resolved against ``expected``; a label matching two names counts for neither)."""
    seen = set()
    for label in page.evaluate(_GRAPH_NAMES_IN_VIEW):
        matches = [name for name in expected if _label_is(label, name)]
        if len(matches) == 1:
            seen.add(matches[0])
    return seen


def images_of(locator) -> list[dict]:
    """``alt``, the ``src``'s start, ``complete`` and ``naturalWidth`` of every <img> under ``locator``, once
    the browser has finished loading them (a data: URI decodes or fails at once; a remote one may take time)."""
    locator.evaluate("root => Promise.all([...root.querySelectorAll('img')].map(i => i.decode().catch(() => null)))")
    return locator.evaluate(_IMAGES)


def broken(images: list[dict]) -> list[dict]:
    return [i for i in images if not (i["complete"] and i["width"] > 0)]
