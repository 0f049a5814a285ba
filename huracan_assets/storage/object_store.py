"""Object store: one interface, a local-directory backend and an S3 backend.

Keys are the archive layout of ARCHITECTURE.md (``candles/BTCUSDT/2024-01-03.parquet``,
``champion/BTCUSDT/latest.json`` ...), optionally under a deployment prefix.

Guarantees of both backends:
- a write is atomic: readers see the old object or the new one, never a half-written one
  (local: temp file in the same folder + ``os.replace``; S3: a single PUT);
- the sha256 of every object is recorded (local: a sidecar under ``.sha256/``; S3: object metadata)
  and returned by ``put``;
- transient errors are retried with exponential backoff; what still fails raises ``ObjectStoreError``
  naming the operation and key.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_SHA_DIR = ".sha256"


class ObjectStoreError(RuntimeError):
    """An object-store operation failed after its retries."""


class ObjectNotFound(ObjectStoreError, KeyError):
    """The key does not exist."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str | None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_type_for(name: str) -> str:
    """The content type an object named ``name`` is stored with: JSON documents as such, anything else as bytes."""
    return "application/json" if name.endswith(".json") else "application/octet-stream"


def _check_key(key: str) -> str:
    if not key or key.startswith("/") or ".." in key.split("/") or key.startswith(_SHA_DIR):
        raise ValueError(f"invalid object key {key!r}")
    return key


