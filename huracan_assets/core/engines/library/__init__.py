"""One engine per module; each module registers its class with ``register_engine``."""
