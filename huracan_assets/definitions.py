"""The code location: ``defs`` for the environment chosen by ``HURACAN_ENV`` (local | prod)."""

from huracan_assets.defs.build import build_definitions
from huracan_assets.settings import load_settings

defs = build_definitions(load_settings())