def with_retries(
    op: str,
    key: str,
    fn: Callable[[], T],
    *,
    attempts: int,
    base_delay: float,
    retry_on: tuple[type[BaseException], ...],
) -> T:
    """Run ``fn`` with exponential backoff on ``retry_on``; raise ``ObjectStoreError`` at the end."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except ObjectNotFound:
            raise
        except retry_on as exc:
            if attempt == attempts:
                raise ObjectStoreError(f"{op} {key!r} failed after {attempts} attempts: {exc}") from exc
            time.sleep(base_delay * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


class ObjectStore(ABC):
    """Bytes by key. Subclasses implement the primitives; helpers live here."""

    @abstractmethod
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Store ``data`` atomically under ``key``; returns its sha256."""

    @abstractmethod
    def get(self, key: str) -> bytes: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def info(self, key: str) -> ObjectInfo: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under ``prefix``, sorted."""

    @abstractmethod
    def presigned_url(self, key: str, expires_in: int = 3600) -> str:
        """A URL that fetches the object without credentials (for Hamilton)."""

    @abstractmethod
    def describe(self) -> str: ...

    def get_verified(self, key: str) -> bytes:
        """Get and check the bytes against the recorded sha256."""
        data = self.get(key)
        recorded = self.info(key).sha256
        if recorded is not None and recorded != sha256_hex(data):
            raise ObjectStoreError(f"sha256 mismatch for {key!r}: recorded {recorded}, got {sha256_hex(data)}")
        return data


class LocalObjectStore(ObjectStore):
    def __init__(self, root: str | Path, prefix: str = "") -> None:
        self.root = Path(root).expanduser()
        self.prefix = prefix
        self.root.mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        return f"local:{self.root}"

    def _path(self, key: str) -> Path:
        return self.root / (self.prefix + _check_key(key))

    def _sha_path(self, key: str) -> Path:
        return self.root / _SHA_DIR / (self.prefix + key + ".sha256")

    @staticmethod
    def _staged(path: Path, data: bytes) -> Path:
        """``data`` written and synced to a hidden temporary file beside ``path`` (removed if that fails)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Path(tmp)

    def _write_both(self, key: str, data: bytes, digest: str) -> None:
        """The object and its recorded sha256, both staged before either is renamed into place: a write that fails
        (a full disk, an I/O error) leaves the old object and its hash, or no object, never new bytes under the key
        with a missing or stale hash. The two renames need no space; only a kill between them could split them."""
        staged: list[tuple[Path, Path]] = []
        try:
            for path, body in ((self._path(key), data), (self._sha_path(key), digest.encode())):
                staged.append((self._staged(path, body), path))
            for tmp, path in reversed(staged):  # the hash first: a reader of the new bytes finds their hash
                tmp.replace(path)
        except BaseException:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            raise

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        digest = sha256_hex(data)
        write = functools.partial(self._write_both, key, data, digest)
        with_retries("put", key, write, attempts=3, base_delay=0.05, retry_on=(OSError,))
        return digest

    def get(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(f"no object {key!r} in {self.describe()}")
        return with_retries("get", key, path.read_bytes, attempts=3, base_delay=0.05, retry_on=(OSError,))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def info(self, key: str) -> ObjectInfo:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(f"no object {key!r} in {self.describe()}")
        sha_path = self._sha_path(key)
        recorded = sha_path.read_text().strip() if sha_path.is_file() else None
        return ObjectInfo(key=key, size=path.stat().st_size, sha256=recorded)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
        self._sha_path(key).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self.root / self.prefix
        # a prefix that ends a folder is walked from that folder, a partial name from its parent; "" from the root
        start = base / prefix if not prefix or prefix.endswith("/") else (base / prefix).parent
        if not start.is_dir():
            return iter(())
        keys = []
        for path in start.rglob("*"):
            if not path.is_file() or path.name.startswith("."):
                continue
            rel = path.relative_to(base).as_posix()
            if rel.startswith(_SHA_DIR) or not rel.startswith(prefix):
                continue
            keys.append(rel)
        return iter(sorted(keys))

    def presigned_url(self, key: str, expires_in: int = 3600) -> str:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(f"no object {key!r} in {self.describe()}")
        return path.resolve().as_uri()


class S3ObjectStore(ObjectStore):
    """Any S3-compatible endpoint (AWS, R2, SeaweedFS, MinIO) through boto3."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        attempts: int = 4,
        base_delay: float = 0.2,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix
        self.attempts = attempts
        self.base_delay = base_delay
        self._client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or "us-east-1",
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=Config(
                # botocore retries throttling / 5xx itself; our loop adds connection-level retries
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                s3={"addressing_style": "path"},
                signature_version="s3v4",
            ),
        )
        from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

        self._transient = (BotoCoreError, ClientError)
        self._client_error = ClientError
        self._invalid = ParamValidationError  # a request boto3 refuses to send: a bug, never worth a retry

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _key(self, key: str) -> str:
        return self.prefix + _check_key(key)

    def _call(self, op: str, key: str, fn: Callable[[], T]) -> T:
        def _wrapped() -> T:
            try:
                return fn()
            except self._invalid as exc:
                raise ObjectStoreError(f"{op} {key!r} on {self.describe()}: invalid request: {exc}") from exc
            except self._client_error as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in ("NoSuchKey", "404", "NotFound"):
                    raise ObjectNotFound(f"no object {key!r} in {self.describe()}") from exc
                if code in ("NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                    raise ObjectStoreError(f"{op} {key!r} on {self.describe()}: {code}: {exc}") from exc
                raise

        return with_retries(
            op, key, _wrapped, attempts=self.attempts, base_delay=self.base_delay, retry_on=self._transient
        )

    def ensure_bucket(self) -> None:
        def _ensure() -> None:
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except self._client_error:
                self._client.create_bucket(Bucket=self.bucket)

        self._call("ensure_bucket", self.bucket, _ensure)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        digest = sha256_hex(data)
        self._call(
            "put",
            key,
            lambda: self._client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                ContentType=content_type,
                Metadata={"sha256": digest},
            ),
        )
        return digest

    def get(self, key: str) -> bytes:
        return self._call(
            "get", key, lambda: self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        )

    def exists(self, key: str) -> bool:
        try:
            self.info(key)
        except ObjectNotFound:
            return False
        return True

    def info(self, key: str) -> ObjectInfo:
        head = self._call("head", key, lambda: self._client.head_object(Bucket=self.bucket, Key=self._key(key)))
        return ObjectInfo(key=key, size=int(head["ContentLength"]), sha256=head.get("Metadata", {}).get("sha256"))

    def delete(self, key: str) -> None:
        self._call("delete", key, lambda: self._client.delete_object(Bucket=self.bucket, Key=self._key(key)))

    def list(self, prefix: str = "") -> Iterator[str]:
        def _all() -> list[str]:
            keys: list[str] = []
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                keys.extend(item["Key"][len(self.prefix) :] for item in page.get("Contents", []))
            return sorted(keys)

        return iter(self._call("list", prefix, _all))

    def presigned_url(self, key: str, expires_in: int = 3600) -> str:
        return self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=expires_in
        )
