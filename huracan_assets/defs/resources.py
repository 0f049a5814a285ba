"""Resources: the roles ``object_store``, ``registry``, ``exchange`` and ``telegram``. Secrets arrive as ``EnvVar``."""

from functools import lru_cache

from dagster import ConfigurableResource, EnvVar

from huracan_assets.exchange.ccxt_exchange import CcxtExchange
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
    """Where candles come from: a live exchange or a local replay of one through ccxt, or a folder."""

    kind: str = "files"
    timeframe: str = "1h"
    quote: str = "USDT"
    data_dir: str | None = None
    exchange_id: str = "binance"
    base_url: str | None = None
    page_limit: int = 1000
    attempts: int = 5
    retry_base_delay: float = 0.5
    rate_limit_ms: int | None = None
    api_key: str | None = None
    api_secret: str | None = None

    def client(self, timeframe: str | None = None) -> FilesExchange | CcxtExchange:
        """A client for ``timeframe`` bars (default: the training ``timeframe``); the ``spreads`` asset asks for
        finer ones. ``ExchangeError`` when the source has no such bars at all (a folder without ``DIR/5m``)."""
        timeframe = timeframe or self.timeframe
        if self.kind == "files":
            if not self.data_dir:
                raise ExchangeError("the files exchange needs data_dir")
            return _files_exchange(self.data_dir, timeframe, self.quote)
        if self.kind == "ccxt":
            return _ccxt_exchange(
                self.exchange_id,
                timeframe,
                self.quote,
                self.base_url,
                self.api_key,
                self.api_secret,
                self.page_limit,
                self.attempts,
                self.retry_base_delay,
                self.rate_limit_ms,
            )
        raise ExchangeError(f"unknown exchange kind {self.kind!r}: expected files or ccxt")


@lru_cache(maxsize=8)
def _files_exchange(data_dir: str, timeframe: str, quote: str) -> FilesExchange:
    return FilesExchange(data_dir, timeframe, quote)


@lru_cache(maxsize=8)
def _ccxt_exchange(
    exchange_id, timeframe, quote, base_url, api_key, api_secret, page_limit, attempts, base_delay, rate_limit_ms
) -> CcxtExchange:
    return CcxtExchange(
        exchange_id,
        timeframe,
        quote,
        base_url=base_url,
        api_key=api_key,
        api_secret=api_secret,
        page_limit=page_limit,
        attempts=attempts,
        base_delay=base_delay,
        rate_limit_ms=rate_limit_ms,
    )


class TelegramResource(ConfigurableResource):
    """Telegram notifications (the daily summary). Off unless ``notify``. The token is read when a message is
    sent, through ``EnvVar(token_env)``, so a missing token is reported, never a failed run."""

    notify: bool = False
    token_env: str = "HURACAN_TELEGRAM_TOKEN"
    base_url: str | None = None
    chat_ids: list[int] | None = None

    def send(self, text: str) -> dict[int, str] | None:
        """Errors by chat (empty: sent everywhere); None when notifications are off. Never raises."""
        if not self.notify:
            return None
        token = EnvVar(self.token_env).get_value()
        if not token:
            return {0: f"no bot token: ${self.token_env} is not set"}
        from huracan_assets.telegram.bot import send_text

        return send_text(token, self.chat_ids or [], text, self.base_url)


class AlertResource(ConfigurableResource):
    """Operator alerts (``huracan_assets/alerts.py``) to Telegram chats and an optional webhook. The bot token and
    the webhook URL are read from the environment when an alert is sent; a failure to send is returned, never
    raised, so an unreachable Telegram cannot fail a run or a sensor."""

    enabled: bool = True
    token_env: str = "HURACAN_TELEGRAM_TOKEN"
    base_url: str | None = None
    chat_ids: list[int] | None = None
    webhook_url_env: str | None = None
    webserver_url: str | None = None
    max_per_hour: int = 20

    def send(self, store: ObjectStore, alerts: list) -> dict:
        """Send the alerts not sent before (one per cause per date, at most ``max_per_hour``); returns what went
        out and the errors by channel."""
        from huracan_assets.alerts import AlertLedger, deliver

        if not self.enabled or not alerts:
            return {"sent": [], "errors": {}}
        ledger = AlertLedger(store, self.max_per_hour)
        admitted, held = ledger.admit(alerts)
        senders = {}
        if self.chat_ids:
            senders["telegram"] = self._telegram
        if self.webhook_url_env:
            senders["webhook"] = self._webhook
        if not senders:
            return {"sent": [], "errors": {"none": ["no alert channel: telegram.alert_chat_ids is empty, no webhook"]}}
        errors, undelivered = deliver(admitted, senders, self.webserver_url, held)
        if undelivered:
            ledger.forget(undelivered)
        return {"sent": [a.key for a in admitted if a not in undelivered], "errors": errors}

    def _telegram(self, text: str, _alert) -> str | None:
        token = EnvVar(self.token_env).get_value()
        if not token:
            return f"no bot token: ${self.token_env} is not set"
        from huracan_assets.telegram.bot import send_text

        errors = send_text(token, self.chat_ids or [], text, self.base_url)
        return "; ".join(f"chat {c}: {e}" for c, e in errors.items()) or None

    def _webhook(self, text: str, alert) -> str | None:
        import httpx

        url = EnvVar(self.webhook_url_env).get_value()
        if not url:
            return f"no webhook URL: ${self.webhook_url_env} is not set"
        try:
            answer = httpx.post(url, json={"text": text, **alert.to_dict()}, timeout=10)
        except httpx.HTTPError as exc:
            return f"webhook: {type(exc).__name__}"  # the URL may hold a secret: not repeated
        return None if answer.status_code < 300 else f"webhook: HTTP {answer.status_code}"
