"""Integration fixtures: the replay history, built once per session (``history.py``) and copied per test."""

from __future__ import annotations

import time

import pytest

from huracan_assets_tests.integration.history import (
    PUBLISHED_DATES,
    History,
    Published,
    build_history,
    copy_history,
    copy_published,
    run_published,
    world,
)


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


@pytest.fixture(scope="session")
def golden_published(golden_history, tmp_path_factory) -> Published:
    """The replay history after the daily loop of two dates with champions promoted and refits published (once
    per session); tests take :func:`published_history`, a copy."""
    root = tmp_path_factory.mktemp("published")
    data = world(root / "world", PUBLISHED_DATES[-1])
    return run_published(golden_history, root / "history", data, PUBLISHED_DATES[-1])


@pytest.fixture
def published_history(golden_published, tmp_path) -> Published:
    """A private copy of :func:`golden_published` for one test."""
    return copy_published(golden_published, tmp_path / "published")
