"""Latent groups (named code units) and their factor calibration: the manifest's
``latents.<latent>.groups`` (docs/bundle-format.md), and the edits they make.

A group ``g`` holds the code units ``units``. A calibrated group also holds a linear fit of the
factor it is named after, made at export on the training split's codes:
``factor ≈ bias + weights · code[units]``, with its R². Editing a code by ``+a`` factor units moves
it along ``d`` with ``d[units] = weights / ‖weights‖²``, which changes the fit's prediction by
exactly ``a``; by ``+a`` code units it moves it by ``a`` along ``weights / ‖weights‖`` (or along
the group's one unit when it has no calibration).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

_NUMBER = (int, float)
#: Below this R² a calibrated edit warns: the factor is poorly explained by the group's units,
#: so a step of one factor unit in the fit may move the picture's factor by much less.
POOR_R2 = 0.5
UNITS = ("factor", "code")


class CalibrationWarning(UserWarning):
    """An edit in factor units through a calibration whose R² is below ``POOR_R2``."""


@dataclass(frozen=True)
class Calibration:
    """The export's least-squares fit ``factor ≈ bias + weights · code[units]`` on the training split."""

    source: str  # "field": the spec's data field of the factor's name; "dataset": the dataset's factor array
    weights: np.ndarray  # float64, one per unit of the group
    bias: float
    r2: float  # coefficient of determination on the training rows
    rows: int  # training rows fitted
    range: tuple[float, float] | None  # the factor's range over those rows


@dataclass(frozen=True)
class LatentGroup:
    """A named group of code units of ``latent``; ``factor`` names the factor it is calibrated
    against (None when it is not: then ``calibration`` is None too)."""

    name: str
    latent: str
    dim: int | None  # the latent's dim, when the manifest gives it
    units: tuple[int, ...]
    factor: str | None
    calibration: Calibration | None

    def direction(self, units: str = "factor") -> np.ndarray:
        """The direction (over the whole code, float32) that one step of an edit moves along.

        ``units="factor"``: +1 of the factor in the fit (needs a calibration); ``"code"``: length 1
        along the fit's weights, or the group's single unit when it has no calibration.
        """
        if units not in UNITS:
            raise _input_error(f"units must be 'factor' or 'code', got {units!r}")
        dim = self.dim if self.dim is not None else max(self.units) + 1
        d = np.zeros(dim, np.float64)
        cal = self.calibration
        if cal is not None:
            w = cal.weights
            d[list(self.units)] = w / float(w @ w) if units == "factor" else w / math.sqrt(float(w @ w))
            return d.astype(np.float32)
        if units == "factor":
            raise _input_error(
                f"group {self.name!r} has no calibration (no continuous factor of that name in the "
                "training data), so it has no factor units; edit it in code units (units='code'; CLI: --units code)"
            )
        if len(self.units) != 1:
            raise _input_error(
                f"group {self.name!r} has {len(self.units)} units and no calibration, so no single "
                "direction; edit a unit with a vector: edit(x, direction=vector)"
            )
        d[self.units[0]] = 1.0
        return d.astype(np.float32)

    def predict(self, code: Any) -> np.ndarray:
        """The calibrated factor's value predicted from codes (shape ``(..., dim)`` -> ``(...)``)."""
        if self.calibration is None:
            raise _input_error(f"group {self.name!r} has no calibration, so no factor to predict")
        z = np.asarray(code, np.float64)
        return z[..., list(self.units)] @ self.calibration.weights + self.calibration.bias

    def describe(self) -> str:
        """``yaw  units [0]  factor yaw (dataset), R² 0.93, range [-0.6, 0.6]``."""
        text = f"{self.name}  units {list(self.units)}"
        cal = self.calibration
        if cal is None:
            return text + "  (no factor calibration: edits in code units)"
        text += f"  factor {self.factor} ({cal.source}), R² {cal.r2:.3f} on {cal.rows} rows"
        if cal.range is not None:
            text += f", range [{cal.range[0]:g}, {cal.range[1]:g}]"
        if cal.r2 < POOR_R2:
            text += f"  (poor fit: R² < {POOR_R2})"
        return text


