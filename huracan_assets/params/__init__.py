"""The parameter controller's I/O: presets, posteriors, controller state and decisions in the registry
(``store.py``); the pure controller is :mod:`huracan_assets.core.params`."""

from huracan_assets.params.store import ALL_INSTRUMENTS, ParamStore, decision_row

__all__ = ["ALL_INSTRUMENTS", "ParamStore", "decision_row"]
