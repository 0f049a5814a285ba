"""The suite's xdist groups hold: with ``--dist loadgroup`` (``make test``) a test marked ``xdist_group`` runs on the
worker of its group, so a group's session fixtures (the replay history, the fault world's servers) are built once.
pytest 9.2 derives a node's id anew, and pytest-xdist 3.8's grouping (a suffix written to ``item._nodeid``) silently
stopped: every group was split over the workers and built twice (pytest is pinned to 9.1.1 for it)."""

import pytest

pytestmark = pytest.mark.xdist_group("xdist_probe")


def test_a_grouped_test_carries_its_group_under_loadgroup(request):
    if request.config.getoption("dist", "no") != "loadgroup" and not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not run with --dist loadgroup")
    assert request.node.nodeid.endswith("@xdist_probe"), request.node.nodeid
