"""Component registries. ``load_all()`` imports the components declared in this package
(torch-free); ``latentspec.registries.load_all()`` adds the datasets of ``latentspec.data``."""

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
    TRACKERS,
)
from latentspec.components._registry import OPTIONAL, REQUIRED, Choice, Component, Config, Param, Registry

_loaded = False


def load_all() -> None:
    """Import the modules of this package that register components (none imports torch).

    Datasets live in ``latentspec.data``, above this package: ``latentspec.registries.load_all``
    registers them too."""
    global _loaded
    if _loaded:
        return
    import latentspec.components.exports
    import latentspec.components.modules
    import latentspec.components.ops
    import latentspec.components.optimizers
    import latentspec.components.samplers
    import latentspec.components.terms
    import latentspec.components.trackers  # noqa: F401

    _loaded = True


__all__ = [
    "ALL",
    "DATASETS",
    "EXPORTS",
    "MODULES",
    "OPS",
    "OPTIMIZERS",
    "OPTIONAL",
    "REQUIRED",
    "SAMPLERS",
    "SCHEDULES",
    "TERMS",
    "TRACKERS",
    "Choice",
    "Component",
    "Config",
    "Param",
    "Registry",
    "load_all",
]
