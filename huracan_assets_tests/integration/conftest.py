"""Integration fixtures: the replay history, built once per session (``history.py``) and copied per test."""

from __future__ import annotations

import time

import pytest

from huracan_assets_tests.integration.history import History, build_history, copy_history


@pytest.fixture(scope="session")
def golden_history(tmp_path_factory) -> History:
    """The session's one build of the replay history; tests take :func:`replay_history`, a copy, never this."""
    started = time.monotonic()
    history = build_history(tmp_path_factory.mktemp("golden") / "history")
    print(f"\nreplay history built once for the session in {time.monotonic() - started:.0f} s")
    return history


@pytest.fixture
def replay_history(golden_history, tmp_path) -> History:
    """A private copy of the replay history for one test (object store, registry, Dagster instance)."""
    return copy_history(golden_history, tmp_path / "history")
