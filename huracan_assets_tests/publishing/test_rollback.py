"""Champion rollback on a local directory and on SeaweedFS: a new, forward history entry; a crash after any step
leaves a valid pointer, and the same rollback run again completes it with one registry row."""

from __future__ import annotations

import datetime as dt

import pytest

from huracan_assets.publishing import ChampionPointer, InjectedCrash, NoChampion, latest_key, read_pointer
from huracan_assets.publishing.decisions import read_decisions, write_decisions
from huracan_assets.publishing.rollback import (
    ROLLBACK_STEPS,
    RollbackRefused,
    champion_history,
    last_decided_day,
    perform_rollback,
    rollback_champion,
    rollback_in_effect,
    rollbacks_of_day,
)
from huracan_assets.registry.client import Registry, sqlite_url
from huracan_assets_tests.publishing.test_champion import RECIPE, SYMBOL, _assert_valid, _flip, _publish

D1, D2, D3 = dt.date(2024, 8, 5), dt.date(2024, 8, 10), dt.date(2024, 8, 12)


@pytest.fixture
def registry(tmp_path):
    reg = Registry(sqlite_url(tmp_path / "registry.db"))
    yield reg
    reg.dispose()


def _two_champions(store, bundles):
    first = _publish(store, bundles["2024-08-01"], D1.isoformat())
    second = _publish(store, bundles["2024-08-07"], D2.isoformat())
    return first, second


def _rollback(store, registry, to: str, **kw):
    return perform_rollback(
        store, registry, SYMBOL, to, "live drawdown", recipe_hash=RECIPE.hash, timeframe="1h", as_of=D3,
        requested_by="cli", **kw,
    )  # fmt: skip


def test_rollback_by_model_id_or_date_is_a_new_forward_entry(store, bundles, registry):
    first, second = _two_champions(store, bundles)
    history_before = {k: store.get(k) for k, _ in champion_history(store, SYMBOL)}

    pointer, wrote = _rollback(store, registry, first.model_id)
    assert wrote and pointer.kind == "rollback" and pointer.as_of == D3
    assert (pointer.model_id, pointer.bucket_path, pointer.sha256) == (first.model_id, first.bucket_path, first.sha256)
    assert pointer.snapshot["rolled_back_from"] == second.model_id and pointer.snapshot["requested_by"] == "cli"
    assert read_pointer(store, SYMBOL) == pointer
    _assert_valid(store)
    # history is never rewritten: the old entries are byte-identical, the rollback is one more, after them
    entries = champion_history(store, SYMBOL)
    assert {k: store.get(k) for k, _ in entries[:-1]} == history_before
    assert entries[-1][1] == pointer and entries[-1][0].startswith(f"champion/{SYMBOL}/history/{D3}_rollback-")
    assert rollback_in_effect(store, SYMBOL, D3) == pointer and rollback_in_effect(store, SYMBOL, D2) is None
    assert rollbacks_of_day(store, D3) == {SYMBOL: pointer} and rollbacks_of_day(store, D2) == {}
    [row] = registry.select("promotions")
    assert (row["kind"], row["from_model_id"], row["to_model_id"], row["reason"]) == (
        "rollback", second.model_id, first.model_id, "live drawdown")  # fmt: skip

    # by date: the champion as of D2 (the second) comes back; a date between D1 and D2 means the first
    again, _ = _rollback(store, registry, D2.isoformat())
    assert again.sha256 == second.sha256 and again.snapshot["rolled_back_from"] == first.model_id
    assert len(registry.select("promotions")) == 2
    same, wrote = _rollback(store, registry, second.model_id)  # already in place (as after a crash): no-op
    assert not wrote and same == again and len(registry.select("promotions")) == 2
    third, _ = _rollback(store, registry, (D1 + dt.timedelta(days=2)).isoformat())
    assert third.sha256 == first.sha256
    _assert_valid(store)


def test_a_later_promotion_moves_on_but_a_rerun_of_the_rollback_date_does_not(store, bundles, registry):
    first, _ = _two_champions(store, bundles)
    rolled, _ = _rollback(store, registry, first.model_id)
    # the daily run re-deciding D3 after the operator rolled back as of D3 leaves the rollback in place ...
    same_day = _publish(store, bundles["2024-08-09"], D3.isoformat())
    assert not same_day.latest_moved and read_pointer(store, SYMBOL) == rolled
    # ... and the next date's promotion moves forward as usual
    later = _publish(store, bundles["2024-08-09"], (D3 + dt.timedelta(days=1)).isoformat())
    assert later.latest_moved and read_pointer(store, SYMBOL) == later


