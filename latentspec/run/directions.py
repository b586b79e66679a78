"""Editing directions and factor calibration in a trained model's latent space.

A semantic direction is the mean difference of codes between two groups of examples,
d = mean(code | field = b) − mean(code | field = a); an edit is decode(code(x) + α·d). A latent
*group* (``latents.z.groups``: named code units, the factors of DC-IGN) is a direction too: its
unit, or, once calibrated, the direction that moves the group's prediction of its factor by +1.

Calibration: for a group named after a continuous factor (a scalar float data field of the spec,
else a scalar ``factor`` array of the dataset), least squares fits factor ≈ b + w·code[units]
over the training split's codes (the encoder's deterministic code, e.g. the posterior mean), and
records w, b and the fit's R². The direction d with d[units] = w / ‖w‖² (zero elsewhere) changes
the prediction by exactly +1 factor unit; the bundle's runtime edits with it (docs/bundle-format.md).

Below both ``latentspec.train`` and ``latentspec.export``: exporting never imports the trainer.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from latentspec.errors import RunError
from latentspec.run._codes import code_tensors, codes

if TYPE_CHECKING:
    from latentspec.spec import Spec

#: The accepted forms of ``--direction``, for help texts and error messages.
FORMS = (
    "NAME=FIELD:A:B (mean code of the training rows with FIELD = B minus those with FIELD = A; "
    "A or B may be a range LO..HI of a continuous field), "
    "NAME=group:GROUP (a latent group: +1 of its factor when calibrated, else its code unit), "
    "NAME=unit:K (code unit K)"
)
EXAMPLES = "e.g. one_to_seven=y:1:7, gaze_right=gaze_x:-1..-0.5:0.5..1, turn=group:yaw, u3=unit:3"


@dataclasses.dataclass(frozen=True)
class DirectionRequest:
    """One ``--direction`` request: ``kind`` is "means" (field, a, b), "group" or "unit"."""

    name: str
    kind: str
    field: str | None = None
    a: str | None = None
    b: str | None = None
    group: str | None = None
    unit: int | None = None

    @property
    def source(self) -> str:
        """The request after ``NAME=``, as the manifest records it (``y:1:7``, ``group:yaw``)."""
        if self.kind == "means":
            return f"{self.field}:{self.a}:{self.b}"
        return f"group:{self.group}" if self.kind == "group" else f"unit:{self.unit}"


def read_directions(run: str) -> dict[str, Any]:
    """``RUN/directions.json`` ({name: record}; a script or an earlier step wrote it), or {} when
    there is none; RunError when it cannot be read or is not a mapping."""
    path = os.path.join(run, "directions.json")
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as f:
            found = json.load(f)
    except (OSError, ValueError) as exc:
        raise RunError(f"{path}: cannot read it ({exc})") from None
    if not isinstance(found, dict):
        raise RunError(f"{path}: expected a mapping of direction names to records, not {type(found).__name__}")
    return found


def parse_direction(text: str) -> DirectionRequest:
    """``NAME=FIELD:A:B`` | ``NAME=group:GROUP`` | ``NAME=unit:K`` -> a :class:`DirectionRequest`."""
    name, sep, rest = text.partition("=")
    parts = rest.split(":")
    bad = RunError(f"--direction {text!r}: expected one of {FORMS}; {EXAMPLES}")
    if not sep or not name.isidentifier() or not all(parts):
        raise bad
    if len(parts) == 3:
        return DirectionRequest(name, "means", field=parts[0], a=parts[1], b=parts[2])
    if len(parts) == 2 and parts[0] == "group":
        return DirectionRequest(name, "group", group=parts[1])
    if len(parts) == 2 and parts[0] == "unit":
        try:
            unit = int(parts[1])
        except ValueError:
            raise RunError(f"--direction {text!r}: unit:K takes a code unit index K >= 0, got {parts[1]!r}") from None
        if unit < 0:
            raise RunError(f"--direction {text!r}: unit:K takes a code unit index K >= 0, got {unit}")
        return DirectionRequest(name, "unit", unit=unit)
    raise bad


def code_latent(spec: Spec) -> str | None:
    """The latent whose codes :func:`codes` returns: the latent drawn from the code tensor (a
    VAE's ``z`` for ``z_mu``), or the code tensor itself when it is a latent."""
    try:
        _, code = code_tensors(spec)
    except RunError:
        return None
    for n in spec.nodes.values():
        if n.kind == "op" and n.type == "reparameterize" and n.inputs and n.inputs[0] == code:
            if n.outputs and n.outputs[0] in spec.latents:
                return n.outputs[0]
    return code if code in spec.latents else None


def _select(values: np.ndarray, field: str, v: str) -> np.ndarray:
    """The rows whose ``field`` equals ``v``, or lies in ``LO..HI`` (both ends included)."""
    lo, dots, hi = v.partition("..")
    try:
        if dots:
            return (values >= float(lo)) & (values <= float(hi))
        return values == type(values.flat[0].item())(v)
    except ValueError:
        raise RunError(f"direction: {v!r} is not a value (or a range LO..HI) of field '{field}'") from None


def direction(spec: Spec, model, field: str, a: str, b: str) -> np.ndarray:
    """Mean code of the training examples whose ``field`` equals b, minus that of a; a or b may
    be a range ``LO..HI`` (e.g. ``0.5..1`` of a continuous factor field)."""
    from latentspec.data.pipeline import SplitData

    if field not in spec.data.fields:
        raise RunError(f"direction: no data field '{field}' (fields: {', '.join(spec.data.fields)})")
    data = SplitData.build(spec, "train")
    z = codes(spec, model, data).numpy()
    values = data.fields[field].numpy()[: len(z)]
    if values.ndim != 1:
        raise RunError(f"direction: field '{field}' must hold one value per example (a label or a factor)")
    out = []
    for v in (a, b):
        sel = _select(values, field, v)
        if not sel.any():
            raise RunError(f"direction: no training example has {field} = {v}")
        out.append(z[sel].mean(0))
    return (out[1] - out[0]).astype(np.float32)


# -- calibration ---------------------------------------------------------------------------------


def _factor_values(spec: Spec, data, name: str, code_field: str, n: int) -> tuple[np.ndarray, str] | None:
    """The values of factor ``name`` on the first ``n`` training rows of ``data`` (the rows whose
    codes :func:`codes` returns), and where they come from ("field" or "dataset"); None if
    ``name`` is no continuous, one-number-per-row field or dataset factor."""
    from latentspec.data.pipeline import array_infos, group_rows, load_arrays

    fields = spec.data.fields
    f = fields.get(name)
    if f is not None and f.group == fields[code_field].group:
        info = spec.infos.get(name)
        if info is not None and info.dtype == "float32" and not info.classes and tuple(info.shape or ()) in ((), (1,)):
            return data.fields[name].numpy().reshape(len(data.fields[name]), -1)[:n, 0].astype(np.float64), "field"
    info = array_infos(spec).get(name)
    if info is None or info.kind != "factor" or info.shape != () or info.classes or info.names:
        return None
    _, rows = group_rows(spec, "train")[fields[code_field].group]
    return load_arrays(spec)[name][rows[:n]].astype(np.float64), "dataset"


def fit_factor(z: np.ndarray, y: np.ndarray) -> dict[str, Any] | None:
    """Least squares y ≈ b + w·z (z: (N, k) codes of a group's units; y: (N,) factor values):
    {weights, bias, r2, rows, range}; None when y is constant or w is zero (nothing to follow)."""
    y = np.asarray(y, np.float64)
    spread = float(((y - y.mean()) ** 2).sum())
    if len(y) < 2 or spread <= 0.0:
        return None
    design = np.concatenate([np.asarray(z, np.float64), np.ones((len(y), 1))], 1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    w, b = coef[:-1], float(coef[-1])
    if not np.isfinite(coef).all() or float(w @ w) <= 1e-24:
        return None
    residual = float(((design @ coef - y) ** 2).sum())
    return {
        "weights": [float(v) for v in w],
        "bias": b,
        "r2": max(0.0, 1.0 - residual / spread),
        "rows": len(y),
        "range": [float(y.min()), float(y.max())],
    }


def latent_groups(spec: Spec, model=None) -> dict[str, dict[str, dict[str, Any]]]:
    """{latent: {group: {units, factor, calibration}}} for every latent that declares groups.

    With ``model``, each group of the code latent (:func:`code_latent`) named after a continuous
    factor is calibrated on the training split (:func:`fit_factor`); ``factor`` then names it and
    ``calibration`` holds the fit and ``source`` ("field": the spec's data field, in the field's
    units; "dataset": the dataset's factor array, in its documented units). Otherwise both are null.
    """
    out: dict[str, dict[str, dict[str, Any]]] = {
        name: {
            g: {"units": [int(u) for u in units], "factor": None, "calibration": None}
            for g, units in lat.groups.items()
        }
        for name, lat in spec.latents.items()
        if lat.groups
    }
    latent = code_latent(spec) if model is not None else None
    if latent not in out:
        return out
    from latentspec.data.pipeline import SplitData

    field, _ = code_tensors(spec)
    data = SplitData.build(spec, "train")
    z = codes(spec, model, data).double().numpy()
    if z.shape[1] != spec.latents[latent].dim:
        return out
    for group, record in out[latent].items():
        found = _factor_values(spec, data, group, field, len(z))
        if found is None:
            continue
        values, source = found
        fit = fit_factor(z[:, record["units"]], values)
        if fit is not None:
            record["factor"] = group
            record["calibration"] = {"source": source, **fit}
    return out


def group_direction(latent_dim: int, record: dict[str, Any]) -> tuple[np.ndarray, str]:
    """A group's editing direction over the whole code and its units: +1 factor unit
    (w / ‖w‖² on the group's units) when calibrated, "factor"; else its one unit, "code"."""
    d = np.zeros(latent_dim, np.float64)
    units = record["units"]
    cal = record.get("calibration")
    if cal is not None:
        w = np.asarray(cal["weights"], np.float64)
        d[units] = w / float(w @ w)
        return d.astype(np.float32), "factor"
    if len(units) != 1:
        raise RunError(
            f"group of units {units} has no calibration (no continuous factor of that name), so it has "
            "no single direction; store one of its units: NAME=unit:K"
        )
    d[units[0]] = 1.0
    return d.astype(np.float32), "code"
