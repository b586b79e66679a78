"""Editing directions in latent space (lecture: "smart editing"; gaze redirection).

A semantic direction is the mean difference of codes between two groups of examples,
d = mean(code | field = b) − mean(code | field = a); an edit is decode(code(x) + α·d).
"""

from __future__ import annotations

import numpy as np

from latentspec.errors import RunError
from latentspec.spec import Spec
from latentspec.train.data import SplitData
from latentspec.train.evaluate import codes


def parse_direction(text: str) -> tuple[str, str, str, str]:
    """``NAME=FIELD:A:B`` -> (name, field, a, b)."""
    name, sep, rest = text.partition("=")
    parts = rest.split(":")
    if not sep or not name.isidentifier() or len(parts) != 3 or not all(parts):
        raise RunError(f"--direction {text!r}: expected NAME=FIELD:A:B, e.g. one_to_seven=y:1:7")
    return name, parts[0], parts[1], parts[2]


def direction(spec: Spec, model, field: str, a: str, b: str) -> np.ndarray:
    """Mean code of the training examples whose ``field`` equals b, minus that of a."""
    if field not in spec.data.fields:
        raise RunError(f"direction: no data field '{field}' (fields: {', '.join(spec.data.fields)})")
    data = SplitData.build(spec, "train")
    z = codes(spec, model, data).numpy()
    values = data.fields[field].numpy()
    if values.ndim != 1:
        raise RunError(f"direction: field '{field}' must hold one value per example (a label or a factor)")
    out = []
    for v in (a, b):
        try:
            sel = values == type(values.flat[0].item())(v)
        except ValueError:
            raise RunError(f"direction: {v!r} is not a value of field '{field}'") from None
        if not sel.any():
            raise RunError(f"direction: no training example has {field} = {v}")
        out.append(z[sel].mean(0))
    return (out[1] - out[0]).astype(np.float32)
