"""Champion publication on a local directory and on SeaweedFS over the real S3 API: the pointer is always valid."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest

from huracan_assets.core.features.recipe import default_recipe
from huracan_assets.core.models import (
    BUNDLE_FILES,
    BundleError,
    ModelBundle,
    ModelSpec,
    TrainSet,
    fit,
    library_versions,
    make_bundle,
)
from huracan_assets.publishing import (
    STEPS,
    ChampionPointer,
    InjectedCrash,
    NoChampion,
    PublishRefused,
    champion_urls,
    check_pointer,
    history_key,
    latest_key,
    load_champion_bundle,
    publish_champion,
    read_pointer,
)
from huracan_assets.storage.object_store import LocalObjectStore, ObjectInfo, ObjectStore

SYMBOL = "BTCUSDT"
RECIPE = default_recipe()
STAMP = "2024-08-10T06:00:00+00:00"
SNAPSHOT = {"gates": {"dsr": {"passed": True, "value": 0.9, "threshold": 0.5}}, "n_trades": np.int64(42)}


def make_bundles() -> dict[str, ModelBundle]:
    """Three real LightGBM bundles of BTCUSDT, trained as of different dates (so with different ids)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + rng.normal(size=200) > 0).astype(np.int8)
    model = fit(TrainSet(X, y, ("f0", "f1", "f2")), ModelSpec(params={"num_boost_round": 5}))
    out = {}
    for as_of in ("2024-08-01", "2024-08-07", "2024-08-09"):
        config = {
            "as_of": as_of,
            "symbol": SYMBOL,
            "recipe": RECIPE.to_dict(),
            "recipe_hash": RECIPE.hash,
            "model": model.spec.to_dict(),
            "seed": model.spec.seed,
            "windows": {"train": ["2023-08-01", as_of]},
            "library_versions": library_versions(),
        }
        out[as_of] = make_bundle(model, config, {"auc": 0.55})
    return out


# the bundles and store fixtures: conftest.py


def _stage(store: ObjectStore, bundle: ModelBundle) -> str:
    """Write a bundle under challengers/ as training does; returns its prefix."""
    prefix = bundle.prefix(SYMBOL)
    for name, data in bundle.files.items():
        store.put(prefix + name, data)
    return prefix


def _publish(store: ObjectStore, bundle: ModelBundle, as_of: str, **kw) -> ChampionPointer:
    return publish_champion(
        store,
        SYMBOL,
        _stage(store, bundle),
        dt.date.fromisoformat(as_of),
        f"promoted {bundle.bundle_id()}",
        SNAPSHOT,
        expected_recipe_hash=RECIPE.hash,
        promoted_at=STAMP,
        **kw,
    )


