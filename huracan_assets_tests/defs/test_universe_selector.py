"""The universe honours the Telegram selector file, and a corrupt selector never empties the universe."""

from datetime import date

from huracan_assets.runner import run_prelude
from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets.storage.partitioned import PartitionWindow
from huracan_assets_tests.defs.helpers import defs_for, local_settings, sqlite_instance

DAY = date(2024, 3, 8)


def _selected(settings):
    store = LocalObjectStore(settings.store_root)
    frame = PartitionWindow(store, "universe", [DAY.isoformat()])[DAY.isoformat()]
    return sorted(frame.filter("selected")["symbol"].to_list()), frame


def _universe_meta(instance):
    from dagster import AssetKey

    event = instance.get_latest_materialization_event(AssetKey("universe"))
    return event.asset_materialization.metadata


def test_selector_names_the_coins(home, tmp_path, test_data_dir):
    settings = local_settings(test_data_dir)
    LocalObjectStore(settings.store_root).put(
        "control/symbols_selector.json", b'{"symbols": ["ethusdt", "BTC/USDT"], "top_n": 2}'
    )
    instance = sqlite_instance(tmp_path)
    run_prelude(defs_for(settings), instance, DAY, DAY)
    selected, frame = _selected(settings)
    assert selected == ["BTCUSDT", "ETHUSDT"]
    assert set(frame.filter("selected")["reason"]) == {"named explicitly"}
    assert _universe_meta(instance)["source"].value == {DAY.isoformat(): "selector"}


def test_cli_symbols_win_over_the_selector(home, tmp_path, test_data_dir):
    settings = local_settings(test_data_dir, symbols="SOLUSDT")
    LocalObjectStore(settings.store_root).put("control/symbols_selector.json", b'{"symbols": ["ETHUSDT"]}')
    run_prelude(defs_for(settings), sqlite_instance(tmp_path), DAY, DAY)
    assert _selected(settings)[0] == ["SOLUSDT"]


def test_a_corrupt_selector_falls_back_to_the_ranking_and_says_so(home, tmp_path, test_data_dir):
    settings = local_settings(test_data_dir)
    LocalObjectStore(settings.store_root).put("control/symbols_selector.json", b'{"symbols": "BTCUSDT"')
    instance = sqlite_instance(tmp_path)
    run_prelude(defs_for(settings), instance, DAY, DAY)
    assert len(_selected(settings)[0]) == 24  # the ranked universe, not an empty one
    meta = _universe_meta(instance)
    assert meta["source"].value == {DAY.isoformat(): "ranking"} and "not JSON" in meta["selector_error"].value
