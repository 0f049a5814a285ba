"""Package layout only; everything else is in pyproject.toml.

The settings stay in the top-level ``config/`` folder (the single copy). Setuptools maps that folder to the
package ``huracan_assets.config`` at build time, so a wheel (and an sdist) carries the YAML files where
``huracan_assets/settings.py`` looks for them when there is no repository around.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[
        *find_namespace_packages(include=["huracan_assets", "huracan_assets.*"]),
        "huracan_assets.config",
    ],
    package_dir={"huracan_assets.config": "config"},
)
