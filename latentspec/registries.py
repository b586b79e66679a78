"""Every built-in component, datasets included: what `validate`, `schema`, `docs` and `--help`
read. Torch-free.

``latentspec.components`` holds the registries and the component kinds declared there;
datasets register from ``latentspec.data``, which builds on the registries. This module sits
above both, so neither imports the other's way round (the import-linter contracts).
"""

from __future__ import annotations


def load_all() -> None:
    """Register every built-in component of every kind (idempotent)."""
    import latentspec.components
    import latentspec.data.datasets

    latentspec.components.load_all()
