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
    import latentspec.components.exports  # noqa: F401
    import latentspec.components.modules  # noqa: F401
    import latentspec.components.ops  # noqa: F401
    import latentspec.components.optimizers  # noqa: F401
    import latentspec.components.samplers  # noqa: F401
    import latentspec.components.terms  # noqa: F401
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
