"""Non-finite values (NaN, +-Inf) never become results: one place that finds them and names them.

Torch-free (numpy, json); the trainer passes tensors through :func:`first_nonfinite` after
``.numpy()`` or checks them with torch itself and reports with :func:`describe_index`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from latentspec.errors import UserError


class NonFiniteError(UserError):
    """A NaN or infinity where a number must be finite (data, weights, losses, metrics)."""


def describe_index(index: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


def first_nonfinite(a: np.ndarray) -> tuple[tuple[int, ...], float] | None:
    """The index and value of the first NaN/Inf of a floating array (None when all finite)."""
    if a.dtype.kind not in "fc" or a.size == 0:
        return None
    bad = ~np.isfinite(a)
    if not bad.any():
        return None
    flat = int(np.argmax(bad.reshape(-1)))
    index = tuple(int(i) for i in np.unravel_index(flat, a.shape))
    return index, a.reshape(-1)[flat].item()


def check_arrays(source: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Raise :class:`NonFiniteError` naming the array and first index holding NaN or Inf."""
    for name, a in arrays.items():
        a = np.asarray(a)
        found = first_nonfinite(a)
        if found is not None:
            index, value = found
            count = int((~np.isfinite(a)).sum())
            raise NonFiniteError(
                f"{source}: array {name!r} holds {value} at index {describe_index(index)} "
                f"({count} non-finite value{'s' if count > 1 else ''}); clean the data before training"
            )


def check_numbers(where: str, values: Mapping[str, Any]) -> None:
    """Raise when any number in a (nested) mapping of metrics is not finite."""
    for path, v in _walk(values, where):
        if isinstance(v, float) and not math.isfinite(v):
            raise NonFiniteError(f"{path} is {v}")


def nonfinite_numbers(values: Any, where: str = "$") -> list[str]:
    """JSON paths of every non-finite float in nested dicts/lists."""
    return [path for path, v in _walk(values, where) if isinstance(v, float) and not math.isfinite(v)]


def _walk(v: Any, path: str) -> Iterable[tuple[str, Any]]:
    if isinstance(v, Mapping):
        for k, x in v.items():
            yield from _walk(x, f"{path}.{k}")
    elif isinstance(v, (list, tuple)):
        for i, x in enumerate(v):
            yield from _walk(x, f"{path}[{i}]")
    else:
        yield path, v


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON (non-finite numbers are refused)")


def strict_json_loads(text: str | bytes) -> Any:
    """``json.loads`` that refuses ``NaN``, ``Infinity`` and ``-Infinity`` (Python's json
    accepts them by default; strict JSON does not)."""
    return json.loads(text, parse_constant=_reject_constant)


def strict_json_dumps(obj: Any, **kw: Any) -> str:
    """``json.dumps`` that refuses non-finite floats instead of writing ``NaN``."""
    return json.dumps(obj, allow_nan=False, **kw)
