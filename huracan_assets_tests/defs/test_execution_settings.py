"""One setting drives the execution rules of the labels, the walk-forward's costs and the shadow trader: they can
never disagree (core/execution.py)."""

import pytest

from huracan_assets.core.execution import StopSlippage
from huracan_assets.specs import barrier_spec, shadow_spec, stop_slippage
from huracan_assets_tests.defs.helpers import local_settings


def test_the_base_config_fills_at_the_next_open_with_a_stop_slippage(test_data_dir):
    settings = local_settings(test_data_dir)
    assert settings.labels.entry_lag_bars == 1
    assert barrier_spec(settings).entry_lag_bars == shadow_spec(settings).latency_bars == 1
    assert stop_slippage(settings) == shadow_spec(settings).stop_slippage == StopSlippage(1.0, 2.0)


@pytest.mark.parametrize(("lag", "half_spreads", "fixed"), [(0, 0.0, 0.0), (2, 0.5, 3.0)])
def test_labels_walk_forward_and_shadow_read_the_same_execution_settings(test_data_dir, lag, half_spreads, fixed):
    labels = {"entry_lag_bars": lag, "stop_slippage_half_spreads": half_spreads, "stop_slippage_bps": fixed}
    settings = local_settings(test_data_dir, labels=labels)
    shadow, barrier = shadow_spec(settings), barrier_spec(settings)
    assert barrier.entry_lag_bars == shadow.latency_bars == shadow.barrier_spec.entry_lag_bars == lag
    assert stop_slippage(settings) == shadow.stop_slippage == StopSlippage(half_spreads, fixed)
    # and the rest of the trade: the same barriers
    assert (barrier.pt_mult, barrier.sl_mult, barrier.max_holding_bars, barrier.vol_window) == (
        shadow.pt_mult, shadow.sl_mult, shadow.max_holding_bars, shadow.vol_window
    )  # fmt: skip
