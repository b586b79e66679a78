"""Optional features live in extras; a missing one is a user error naming its install command."""

from __future__ import annotations

import importlib
from types import ModuleType

from latentspec.errors import UserError


class MissingExtra(UserError):
    """An optional dependency that is not installed."""


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module``, or fail with the command that installs the extra providing it.

    >>> require("json", "none", "parsing").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(
            f"{what} needs the {module.split('.')[0]} package ({exc.name or module} is not installed): "
            f"pip install 'latentspec[{extra}]'"
        ) from None