def test_refusals_write_nothing(store, bundles, registry):
    with pytest.raises(NoChampion):
        _rollback(store, registry, "2024-08-01")
    first, second = _two_champions(store, bundles)
    before = {k: store.get(k) for k in store.list("champion/")}
    for to, match in (
        ("BTCUSDT-2024-01-01-000000000000", "never a champion"),
        ("2024-07-01", "no champion as of"),
        (second.model_id, "already the champion"),
    ):
        with pytest.raises(RollbackRefused, match=match):
            _rollback(store, registry, to)
    with pytest.raises(RollbackRefused, match="later than"):
        perform_rollback(store, registry, SYMBOL, first.model_id, "r", recipe_hash=RECIPE.hash, timeframe="1h",
                         as_of=D1)  # fmt: skip
    with pytest.raises(RollbackRefused, match="reason"):
        perform_rollback(store, registry, SYMBOL, first.model_id, " ", recipe_hash=RECIPE.hash, timeframe="1h")
    with pytest.raises(RollbackRefused, match="does not verify"):
        perform_rollback(store, registry, SYMBOL, first.model_id, "r", recipe_hash="0" * 16, timeframe="1h")
    # a target whose bundle was damaged since is refused
    key = first.bucket_path + "model.bin"
    good = store.get(key)
    store.put(key, _flip(good))
    with pytest.raises(RollbackRefused, match="does not verify"):
        _rollback(store, registry, first.model_id)
    store.put(key, good)
    assert {k: store.get(k) for k in store.list("champion/")} == before
    assert registry.select("promotions") == []


@pytest.mark.parametrize("step", ROLLBACK_STEPS)
def test_a_crash_after_any_step_leaves_a_valid_pointer_and_a_rerun_completes(store, bundles, registry, step):
    first, second = _two_champions(store, bundles)
    with pytest.raises(InjectedCrash) as crash:
        _rollback(store, registry, first.model_id, fail_after=step)
    assert crash.value.step == step
    _assert_valid(store)
    moved = ROLLBACK_STEPS.index(step) >= ROLLBACK_STEPS.index("latest")
    assert read_pointer(store, SYMBOL).sha256 == (first if moved else second).sha256

    pointer, wrote = _rollback(store, registry, first.model_id)  # the same command again
    assert wrote != moved  # after "latest" the rollback was in place: the rerun only completes the registry
    assert read_pointer(store, SYMBOL) == pointer and pointer.sha256 == first.sha256
    _assert_valid(store)
    [row] = registry.select("promotions")  # one row, never two
    assert row["kind"] == "rollback" and row["to_model_id"] == first.model_id
    # the decision log: one line and one row, whatever the crashes
    [line] = read_decisions(store, D3)
    assert (line["kind"], line["source"], line["model_id"], line["event_id"]) == (
        "rollback", "operator", first.model_id, row["event_id"])  # fmt: skip
    [logged] = registry.select("decisions")
    assert logged["kind"] == "rollback" and logged["document"]["pointer"]["model_id"] == first.model_id


def test_last_decided_day_reads_the_pointer_partitions(tmp_path):
    from huracan_assets.storage.object_store import LocalObjectStore

    local = LocalObjectStore(tmp_path / "s")
    assert last_decided_day(local, SYMBOL) is None
    for day in ("2024-08-03", "2024-08-11", "2024-08-09"):
        local.put(f"champion_pointer/{SYMBOL}/{day}.parquet", b"x")
    local.put(f"champion_pointer/{SYMBOL}/notes.txt", b"x")
    assert last_decided_day(local, SYMBOL) == dt.date(2024, 8, 11)


def test_a_rollback_pointer_round_trips_and_old_pointers_are_promotions(bundles, store):
    first, _ = _two_champions(store, bundles)
    doc = first.to_dict()
    del doc["kind"]
    assert ChampionPointer.from_dict(doc).kind == "promotion"
    with pytest.raises(ValueError, match="kind"):
        ChampionPointer.from_dict({**doc, "kind": "demotion"})
    assert store.get(latest_key(SYMBOL)) == _.to_json()  # the stored document is the canonical one
    with pytest.raises(ValueError, match="not a rollback"):
        from huracan_assets.publishing.rollback import rollback_row

        rollback_row(first, "1h")
    with pytest.raises(ValueError, match="fail_after"):
        rollback_champion(store, SYMBOL, first.model_id, "r", D3, fail_after="copied")


def test_the_graphs_decisions_of_a_date_are_replaced_and_an_operators_kept(tmp_path, bundles, registry):
    from huracan_assets.storage.object_store import LocalObjectStore

    store = LocalObjectStore(tmp_path / "s")
    first, _ = _two_champions(store, bundles)
    _rollback(store, registry, first.model_id)  # an operator's line of D3
    promo = {"date": str(D3), "symbol": "ETHUSDT", "kind": "promotion", "reason": "gates", "model_id": "m1",
             "champion_model_id": None, "trial": 1, "document": {"gates": {"dsr": 0.9}}}  # fmt: skip
    write_decisions(store, registry, "1h", D3, [promo])
    refusal = {**promo, "kind": "refusal", "reason": "edge below the level"}
    write_decisions(store, registry, "1h", D3, [refusal])  # D3 decided again
    kinds = sorted((line["symbol"], line["kind"]) for line in read_decisions(store, D3))
    assert kinds == [(SYMBOL, "rollback"), ("ETHUSDT", "refusal")]
    assert sorted((r["symbol"], r["kind"]) for r in registry.select("decisions")) == kinds
