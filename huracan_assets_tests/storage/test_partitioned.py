"""PartitionWindow.days: a coin's usable days concatenated, the others named."""

from datetime import date

import polars as pl

from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets.storage.partitioned import PartitionWindow, SymbolOutcome, write_frame, write_outcome


def test_window_days_concatenates_usable_days_and_names_the_rest(tmp_path):
    store = LocalObjectStore(tmp_path)
    write_frame(store, "x", "2024-01-01|A", pl.DataFrame({"v": [1]}))
    write_frame(store, "x", "2024-01-03|A", pl.DataFrame({"v": [3]}))
    write_frame(store, "x", "2024-01-02|A", pl.DataFrame({"v": [2]}))
    write_outcome(store, "x", "2024-01-02|A", SymbolOutcome.skipped("held out"), None)
    keys = [f"2024-01-0{d}|A" for d in (1, 2, 3)]
    days = [date(2024, 1, d) for d in (1, 2, 3, 4)]
    frame, missing = PartitionWindow(store, "x", keys).days("A", days)
    assert frame["v"].to_list() == [1, 3]  # the skipped day is held out even though its data is stored
    assert missing == [date(2024, 1, 2), date(2024, 1, 4)]  # 01-04 is outside the window
    assert PartitionWindow(store, "x", keys).days("B", days) == (None, days)