def _flip(data: bytes) -> bytes:
    out = bytearray(data)
    out[len(out) // 2] ^= 0x01
    return bytes(out)


def _assert_valid(store: ObjectStore) -> tuple[bool, str]:
    ok, why = check_pointer(store, SYMBOL, expected_recipe_hash=RECIPE.hash)
    assert ok, why
    return ok, why


class Proxy(ObjectStore):
    """Delegates to a real store; records the keys put, and can corrupt what is put under a prefix."""

    def __init__(self, inner: ObjectStore, corrupt_under: str | None = None) -> None:
        self.inner = inner
        self.corrupt_under = corrupt_under
        self.puts: list[str] = []

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        self.puts.append(key)
        if self.corrupt_under and key.startswith(self.corrupt_under) and key.endswith("model.bin"):
            data = _flip(data)
        return self.inner.put(key, data, content_type)

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def info(self, key: str) -> ObjectInfo:
        return self.inner.info(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def list(self, prefix: str = "") -> Iterator[str]:
        return self.inner.list(prefix)

    def presigned_url(self, key: str, expires_in: int = 3600) -> str:
        return self.inner.presigned_url(key, expires_in)

    def describe(self) -> str:
        return f"proxy:{self.inner.describe()}"


# --------------------------------------------------------------------------------------------- publish
def test_publish_copies_verifies_writes_history_and_moves_latest(store, bundles):
    bundle = bundles["2024-08-07"]
    assert check_pointer(store, SYMBOL) == (True, f"no champion yet for {SYMBOL}")
    assert read_pointer(store, SYMBOL) is None
    recording = Proxy(store)
    pointer = _publish(recording, bundle, "2024-08-10")

    bucket = f"models/{SYMBOL}/{bundle.bundle_id()}/"
    assert pointer.latest_moved
    assert pointer.model_id == f"{SYMBOL}-{bundle.bundle_id()}" and pointer.bucket_path == bucket
    assert pointer.sha256 == bundle.content_hash and pointer.as_of == dt.date(2024, 8, 10)
    assert pointer.promoted_at == STAMP and pointer.reason == f"promoted {bundle.bundle_id()}"
    assert pointer.snapshot == {"gates": {"dsr": {"passed": True, "threshold": 0.5, "value": 0.9}}, "n_trades": 42}
    for name in BUNDLE_FILES:
        assert store.get(bucket + name) == bundle.files[name]
    assert store.get(history_key(SYMBOL, dt.date(2024, 8, 10))) == store.get(latest_key(SYMBOL)) == pointer.to_json()
    # latest.json is put once, last, after the history
    puts = [k for k in recording.puts if not k.startswith("challengers/")]
    assert puts == [bucket + n for n in BUNDLE_FILES] + [history_key(SYMBOL, dt.date(2024, 8, 10)), latest_key(SYMBOL)]

    assert pointer.model_id in _assert_valid(store)[1]
    assert read_pointer(store, SYMBOL) == pointer
    assert load_champion_bundle(store, SYMBOL, RECIPE.hash).files == bundle.files

    # a rerun of the same date is idempotent: the copy is left alone, the pointer rewritten identically
    again = Proxy(store)
    assert _publish(again, bundle, "2024-08-10") == pointer
    assert [k for k in again.puts if k.startswith("models/")] == []
    assert store.get(latest_key(SYMBOL)) == pointer.to_json()


def test_pointer_json_round_trip(bundles):
    bundle = bundles["2024-08-07"]
    pointer = ChampionPointer(
        model_id=f"{SYMBOL}-{bundle.bundle_id()}",
        symbol=SYMBOL,
        bucket_path=f"models/{SYMBOL}/{bundle.bundle_id()}/",
        sha256=bundle.content_hash,
        as_of=dt.date(2024, 8, 10),
        promoted_at=STAMP,
        reason="first champion",
        snapshot={"a": [1, 2.5, None]},
    )
    doc = json.loads(pointer.to_json())
    assert "latest_moved" not in doc and doc["as_of"] == "2024-08-10"
    assert ChampionPointer.from_json(pointer.to_json()) == pointer


def test_promoted_at_defaults_to_now_utc(tmp_path, bundles):
    store = LocalObjectStore(tmp_path / "store")
    bundle = bundles["2024-08-07"]
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    pointer = publish_champion(store, SYMBOL, _stage(store, bundle), dt.date(2024, 8, 10), "r", {})
    stamp = dt.datetime.fromisoformat(pointer.promoted_at)
    assert stamp.utcoffset() == dt.timedelta(0) and before <= stamp <= dt.datetime.now(dt.UTC)
    with pytest.raises(ValueError, match="UTC"):
        publish_champion(store, SYMBOL, bundle.prefix(), dt.date(2024, 8, 10), "r", {}, promoted_at="2024-08-10T06:00")
    with pytest.raises(ValueError, match="fail_after"):
        publish_champion(store, SYMBOL, bundle.prefix(), dt.date(2024, 8, 10), "r", {}, fail_after="copy")


# --------------------------------------------------------------------------------------------- crashes
@pytest.mark.parametrize("previous", [False, True], ids=["first", "replacing"])
@pytest.mark.parametrize("step", STEPS)
def test_a_crash_after_any_step_leaves_a_valid_pointer_and_a_rerun_completes(store, bundles, step, previous):
    old, new = bundles["2024-08-01"], bundles["2024-08-07"]
    old_pointer = _publish(store, old, "2024-08-05") if previous else None
    before = store.get(latest_key(SYMBOL)) if previous else None

    with pytest.raises(InjectedCrash) as crash:
        _publish(store, new, "2024-08-10", fail_after=step)
    assert crash.value.step == step

    _assert_valid(store)
    current = read_pointer(store, SYMBOL)
    if step == "latest":
        assert current is not None and current.sha256 == new.content_hash
    else:
        assert current == old_pointer
        assert (store.get(latest_key(SYMBOL)) if previous else None) == before
    assert store.exists(history_key(SYMBOL, dt.date(2024, 8, 10))) == (STEPS.index(step) >= STEPS.index("history"))

    pointer = _publish(store, new, "2024-08-10")
    assert pointer.latest_moved and read_pointer(store, SYMBOL) == pointer
    assert pointer.sha256 == new.content_hash
    _assert_valid(store)
    assert load_champion_bundle(store, SYMBOL).files == new.files


# --------------------------------------------------------------------------------------------- dates
def test_a_backfill_of_an_older_date_writes_history_but_leaves_latest(store, bundles):
    current = _publish(store, bundles["2024-08-07"], "2024-08-10")
    latest_bytes = store.get(latest_key(SYMBOL))

    backfill = _publish(store, bundles["2024-08-01"], "2024-08-03")
    assert not backfill.latest_moved
    assert store.get(latest_key(SYMBOL)) == latest_bytes and read_pointer(store, SYMBOL) == current
    history = ChampionPointer.from_json(store.get(history_key(SYMBOL, dt.date(2024, 8, 3))))
    assert history == backfill and history.sha256 == bundles["2024-08-01"].content_hash
    assert store.exists(f"models/{SYMBOL}/{bundles['2024-08-01'].bundle_id()}/model.bin")
    _assert_valid(store)

    # the same as_of replaces (a rerun of that date promoting another bundle), a later one moves forward
    same = _publish(store, bundles["2024-08-09"], "2024-08-10")
    assert same.latest_moved and read_pointer(store, SYMBOL) == same
    later = _publish(store, bundles["2024-08-07"], "2024-08-11")
    assert later.latest_moved and read_pointer(store, SYMBOL) == later
    assert sorted(store.list(f"champion/{SYMBOL}/history/")) == [
        history_key(SYMBOL, dt.date(2024, 8, d)) for d in (3, 10, 11)
    ]


# --------------------------------------------------------------------------------------------- refusals
def test_a_corrupted_challenger_is_refused_and_the_old_champion_stays(store, bundles):
    old, new = bundles["2024-08-01"], bundles["2024-08-07"]
    old_pointer = _publish(store, old, "2024-08-05")
    prefix = _stage(store, new)
    store.put(prefix + "model.bin", _flip(new.files["model.bin"]))  # one byte flipped (the store's checksum follows)

    with pytest.raises(PublishRefused, match=r"sha256 mismatch for model\.bin") as refused:
        publish_champion(store, SYMBOL, prefix, dt.date(2024, 8, 10), "r", {}, promoted_at=STAMP)
    assert refused.value.step == "verified"
    assert read_pointer(store, SYMBOL) == old_pointer
    _assert_valid(store)
    assert list(store.list(f"models/{SYMBOL}/{new.bundle_id()}/")) == []  # nothing was copied
    assert not store.exists(history_key(SYMBOL, dt.date(2024, 8, 10)))


def test_a_copy_that_does_not_read_back_is_refused_at_verified(store, bundles):
    old, new = bundles["2024-08-01"], bundles["2024-08-07"]
    old_pointer = _publish(store, old, "2024-08-05")
    corrupting = Proxy(store, corrupt_under=f"models/{SYMBOL}/{new.bundle_id()}/")
    with pytest.raises(PublishRefused, match=r"the copy at .* does not verify") as refused:
        _publish(corrupting, new, "2024-08-10")
    assert refused.value.step == "verified"
    assert read_pointer(store, SYMBOL) == old_pointer
    _assert_valid(store)
    # a clean rerun repairs the bad copy and completes
    assert _publish(store, new, "2024-08-10").sha256 == new.content_hash
    _assert_valid(store)


def test_a_bundle_of_another_recipe_or_symbol_is_refused(store, bundles):
    new = bundles["2024-08-07"]
    with pytest.raises(PublishRefused, match="recipe hash mismatch"):
        publish_champion(store, SYMBOL, _stage(store, new), dt.date(2024, 8, 10), "r", {}, "0" * 64)
    with pytest.raises(PublishRefused, match="not 'ETHUSDT'"):
        publish_champion(store, "ETHUSDT", new.prefix(), dt.date(2024, 8, 10), "r", {})
    with pytest.raises(PublishRefused, match="missing"):
        publish_champion(store, SYMBOL, f"challengers/{SYMBOL}/nothing/", dt.date(2024, 8, 10), "r", {})
    assert read_pointer(store, SYMBOL) is None and read_pointer(store, "ETHUSDT") is None


# --------------------------------------------------------------------------------------------- broken pointers
@pytest.mark.parametrize("damage", ["deleted", "corrupted", "garbage_latest", "wrong_sha", "other_recipe"])
def test_check_pointer_reports_a_broken_champion(store, bundles, damage):
    bundle = bundles["2024-08-07"]
    pointer = _publish(store, bundle, "2024-08-10")
    key = pointer.bucket_path + "model.bin"
    expected = None
    if damage == "deleted":
        store.delete(key)
        why_part = "missing"
    elif damage == "corrupted":
        store.put(key, _flip(bundle.files["model.bin"]))
        why_part = "sha256 mismatch for model.bin"
    elif damage == "garbage_latest":
        store.put(latest_key(SYMBOL), b'{"model_id": ')
        why_part = "not valid JSON"
    elif damage == "wrong_sha":
        doc = json.loads(pointer.to_json())
        doc["sha256"] = "ab" * 32
        store.put(latest_key(SYMBOL), json.dumps(doc).encode())
        why_part = "the pointer says " + "ab" * 32
    else:
        expected = "0" * 64
        why_part = "recipe hash mismatch"

    ok, why = check_pointer(store, SYMBOL, expected_recipe_hash=expected)
    assert not ok and why_part in why, why
    if damage != "garbage_latest":
        with pytest.raises(BundleError):
            load_champion_bundle(store, SYMBOL, expected)
    if damage in ("deleted", "corrupted", "garbage_latest"):  # publishing the date again repairs it
        _publish(store, bundle, "2024-08-10")
        _assert_valid(store)


# --------------------------------------------------------------------------------------------- urls
def test_champion_urls_serve_the_bundle_files(store, bundles):
    with pytest.raises(NoChampion):
        champion_urls(store, SYMBOL)
    bundle = bundles["2024-08-07"]
    pointer = _publish(store, bundle, "2024-08-10")
    urls = champion_urls(store, SYMBOL, expires_s=600)
    assert list(urls) == list(BUNDLE_FILES)
    if isinstance(store, LocalObjectStore):
        assert all(u.startswith("file://") for u in urls.values())
    else:
        assert all(u.startswith("http://") and "X-Amz-Expires=600" in u for u in urls.values())
    for name, url in urls.items():
        assert pointer.bucket_path + name in url
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.read() == bundle.files[name]
    # a broken champion gets no URLs
    store.delete(pointer.bucket_path + "config.json")
    with pytest.raises(BundleError, match="missing"):
        champion_urls(store, SYMBOL)
