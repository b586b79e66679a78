"""Tensor operations behind the ``op:`` nodes (see ``latentspec.components.ops``).

Stochastic ops take their noise as explicit trailing inputs (drawn by the trainer in
training, given by the caller of an exported graph), so every forward is deterministic.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# torch's own layers for the ops that are exactly one of them: named here, so the component
# declarations reach torch only through latentspec.nn (the import-linter contract).
Sigmoid, Tanh, ReLU, Softplus, Flatten = nn.Sigmoid, nn.Tanh, nn.ReLU, nn.Softplus, nn.Flatten


class Reparameterize(nn.Module):
    """z = μ + exp(½ log σ²) · ε; with k samples μ, log σ² are repeated k times per example
    (rows grouped per example, ``repeat_interleave`` order) and ε has batch B·k."""

    def __init__(self, samples: int = 1) -> None:
        super().__init__()
        self.samples = samples

    def forward(self, mu: Tensor, logvar: Tensor, eps: Tensor) -> Tensor:
        if self.samples > 1:
            mu = mu.repeat_interleave(self.samples, 0)  # (B·k, d)
            logvar = logvar.repeat_interleave(self.samples, 0)
        return mu + torch.exp(0.5 * logvar) * eps


class Corrupt(nn.Module):
    """Denoising-autoencoder corruption q(x̃|x) (Vincent et al. 2010).

    gaussian: x̃ = x + σ·ε; masking: x̃ = x·[u ≥ ν] (a fraction ν set to 0);
    salt_pepper: x̃ = where(u < ν, where(v < ½, low, high), x), with u, v ~ U(0, 1).
    """

    def __init__(self, kind: str, level: float, low: float = 0.0, high: float = 1.0) -> None:
        super().__init__()
        self.kind, self.level, self.low, self.high = kind, level, low, high

    def forward(self, x: Tensor, u: Tensor, v: Tensor | None = None) -> Tensor:
        if self.kind == "gaussian":
            return x + self.level * u
        if self.kind == "masking":
            return x * (u >= self.level).to(x.dtype)
        value = torch.where(v < 0.5, self.low, self.high).to(x.dtype)
        return torch.where(u < self.level, value, x)


class Clamp(nn.Module):
    """y = min(max(x, lo), hi)."""

    def __init__(self, lo: float | None, hi: float | None) -> None:
        super().__init__()
        self.lo, self.hi = lo, hi

    def forward(self, x: Tensor) -> Tensor:
        return torch.clamp(x, self.lo, self.hi)


class Detach(nn.Module):
    """y = x with no gradient flowing back (stop-gradient)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.detach()


class Reshape(nn.Module):
    """(B, *S) → (B, *shape)."""

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1).unflatten(1, self.shape)


class Elementwise(nn.Module):
    """x_1 ∘ x_2 ∘ … ∘ x_n, left to right, ∘ one of add | sub | mul (broadcasting)."""

    _OPS: ClassVar[dict[str, Any]] = {"add": operator.add, "sub": operator.sub, "mul": operator.mul}

    def __init__(self, op: str) -> None:
        super().__init__()
        self.op = op

    def forward(self, *xs: Tensor) -> Tensor:
        return functools.reduce(self._OPS[self.op], xs)


class Concat(nn.Module):
    """Concatenation along per-example axis ``dim`` (tensor axis dim + 1)."""

    def __init__(self, dim: int = 0) -> None:
        super().__init__()
        self.dim = dim + 1 if dim >= 0 else dim

    def forward(self, *xs: Tensor) -> Tensor:
        return xs[0] if len(xs) == 1 else torch.cat(xs, self.dim)


class Split(nn.Module):
    """Pieces of ``sizes`` along per-example axis ``dim`` (tensor axis dim + 1)."""

    def __init__(self, sizes: Sequence[int], dim: int = 0) -> None:
        super().__init__()
        self.sizes = list(sizes)
        self.dim = dim + 1 if dim >= 0 else dim

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return tuple(torch.split(x, self.sizes, self.dim))


class Warp(nn.Module):
    """A random smooth warp: affine θ = [I | 0] + strength·ε_a (ε_a (B, 6)), plus an optional
    elastic displacement elastic·up(ε_e) (ε_e (B, 2, g, g), bilinear to H×W), sampled with
    ``grid_sample`` (border padding)."""

    def __init__(self, strength: float, elastic: float = 0.0) -> None:
        super().__init__()
        self.strength, self.elastic = strength, elastic
        self.register_buffer("identity", torch.tensor([1.0, 0, 0, 0, 1, 0]), persistent=False)

    def forward(self, x: Tensor, eps_affine: Tensor, eps_elastic: Tensor | None = None) -> Tensor:
        theta = (self.identity + self.strength * eps_affine).unflatten(1, (2, 3))  # (B, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
        if eps_elastic is not None:
            field = F.interpolate(eps_elastic, size=x.shape[-2:], mode="bilinear", align_corners=True)  # (B, 2, H, W)
            grid = grid + self.elastic * field.permute(0, 2, 3, 1)
        return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


class _ClampFn(torch.autograd.Function):
    """Forward: z·keep + ref·(1 − keep). Backward: keep·g + (1 − keep)·rule, where rule is 0
    (``zero``) or strength·(z − ref)/B (``toward_mean``): the clamping error of DC-IGN."""

    @staticmethod
    def forward(ctx: Any, z: Tensor, keep: Tensor, ref: Tensor, strength: float) -> Tensor:
        ctx.save_for_backward(z, keep, ref)
        ctx.strength = strength
        return z * keep + ref * (1 - keep)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        z, keep, ref = ctx.saved_tensors
        toward = ctx.strength * (z - ref) / z.shape[0]
        return grad * keep + toward * (1 - keep), None, None, None


class ClampLatents(nn.Module):
    """DC-IGN clamping: in a batch where group g = vary[0] varies, the units of the other
    factor groups are replaced by the batch mean (or the first example's value).

    ``keep`` (G, d) holds 1 for the units that pass through when group g varies.
    """

    def __init__(
        self,
        keep: Sequence[Sequence[float]],
        to: str = "mean",
        rule: str = "toward_mean",
        strength: float = 1.0,
    ) -> None:
        super().__init__()
        self.register_buffer("keep", torch.tensor(keep, dtype=torch.float32))  # (G, d)
        self.to = to
        self.strength = strength if rule == "toward_mean" else 0.0

    def forward(self, z: Tensor, vary: Tensor) -> Tensor:
        keep = F.embedding(vary[:1], self.keep)  # (1, d)
        ref = z.mean(0, keepdim=True) if self.to == "mean" else z[:1]  # (1, d)
        return _ClampFn.apply(z, keep, ref.detach().expand_as(z), self.strength)


class Perturb(nn.Module):
    """Poses near the truth (feedback loop): p' = p_pred with probability π, else
    p_true + σ·ε; per example, from u ~ U(0, 1) (B, 1) and ε (B, *S)."""

    def __init__(self, sigma: float, p_pred: float, detach: bool, rank: int) -> None:
        super().__init__()
        self.sigma, self.p_pred, self.detach, self.rank = sigma, p_pred, detach, rank

    def forward(self, pred: Tensor, true: Tensor, eps: Tensor, u: Tensor) -> Tensor:
        pick = (u < self.p_pred).to(pred.dtype)  # (B, 1)
        pick = pick.reshape(pick.shape[:1] + (1,) * self.rank)  # (B, 1, …, 1)
        out = pick * pred.reshape_as(true) + (1 - pick) * (true + self.sigma * eps)
        return out.detach() if self.detach else out
