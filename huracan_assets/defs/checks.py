"""Every asset check's description, in one place: what it guards and what a failure means (shown in the UI)."""

from dagster import AssetCheckSpec

DESCRIPTIONS = {
    "universe_is_not_empty": "ERROR when no coin is selected for D (no data for the date, or filters too strict).",
    "candles_all_symbols_ok": "WARN naming each coin whose candles of D failed (malformed, too incomplete, no bars).",
    "candles_schema_valid": "ERROR naming coins whose bars could not be cleaned into the candle schema.",
    "candles_complete": "WARN for coins with fewer bars than candles.warn_completeness of the day, and their gaps; "
    "ERROR when a coin is below candles.min_completeness (held out downstream).",
    "candles_ohlc_sane": "WARN for bars repaired or dropped (high below low, a close outside the range, NaN).",
    "candles_fresh": "WARN when the last bar of D is more than candles.max_lag_bars before the day's end.",
    "candles_liquid": "WARN for thin books: little traded value, many zero-volume bars or a wide spread estimate.",
    "spreads_all_symbols_ok": "WARN naming coins without a spread estimate for D.",
    "spreads_from_finest_bars": "WARN for coins whose spread came from the training bars, not the finer ones.",
    "features_all_symbols_ok": "WARN naming coins whose features of D could not be built (missing warm-up days).",
    "feature_recipe_hash_matches": "ERROR when the recipe's hash differs from the pinned features.recipe_hash.",
    "features_have_no_lookahead": "ERROR when features recomputed with the future cut off differ (a look-ahead).",
    "labels_all_symbols_ok": "WARN naming coins whose triple-barrier labels of D could not be built.",
    "labels_are_balanced_and_covered": "WARN when too few events resolve or one class dominates.",
    "regimes_all_symbols_ok": "WARN naming coins without regimes for D.",
    "regimes_are_not_degenerate": "WARN when one regime covers more than regimes.max_single_regime_share of D.",
    "engine_signals_all_symbols_ok": "WARN naming coins whose engine signals of D could not be built.",
    "engine_signals_respect_net_edge_floor": "ERROR when a signal is emitted below the net edge floor after costs.",
    "gated_engines_do_not_contribute": "ERROR when an engine gated off in a regime still moves the combined score.",
    "meta_weights_all_symbols_ok": "WARN naming coins without meta weights for D.",
    "meta_weights_are_finite_and_sum_to_one": "ERROR when the combiner's weights are not finite or do not sum to 1.",
    "challenger_all_symbols_ok": "WARN naming coins whose challenger failed (skipped coins are listed in metadata).",
    "walk_forward_canaries_pass": "ERROR naming coins whose canaries failed (shuffled label, injected leak, "
    "truncated future): such a challenger is never promoted.",
    "shadow_all_symbols_ok": "WARN naming coins whose shadow trading of D failed.",
    "shadow_minimum_sample": "WARN for challengers with fewer shadow trades than promotion.min_trades.",
    "drawdown_kill_switch": "WARN per coin past promotion.kill_switch_drawdown (no promotion for it); a key D|* "
    "when the share of such coins stopped every promotion of the day.",
    "champion_pointer_valid": "ERROR when a coin's latest.json does not name a bundle that verifies.",
    "champion_bundle_verifies": "ERROR when a champion's published bundle does not verify against its pointer.",
    "param_posteriors_all_symbols_ok": "WARN naming coins whose strategy presets could not be replayed for D.",
    "param_kill_switch": "WARN naming coins whose parameter controller is past its kill switch for a strategy "
    "(its realised replay rewards fell params.kill_drawdown_bps below their peak): tomorrow is the safe preset.",
}


def check_spec(name: str, asset: str) -> AssetCheckSpec:
    """The check ``name`` of ``asset``, with its description (KeyError for a check without one)."""
    return AssetCheckSpec(name, asset=asset, description=DESCRIPTIONS[name])
