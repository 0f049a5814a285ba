"""Both backends behave the same: local directory, and SeaweedFS over the real S3 API."""

import os
import urllib.request

import polars as pl
import pytest

from huracan_assets.storage.object_store import (
    LocalObjectStore,
    ObjectNotFound,
    ObjectStoreError,
    sha256_hex,
)
from huracan_assets.storage.partitioned import (
    PartitionWindow,
    SymbolOutcome,
    data_key,
    write_frame,
    write_outcome,
)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def store(request, tmp_path):
    if request.param == "local":
        return LocalObjectStore(tmp_path / "store")
    return request.getfixturevalue("s3_store")


def test_round_trip_sha_list_delete_and_presigned_url(store):
    digest = store.put("candles/BTCUSDT/2024-01-03.parquet", b"abc")
    assert digest == sha256_hex(b"abc")
    store.put("candles/ETHUSDT/2024-01-03.parquet", b"xyz")
    store.put("champion/BTCUSDT/latest.json", b"{}")
    assert store.get_verified("candles/BTCUSDT/2024-01-03.parquet") == b"abc"
    assert store.info("candles/BTCUSDT/2024-01-03.parquet").sha256 == digest
    assert list(store.list("candles/")) == ["candles/BTCUSDT/2024-01-03.parquet", "candles/ETHUSDT/2024-01-03.parquet"]
    with urllib.request.urlopen(store.presigned_url("champion/BTCUSDT/latest.json")) as resp:
        assert resp.read() == b"{}"
    store.delete("candles/ETHUSDT/2024-01-03.parquet")
    assert not store.exists("candles/ETHUSDT/2024-01-03.parquet")
    with pytest.raises(ObjectNotFound):
        store.get("candles/ETHUSDT/2024-01-03.parquet")


def test_listing_everything_or_a_partial_name(store, tmp_path):
    """``list("")`` is every key of the store (a local store's neighbours are not its keys); a prefix that is part
    of a name lists the keys that start with it."""
    (tmp_path / "neighbour.txt").write_text("not a key")
    store.put("champion/BTCUSDT/latest.json", b"{}")
    store.put("champion/BTCUSDT/history/2024-08-05.json", b"{}")
    store.put("champion/BTCUSDT/history/2024-08-05_rollback-20240806T000000000000Z.json", b"{}")
    store.put("candles/BTCUSDT/2024-01-03.parquet", b"x")
    everything = list(store.list(""))
    assert "neighbour.txt" not in everything and len(everything) == 4
    assert list(store.list("champion/BTCUSDT/history/2024-08-05_rollback-")) == [
        "champion/BTCUSDT/history/2024-08-05_rollback-20240806T000000000000Z.json"
    ]


def test_overwrite_replaces_content_and_hash(store):
    store.put("a/k.json", b"one")
    store.put("a/k.json", b"two")
    assert store.get("a/k.json") == b"two"
    assert store.info("a/k.json").sha256 == sha256_hex(b"two")


def test_invalid_keys_are_refused(store):
    for key in ("", "/abs", "a/../b", ".sha256/x"):
        with pytest.raises(ValueError):
            store.put(key, b"x")


