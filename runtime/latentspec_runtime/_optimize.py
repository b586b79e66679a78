"""The optimisation loop of entries of kind "optimize" (``invert``, ``inpaint``), in numpy.

The ONNX graph computes one step's per-example loss and the gradient of their sum; this module
owns the rest: start values, Adam, projection and the choice among several starts. It follows
docs/bundle-format.md line by line in float32 so that it matches the exporter's PyTorch
reference; the expressions keep the document's order of operations for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ._manifest import OptimizeSpec

# step(z, names) -> the graph outputs `names` evaluated at variable z (data inputs bound).
StepFn = Callable[[np.ndarray, Sequence[str]], list[np.ndarray]]


def project(z: np.ndarray, kind: str | None, radius: float) -> np.ndarray:
    """Project each row of ``z`` (B, dim): onto the unit sphere, into an l2 ball, or not at all."""
    if kind is None:
        return z
    norm = np.maximum(np.sqrt(np.sum(z * z, axis=1, keepdims=True)), 1e-12)  # (B, 1)
    if kind == "unit_l2":
        return z / norm
    return z * np.minimum(1.0, radius / norm)  # "l2_ball"


def start_value(opt: OptimizeSpec, batch: int, start: int, seed: int) -> np.ndarray:
    """The variable before the first step of start number ``start`` (B, dim), projected."""
    rng = np.random.default_rng([seed, start])
    init = opt.init
    if init.kind == "zeros" or init.value is None:
        z = np.zeros((batch, opt.dim), dtype=np.float32)
    else:
        z = np.repeat(np.asarray(init.value, dtype=np.float32)[None], batch, axis=0)
    if init.kind == "normal" or start > 0:
        z = z + init.scale * rng.standard_normal([batch, opt.dim]).astype(np.float32)
    return project(z, opt.project, opt.radius)


def optimize(
    step: StepFn,
    opt: OptimizeSpec,
    batch: int,
    outputs: Sequence[str],
    *,
    steps: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Run every start for ``steps`` Adam steps; per example keep the start of lowest final loss.

    Returns the user-visible ``outputs`` (the variable's name gives the final variable) and the
    final per-example loss under ``"loss"``.
    """
    b1, b2 = opt.betas
    lr, eps = opt.lr, opt.eps
    grad_names = [opt.loss, opt.gradient]
    final_names = [opt.loss, *[n for n in outputs if n != opt.variable]]
    best: dict[str, np.ndarray] | None = None
    for j in range(opt.starts):
        z = start_value(opt, batch, j, seed)  # (B, dim)
        m = np.zeros_like(z)
        v = np.zeros_like(z)
        for t in range(1, steps + 1):
            g = step(z, grad_names)[1]  # (B, dim)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            z = z - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
            z = project(z, opt.project, opt.radius)
        final = step(z, final_names)
        result = dict(zip(final_names[1:], final[1:]))
        result[opt.variable] = z
        result = {n: result[n] for n in outputs}
        result["loss"] = final[0]  # (B,)
        best = result if best is None else _keep_better(best, result)
    assert best is not None  # opt.starts >= 1, checked with the manifest
    return best


def _keep_better(best: dict[str, np.ndarray], new: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per example, ``new``'s rows where its loss is lower (or ``best``'s is NaN), else ``best``'s."""
    old_loss, new_loss = best["loss"], new["loss"]
    better = (new_loss < old_loss) | (np.isnan(old_loss) & ~np.isnan(new_loss))  # (B,)
    if not better.any():
        return best
    merged = {}
    for name, old in best.items():
        mask = better.reshape(better.shape + (1,) * (old.ndim - 1))
        merged[name] = np.where(mask, new[name], old)
    return merged
