"""``latentspec data export``: a split's rows as the model sees them (scaled, shaped fields),
written as ``.npy`` (one field) or ``.npz`` (every field) for ``latentspec-runtime`` and the
runtime's Python API.

Example::

    >>> export_rows(spec, "test", 64, "rows.npz")  # doctest: +SKIP
    'x (64, 1, 28, 28) float32, y (64,) int64'
"""

from __future__ import annotations

import io
import os

import numpy as np

from latentspec.errors import DataError, UserError
from latentspec_runtime._atomic import write_bytes


def check_suffix(path: str, allowed: tuple[str, ...]) -> None:
    """Refuse an output file whose extension the command cannot write."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in allowed:
        raise UserError(f"{path}: cannot write {suffix or 'a file without an extension'}; use {' or '.join(allowed)}")


def field_arrays(spec, split: str, n: int) -> dict[str, np.ndarray]:
    """The first ``n`` rows of each field of ``split``, as the model's inputs (numpy)."""
    from latentspec.data.pipeline import field_arrays as rows_of

    return {k: a[:n] for k, a in rows_of(spec, split).items()}


def export_rows(spec, split: str, n: int, out: str, field: str | None = None) -> str:
    """Write the first ``n`` rows of ``split`` to ``out``; return a one-line summary."""
    if split not in spec.data.split:
        raise DataError(f"--split {split}: the spec's splits are {', '.join(spec.data.split)}")
    arrays = field_arrays(spec, split, n)
    if out.lower().endswith(".npy"):
        if field is None:
            images = [f for f, a in arrays.items() if a.ndim >= 3 and a.dtype == np.float32]
            field = (images or list(arrays))[0]
        if field not in arrays:
            raise DataError(f"--field {field}: the spec's fields are {', '.join(arrays)}")
        arrays = {field: arrays[field]}
        buf = io.BytesIO()
        np.save(buf, arrays[field], allow_pickle=False)
    else:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
    write_bytes(out, buf.getvalue())
    return ", ".join(f"{k} {tuple(a.shape)} {a.dtype}" for k, a in arrays.items())