def test_interrupted_local_write_keeps_the_old_object(tmp_path, monkeypatch):
    store = LocalObjectStore(tmp_path / "store")
    store.put("models/BTCUSDT/x/model.bin", b"old")

    def broken_fsync(fd):
        raise OSError("disk vanished mid-write")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(ObjectStoreError, match="failed after 3 attempts"):
        store.put("models/BTCUSDT/x/model.bin", b"new-and-longer")
    monkeypatch.undo()
    assert store.get_verified("models/BTCUSDT/x/model.bin") == b"old"
    leftovers = [p for p in (tmp_path / "store").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_full_disk_never_leaves_bytes_without_their_hash(tmp_path):
    """On a filesystem with room for an object's bytes but not for its recorded hash, the put fails and the key
    stays absent: the bytes never show under their key without the sha256 that vouches for them (writing the
    object before staging the hash once left exactly that)."""
    import shutil
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a size-limited filesystem here: {done.stderr.decode()}")
    try:
        store = LocalObjectStore(mount / "store")
        store.put("candles/BTCUSDT/2024-07-20.parquet", b"old")  # the folders exist; one key is there already
        store.put("candles/BTCUSDT/2024-07-21.parquet", b"x")  # so does the new key's hash folder
        store.delete("candles/BTCUSDT/2024-07-21.parquet")
        with (mount / "filler").open("wb") as filler:  # leave the bytes' pages and nothing for the hash
            filler.write(b"\0" * (shutil.disk_usage(mount).free - 8192))
        data = b"n" * (shutil.disk_usage(mount).free)
        with pytest.raises(ObjectStoreError, match="No space left on device"):
            store.put("candles/BTCUSDT/2024-07-21.parquet", data)
        assert not store.exists("candles/BTCUSDT/2024-07-21.parquet")
        assert store.get_verified("candles/BTCUSDT/2024-07-20.parquet") == b"old"
        assert [p for p in mount.rglob("*.tmp")] == []
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.integration
def test_s3_errors_are_retried_then_reported_and_old_object_survives(s3_store):
    s3_store.put("champion/BTCUSDT/latest.json", b"old")
    calls = []

    from botocore.exceptions import ConnectionClosedError

    def fail_send(request, **kwargs):
        calls.append(1)
        raise ConnectionClosedError(endpoint_url=request.url)  # what botocore raises on a dropped socket

    s3_store._client.meta.events.register("before-send.s3.PutObject", fail_send)
    try:
        with pytest.raises(ObjectStoreError, match=r"put 'champion/BTCUSDT/latest\.json' failed"):
            s3_store.put("champion/BTCUSDT/latest.json", b"new")
    finally:
        s3_store._client.meta.events.unregister("before-send.s3.PutObject", fail_send)
    assert len(calls) >= s3_store.attempts  # our retries (each with botocore's own)
    assert s3_store.get_verified("champion/BTCUSDT/latest.json") == b"old"


@pytest.mark.integration
def test_s3_missing_bucket_is_a_clear_error(s3_endpoint):
    from huracan_assets.storage.object_store import S3ObjectStore

    store = S3ObjectStore("no-such-bucket-here", endpoint_url=s3_endpoint, access_key_id="t", secret_access_key="t")
    with pytest.raises(ObjectStoreError, match=r"put .a/b. on s3://no-such-bucket-here/: (NoSuchBucket|AccessDenied)"):
        store.put("a/b", b"x")


def test_partition_window_statuses_and_lazy_frames(store):
    frame = pl.DataFrame({"ts": [1, 2], "close": [1.0, 2.0]})
    write_frame(store, "candles", "2024-01-01|BTCUSDT", frame)
    write_frame(store, "candles", "2024-01-02|BTCUSDT", frame.with_columns(ts=pl.col("ts") + 10))
    write_outcome(store, "candles", "2024-01-03|BTCUSDT", SymbolOutcome.failed("exchange said no"), "run1")
    write_frame(store, "candles", "2024-01-03|ETHUSDT", frame)
    assert store.exists(data_key("candles", "2024-01-03|ETHUSDT"))
    keys = [
        "2024-01-03|BTCUSDT",
        "2024-01-01|BTCUSDT",
        "2024-01-02|BTCUSDT",
        "2024-01-04|BTCUSDT",
        "2024-01-03|ETHUSDT",
    ]
    window = PartitionWindow(store, "candles", keys)
    assert list(window) == sorted(keys, key=lambda k: (k.split("|")[1], k))
    assert window.status("2024-01-03|BTCUSDT").reason == "exchange said no"
    assert window.missing("BTCUSDT") == ["2024-01-03|BTCUSDT", "2024-01-04|BTCUSDT"]
    assert window.frame("BTCUSDT")["ts"].to_list() == [1, 2, 11, 12]
    with pytest.raises(KeyError, match="failed"):
        window["2024-01-03|BTCUSDT"]


def test_failure_marker_wins_over_stale_data_and_success_clears_it(store):
    frame = pl.DataFrame({"ts": [1]})
    write_frame(store, "features", "2024-01-01|BTCUSDT", frame)
    write_outcome(store, "features", "2024-01-01|BTCUSDT", SymbolOutcome.failed("boom"), None)
    assert store.exists(data_key("features", "2024-01-01|BTCUSDT"))  # nothing already stored is lost
    assert PartitionWindow(store, "features", ["2024-01-01|BTCUSDT"]).status("2024-01-01|BTCUSDT").status == "failed"
    write_frame(store, "features", "2024-01-01|BTCUSDT", frame)
    assert PartitionWindow(store, "features", ["2024-01-01|BTCUSDT"]).status("2024-01-01|BTCUSDT").status == "ok"


def test_every_content_type_the_engine_writes_is_accepted_by_both_backends(store):
    """A model bundle's files (model.bin, sha256.txt, *.json) through the content type the Engine gives them: S3
    refuses a missing one, which once lost every challenger bundle on S3 and never on the local store."""
    from huracan_assets.storage.object_store import content_type_for

    for name in ("model.bin", "sha256.txt", "config.json"):
        key = f"challengers/BTCUSDT/2024-07-21-abc/{name}"
        store.put(key, b"bytes of " + name.encode(), content_type_for(name))
        assert store.get_verified(key) == b"bytes of " + name.encode()
    assert content_type_for("metrics.json") == "application/json"
    assert content_type_for("model.bin") == "application/octet-stream"


@pytest.mark.integration
def test_s3_request_boto3_refuses_is_reported_at_once_not_retried(s3_store):
    calls = []
    s3_store._client.meta.events.register("provide-client-params.s3.PutObject", lambda **kw: calls.append(1))
    with pytest.raises(ObjectStoreError, match=r"(?s)put .a/b. on s3://.*: invalid request: .*ContentType"):
        s3_store.put("a/b", b"x", content_type=None)
    assert len(calls) == 1  # one try: an invalid request fails the same way every time
    assert not s3_store.exists("a/b")
