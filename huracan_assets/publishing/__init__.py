"""Publishing: champion bundles and the per-coin pointer the trading side (Hamilton) reads."""

from huracan_assets.publishing.champion import (
    STEPS,
    ChampionPointer,
    InjectedCrash,
    NoChampion,
    PointerError,
    PublishRefused,
    champion_urls,
    check_pointer,
    history_key,
    latest_key,
    load_champion_bundle,
    models_prefix,
    publish_champion,
    read_pointer,
)

__all__ = [
    "STEPS",
    "ChampionPointer",
    "InjectedCrash",
    "NoChampion",
    "PointerError",
    "PublishRefused",
    "champion_urls",
    "check_pointer",
    "history_key",
    "latest_key",
    "load_champion_bundle",
    "models_prefix",
    "publish_champion",
    "read_pointer",
]