def warn_if_poor(group: LatentGroup) -> None:
    """A :class:`CalibrationWarning` for an edit in factor units through a poor fit."""
    cal = group.calibration
    if cal is not None and cal.r2 < POOR_R2:
        warnings.warn(
            f"group {group.name!r}: the calibration explains R² {cal.r2:.3f} of factor {group.factor!r} "
            f"(< {POOR_R2}); an edit of 1 factor unit may move the decoded factor by much less",
            CalibrationWarning,
            stacklevel=3,
        )


def _input_error(message: str) -> Exception:
    from ._manifest import InputError

    return InputError(message)


def parse_groups(p: Any, raw: dict[str, Any]) -> dict[str, dict[str, LatentGroup]]:
    """{latent: {group: LatentGroup}} from ``$.latents``; problems go to ``p`` (a _Problems).
    Manifests written before groups were recorded have none: {}."""
    out: dict[str, dict[str, LatentGroup]] = {}
    latents = p.get(raw, "latents", "$", dict, required=False, default={})
    for latent, about in latents.items():
        if not isinstance(about, dict) or about.get("groups") is None:
            continue
        path = f"$.latents.{latent}"
        dim = about.get("dim")
        dim = dim if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0 else None
        groups = p.get(about, "groups", path, dict, default={})
        for name, item in groups.items():
            group = _parse_group(p, latent, dim, name, item, f"{path}.groups.{name}")
            if group is not None:
                out.setdefault(latent, {})[name] = group
    return out


def _parse_group(p: Any, latent: str, dim: int | None, name: str, raw: Any, path: str) -> LatentGroup | None:
    if isinstance(raw, list):  # shorthand, as in the spec: the units alone
        raw = {"units": raw}
    if not isinstance(raw, dict):
        p.add(path, "expected an object with units, factor and calibration (or a list of units)")
        return None
    before = len(p.lines)
    units = p.get(raw, "units", path, list, default=[])
    ok = bool(units) and all(isinstance(u, int) and not isinstance(u, bool) and u >= 0 for u in units)
    if not ok or len(set(units)) != len(units) or (dim is not None and max(units) >= dim):
        top = f"0..{dim - 1}" if dim is not None else "non-negative"
        p.add(f"{path}.units", f"expected distinct unit indices in {top}, got {json.dumps(units)}")
    factor = p.get(raw, "factor", path, str, required=False)
    cal = None
    raw_cal = p.get(raw, "calibration", path, dict, required=False)
    if raw_cal is not None:
        if factor is None:
            p.add(f"{path}.factor", "a calibrated group names its factor")
        cal = _parse_calibration(p, raw_cal, f"{path}.calibration", len(units))
    if len(p.lines) > before:
        return None
    return LatentGroup(name, latent, dim, tuple(units), factor, cal)


def _parse_calibration(p: Any, raw: dict[str, Any], path: str, k: int) -> Calibration | None:
    before = len(p.lines)
    source = p.get(raw, "source", path, str)
    weights = p.get(raw, "weights", path, list, default=[])
    numbers = all(isinstance(v, _NUMBER) and not isinstance(v, bool) for v in weights)
    if not numbers or len(weights) != k or (numbers and not any(weights)):
        p.add(f"{path}.weights", f"expected {k} numbers (one per unit), not all zero, got {json.dumps(weights)}")
    bias = p.get(raw, "bias", path, _NUMBER)
    r2 = p.get(raw, "r2", path, _NUMBER)
    if r2 is not None and not 0 <= r2 <= 1:
        p.add(f"{path}.r2", f"expected a number in [0, 1], got {r2}")
    rows = p.get(raw, "rows", path, int)
    rng = p.get(raw, "range", path, list, required=False)
    if rng is not None and not (
        len(rng) == 2 and all(isinstance(v, _NUMBER) and not isinstance(v, bool) for v in rng) and rng[0] <= rng[1]
    ):
        p.add(f"{path}.range", f"expected [lo, hi] with lo <= hi, got {json.dumps(rng)}")
    if len(p.lines) > before:
        return None
    return Calibration(
        source,
        np.asarray(weights, np.float64),
        float(bias),
        float(r2),
        int(rows),
        None if rng is None else (float(rng[0]), float(rng[1])),
    )
