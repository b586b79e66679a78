"""Component registries. ``load_all()`` imports every built-in component (torch-free)."""

from latentspec.components._kinds import (
    ALL,
    DATASETS,
    EXPORTS,
    MODULES,
    OPS,
    OPTIMIZERS,
    SAMPLERS,
    SCHEDULES,
    TERMS,
)
from latentspec.components._registry import REQUIRED, Component, Param, Registry

_loaded = False


def load_all() -> None:
    """Import the modules that register the built-in components (none imports torch)."""
    global _loaded
    if _loaded:
        return
    import latentspec.components.exports
    import latentspec.components.modules
    import latentspec.components.ops
    import latentspec.components.optimizers
    import latentspec.components.samplers
    import latentspec.components.terms
    import latentspec.data.datasets  # noqa: F401

    _loaded = True


__all__ = [
    "ALL",
    "DATASETS",
    "EXPORTS",
    "MODULES",
    "OPS",
    "OPTIMIZERS",
    "REQUIRED",
    "SAMPLERS",
    "SCHEDULES",
    "TERMS",
    "Component",
    "Param",
    "Registry",
    "load_all",
]
