"""The service built from settings and the Engine's store, exchange client and registry (``huracan serve``)."""

from __future__ import annotations

from collections.abc import Callable

from huracan_assets.metrics import EngineCollector
from huracan_assets.params.service import ParamService, controller_spec
from huracan_assets.publishing.rollback import perform_rollback
from huracan_assets.serve.app import Service
from huracan_assets.serve.inputs import InputReader, InputsSpec
from huracan_assets.serve.models import ModelCache
from huracan_assets.settings import Settings, strategy_schemas_dir
from huracan_assets.specs import build_specs, cleaning_policy, quality_thresholds, replay_lead_days
from huracan_assets.storage.object_store import ObjectStore


def build_service(
    settings: Settings,
    store: ObjectStore,
    *,
    read_tokens: frozenset[str],
    admin_tokens: frozenset[str] = frozenset(),
    exchange=None,
    registry_factory: Callable[[], object] | None = None,
    instance_factory: Callable[[], object] | None = None,
) -> Service:
    """A :class:`Service` on ``store``; ``exchange`` fetches the candle days the graph has not stored;
    ``registry_factory`` opens the registry for rollbacks and metrics (None: neither is offered);
    ``instance_factory`` opens the Dagster instance for the run metrics (stage seconds, failing checks)."""
    if not read_tokens:
        raise ValueError(f"the service needs a read token (${settings.serve.read_token_env})")
    specs = build_specs(settings)
    cfg = settings.serve
    spec = InputsSpec(
        replay=specs.replay,
        lead_days=replay_lead_days(settings),
        reference_symbol=settings.universe.reference_symbol,
        policy=cleaning_policy(settings),
        thresholds=quality_thresholds(settings),
        fetch_missing=cfg.fetch_missing_days,
    )
    models = ModelCache(store, specs.recipe.hash, cfg.reload_seconds, threads=1, max_bundles=cfg.cache_entries)
    reader = InputReader(store, spec, exchange, cfg.cache_entries)
    rollback = None
    if registry_factory is not None and admin_tokens:
        registry = None

        def rollback(symbol, to, reason, as_of, requested_by):
            nonlocal registry
            registry = registry or registry_factory()
            return perform_rollback(store, registry, symbol, to, reason, recipe_hash=specs.recipe.hash,
                                    timeframe=settings.timeframe, as_of=as_of, requested_by=requested_by)  # fmt: skip

    params = None
    if registry_factory is not None and settings.params.enabled:
        folder = strategy_schemas_dir(settings)
        params = ParamService.from_folder(
            registry_factory, folder, controller_spec(settings.params), replay_evidence=settings.params.replay_evidence
        )
    collectors = ()
    if registry_factory is not None and cfg.engine_metrics:
        collectors = (EngineCollector(store, registry_factory, instance_factory=instance_factory),)
    return Service(
        store=store,
        models=models,
        reader=reader,
        recipe_hash=specs.recipe.hash,
        read_tokens=read_tokens,
        admin_tokens=admin_tokens,
        presign_seconds=cfg.presign_seconds,
        rollback=rollback,
        collectors=collectors,
        params=params,
    )
