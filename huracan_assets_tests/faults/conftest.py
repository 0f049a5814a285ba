"""The fault suite's servers, history, reference and deployment: built once per session (one pytest-xdist group).

The faults run in date order on one fault world: each date's fault test starts from the state the previous date
left, which equals the reference's when that test passed (a failed date fails the dates after it too, by design:
their starting state is wrong)."""

from __future__ import annotations

import contextlib
import time
from datetime import date

import pytest

from huracan_assets_tests.faults import world as W
from huracan_assets_tests.faults.deployment import Deployment
from huracan_assets_tests.faults.servers import PrivatePostgres, PrivateSeaweed
from huracan_assets_tests.integration.history import REPLAY_LONG

# one date per fault test, in this order (the reference runs them all, undisturbed)
DATES = tuple(date(2024, 7, 21 + i) for i in range(6))


@pytest.fixture(scope="session")
def fault_servers(tmp_path_factory):
    from huracan_assets.exchange.replay import running_replay_server

    root = tmp_path_factory.mktemp("fault-servers")
    with contextlib.ExitStack() as stack:
        pg = PrivatePostgres()
        stack.callback(pg.close)
        s3 = PrivateSeaweed(root / "weed")
        stack.callback(s3.close)
        replay = stack.enter_context(running_replay_server(REPLAY_LONG, now_ms=W.after(W.FIRST)))
        yield W.Servers(pg, s3, replay)


@pytest.fixture(scope="session")
def golden_world(fault_servers, tmp_path_factory) -> W.World:
    started = time.monotonic()
    golden = W.build_golden(fault_servers, tmp_path_factory.mktemp("golden-world"))
    print(f"\nfault world history built in {time.monotonic() - started:.0f} s")
    return golden


@pytest.fixture(scope="session")
def reference(golden_world, tmp_path_factory) -> dict[date, W.Snapshot]:
    """The undisturbed daily loop of :data:`DATES` (in process): the snapshot after each date, and before the
    first (under ``None``)."""
    from huracan_assets.defs.build import build_definitions
    from huracan_assets.runner import daily_loop

    root = tmp_path_factory.mktemp("reference")
    world = W.copy_world(golden_world, "reference")
    snapshots = {None: W.snapshot(world)}
    replay = golden_world.servers.replay
    with W.environment(world.environment()):
        defs, instance = build_definitions(world.settings(root / "home")), world.instance(root)
        for day in DATES:
            daily_loop(defs, instance, world.store(), day, day, clock=lambda d: replay.set_now(W.after(d)))
            snapshots[day] = W.snapshot(world)
        instance.dispose()
    return snapshots


@pytest.fixture(scope="session")
def deployment(golden_world, tmp_path_factory):
    """The fault world, deployed (code server, webserver, daemon) on its own copy of the history."""
    root = tmp_path_factory.mktemp("fault-deployment")
    world = W.copy_world(golden_world, "faults")
    deployed = Deployment(world, world.settings(root / "home"), root).start()
    yield deployed
    deployed.stop()
