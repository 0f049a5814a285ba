"""Resources: the roles ``object_store``, ``registry`` and ``exchange``. Secrets arrive as ``EnvVar``."""

from functools import lru_cache

from dagster import ConfigurableResource

from huracan_assets.exchange.files import ExchangeError, FilesExchange
from huracan_assets.registry.client import Registry
from huracan_assets.storage.object_store import LocalObjectStore, ObjectStore, S3ObjectStore


@lru_cache(maxsize=16)
def _store(kind, root, bucket, prefix, endpoint_url, region, key_id, secret) -> ObjectStore:
    if kind == "local":
        if not root:
            raise ValueError("a local object store needs a root directory")
        return LocalObjectStore(root, prefix=prefix)
    if kind == "s3":
        if not bucket:
            raise ValueError("an S3 object store needs a bucket")
        return S3ObjectStore(
            bucket,
            prefix=prefix,
            endpoint_url=endpoint_url,
            region=region,
            access_key_id=key_id,
            secret_access_key=secret,
        )
    raise ValueError(f"unknown object store kind {kind!r}")


@lru_cache(maxsize=8)
def _registry(url: str) -> Registry:
    return Registry(url, migrate=True)


class ObjectStoreResource(ConfigurableResource):
    """Local directory or any S3 endpoint, same keys either way."""

    kind: str = "local"
    root: str | None = None
    bucket: str | None = None
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None

    def get_store(self) -> ObjectStore:
        return _store(
            self.kind,
            self.root,
            self.bucket,
            self.prefix,
            self.endpoint_url,
            self.region,
            self.access_key_id,
            self.secret_access_key,
        )


class RegistryResource(ConfigurableResource):
    """The relational registry: PostgreSQL in production and tests, SQLite as the embedded default."""

    url: str

    def get_registry(self) -> Registry:
        return _registry(self.url)


class ExchangeResource(ConfigurableResource):
    """Where candles come from: a local folder (``files``) or a live exchange through ccxt."""

    kind: str = "files"
    timeframe: str = "1h"
    quote: str = "USDT"
    data_dir: str | None = None
    exchange_id: str = "binance"
    api_key: str | None = None
    api_secret: str | None = None

    def client(self) -> FilesExchange:
        if self.kind == "files":
            if not self.data_dir:
                raise ExchangeError("the files exchange needs data_dir")
            return _files_exchange(self.data_dir, self.timeframe, self.quote)
        raise ExchangeError(
            f"exchange kind {self.kind!r} ({self.exchange_id}) is not wired yet: see issue 'Market data'"
        )


@lru_cache(maxsize=8)
def _files_exchange(data_dir: str, timeframe: str, quote: str) -> FilesExchange:
    return FilesExchange(data_dir, timeframe, quote)
