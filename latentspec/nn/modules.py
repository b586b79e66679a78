"""Neural modules behind the ``module:`` nodes (see ``latentspec.components.modules``).

Every forward takes batched tensors, keeps the batch axis symbolic (``flatten(1)``,
``unflatten(1, ...)``) and has no control flow on tensor values, so the modules trace with
``torch.fx`` and export with ``torch.export`` under a dynamic batch dimension.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Embedding = nn.Embedding  # `module: embedding` is torch's own (see latentspec.nn.ops on why it is named here)

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
    "none": nn.Identity,
}


def make_activation(name: str) -> nn.Module:
    """The activation layer called ``name`` (``"none"`` is the identity)."""
    return _ACTIVATIONS[name]()


def norm2d(kind: str, channels: int) -> nn.Module:
    """A 2-D normalisation layer: none | batch | group (gcd(32, C) groups)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(_gcd(32, channels), channels)
    return nn.Identity()


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


class OneHot(nn.Module):
    """Class indices (B, *S) int64 → one-hot (B, *S, k) float, as a lookup in an identity."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.classes = classes
        self.register_buffer("eye", torch.eye(classes), persistent=False)  # (k, k)

    def forward(self, x: Tensor) -> Tensor:
        return F.embedding(x, self.eye)


class FlatConcat(nn.Module):
    """Flattens every input to (B, D_i), one-hot encoding class inputs, and concatenates."""

    def __init__(self, classes: Sequence[int | None]) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(OneHot(k) if k else nn.Identity() for k in classes)
        self.plain = len(classes) == 1 and not classes[0]  # the common case: one float input

    def forward(self, *xs: Tensor) -> Tensor:
        if self.plain:
            return xs[0].flatten(1)
        parts = [enc(x).flatten(1) for enc, x in zip(self.encoders, xs, strict=True)]
        return parts[0] if len(parts) == 1 else torch.cat(parts, 1)  # (B, Σ D_i)


class MLP(nn.Module):
    """[Linear → norm → activation → dropout] per hidden width, then an optional output Linear.

    y = out_act(W_out h_L + b_out), h_l = act(W_l h_{l-1} + b_l), h_0 = concat(flatten(x_i)).
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int | None = None,
        out_shape: Sequence[int] | None = None,
        activation: str = "relu",
        norm: str = "none",
        dropout: float = 0.0,
        out_activation: str = "none",
        bias: bool = True,
        classes: Sequence[int | None] = (None,),
    ) -> None:
        super().__init__()
        self.inputs = FlatConcat(classes)
        layers: list[nn.Module] = []
        d = in_features
        for width in hidden:
            layers.append(nn.Linear(d, width, bias=bias))
            if norm == "batch":
                layers.append(nn.BatchNorm1d(width))
            elif norm == "layer":
                layers.append(nn.LayerNorm(width))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            d = width
        if out_features is not None:
            layers.append(nn.Linear(d, out_features, bias=bias))
            if out_activation != "none":
                layers.append(make_activation(out_activation))
        self.net = nn.Sequential(*layers)
        self.out_shape = tuple(out_shape) if out_shape else None

    def forward(self, *xs: Tensor) -> Tensor:
        y = self.net(self.inputs(*xs))  # (B, D_out)
        return y if self.out_shape is None else y.unflatten(1, self.out_shape)


class ConvEncoder(nn.Module):
    """[Conv2d(k, s, p) → norm → activation] per width, flatten, then an optional Linear."""

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int],
        kernel: int,
        stride: int,
        padding: int,
        activation: str,
        norm: str,
        conv_features: int,
        out_features: int | None,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for width in channels:
            layers += [nn.Conv2d(c, width, kernel, stride, padding), norm2d(norm, width)]
            layers.append(make_activation(activation))
            c = width
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Linear(conv_features, out_features) if out_features is not None else None

    def forward(self, *xs: Tensor) -> Tensor:
        x = xs[0] if len(xs) == 1 else torch.cat(xs, 1)  # (B, ΣC, H, W)
        h = self.convs(x).flatten(1)  # (B, C_L·H_L·W_L)
        return h if self.fc is None else self.fc(h)


class Unpool2d(nn.Module):
    """2×2 unpooling by zero insertion (Dosovitskiy et al. 2015): each entry becomes the top-left
    corner of a 2×2 block of zeros. (B, C, H, W) → (B, C, 2H, 2W)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("corner", torch.tensor([[[1.0, 0.0]], [[0.0, 0.0]]]), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        _, c, h, w = x.shape
        blocks = x[:, :, :, None, :, None] * self.corner  # (B, C, H, 2, W, 2)
        return blocks.reshape(x.shape[0], c, 2 * h, 2 * w)


def up_block(kind: str, c_in: int, c_out: int, kernel: int) -> nn.Module:
    """A ×2 up-sampling block: transposed | nearest | unpool (each keeps sizes exactly ×2)."""
    if kind == "transposed":
        padding = (kernel - 1) // 2
        return nn.ConvTranspose2d(c_in, c_out, kernel, 2, padding, output_padding=2 + 2 * padding - kernel)
    up = nn.Upsample(scale_factor=2, mode="nearest") if kind == "nearest" else Unpool2d()
    return nn.Sequential(up, nn.Conv2d(c_in, c_out, kernel, 1, kernel // 2))


class ConvDecoder(nn.Module):
    """Up-convolutional decoder: Linear → reshape (C_0, H/2^n, W/2^n) → n ×2 up-blocks."""

    def __init__(
        self,
        in_features: int,
        shape: Sequence[int],
        channels: Sequence[int],
        kernel: int,
        upsample: str,
        activation: str,
        norm: str,
        out_activation: str,
        classes: Sequence[int | None] = (None,),
    ) -> None:
        super().__init__()
        c_img, h, w = shape
        n = len(channels)
        start = (channels[0], h >> n, w >> n)
        self.inputs = FlatConcat(classes)
        self.fc = nn.Sequential(
            nn.Linear(in_features, start[0] * start[1] * start[2]),
            make_activation(activation),
            nn.Unflatten(1, start),
        )
        blocks: list[nn.Module] = []
        for i, c in enumerate(channels):
            last = i + 1 == n
            blocks.append(up_block(upsample, c, c_img if last else channels[i + 1], kernel))
            if not last:
                blocks += [norm2d(norm, channels[i + 1]), make_activation(activation)]
        if out_activation != "none":
            blocks.append(make_activation(out_activation))
        self.up = nn.Sequential(*blocks)

    def forward(self, *xs: Tensor) -> Tensor:
        return self.up(self.fc(self.inputs(*xs)))  # (B, C, H, W)


class GaussianHead(nn.Module):
    """Two linear maps of one feature vector: μ = W_μ h + b_μ and log σ² = W_v h + b_v."""

    def __init__(self, in_features: int, dim: int) -> None:
        super().__init__()
        self.mu = nn.Linear(in_features, dim)
        self.logvar = nn.Linear(in_features, dim)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return self.mu(h), self.logvar(h)  # (B, d), (B, d)


class PCA(nn.Module):
    """A fitted linear code: c = (x − m) Vᵀ [/ s], x̂ = (c [· s]) V + m.

    ``V`` (dim, D) holds the top principal directions, ``s`` the standard deviation of each
    coefficient; ``fit(x)`` sets both from data (the buffers start as m = 0, V = I, s = 1).
    """

    def __init__(self, in_shape: Sequence[int], dim: int, whiten: bool = False) -> None:
        super().__init__()
        self.in_shape = tuple(in_shape)
        d_in = 1
        for n in self.in_shape:
            d_in *= n
        self.whiten = whiten
        self.register_buffer("mean", torch.zeros(d_in))  # (D,)
        self.register_buffer("components", torch.eye(dim, d_in))  # (dim, D)
        self.register_buffer("scale", torch.ones(dim))  # (dim,)

    def forward(self, x: Tensor) -> Tensor:
        code = (x.flatten(1) - self.mean) @ self.components.T  # (B, dim)
        return code / self.scale if self.whiten else code

    def inverse(self, code: Tensor) -> Tensor:
        if self.whiten:
            code = code * self.scale
        return (code @ self.components + self.mean).unflatten(1, self.in_shape)

    @torch.no_grad()
    def fit(self, x: Tensor) -> None:
        """Mean and top principal directions of x (N, *S) by SVD of the centred data; each
        direction's largest-magnitude entry is made positive so the result is deterministic."""
        dim = self.components.shape[0]
        data = x.flatten(1).to(torch.float64)  # (N, D)
        if data.shape[0] < 2 or min(data.shape) < dim:
            raise ValueError(
                f"pca.fit needs at least {dim} examples of at least {dim} features, got {list(data.shape)}"
            )
        mean = data.mean(0)
        _, s, vh = torch.linalg.svd(data - mean, full_matrices=False)
        v = vh[:dim]  # (dim, D)
        pivot = v.abs().argmax(1, keepdim=True)
        v = v * torch.sign(v.gather(1, pivot))
        self.mean.copy_(mean)
        self.components.copy_(v)
        self.scale.copy_((s[:dim] / (data.shape[0] - 1) ** 0.5).clamp_min(1e-12))


class LatentTable(nn.Module):
    """One trainable code per example (GLO): z_i = W[i], W (size, dim), projected after steps."""

    def __init__(
        self,
        size: int,
        dim: int,
        project: str = "none",
        radius: float = 1.0,
        init: str = "normal",
        init_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.project, self.radius = project, radius
        weight = torch.randn(size, dim).mul_(init_scale) if init == "normal" else torch.zeros(size, dim)
        self.weight = nn.Parameter(weight)
        #: the lookup's gradient holds only the batch's rows (the trainer sets it when a row-wise
        #: optimizer updates the table: a step costs O(batch × dim), not O(size × dim))
        self.sparse = False
        if init == "normal":
            self.project_()

    def forward(self, index: Tensor) -> Tensor:
        return F.embedding(index, self.weight, sparse=self.sparse)  # (B, dim)

    @torch.no_grad()
    def project_(self, rows: Tensor | None = None) -> None:
        """In place: unit_l2 → w/‖w‖ (zero rows stay zero); l2_ball → w·min(1, r/‖w‖). ``rows``:
        only these rows (the ones a row-wise step changed)."""
        if self.project not in ("unit_l2", "l2_ball"):
            return
        w = self.weight if rows is None else self.weight[rows]
        norm = w.norm(dim=1, keepdim=True)
        if self.project == "unit_l2":
            w = w.div_(norm.clamp_min(1e-12))
        else:
            w = w.mul_((self.radius / norm.clamp_min(1e-12)).clamp(max=1.0))
        if rows is not None:
            self.weight.index_copy_(0, rows, w)

    @torch.no_grad()
    def init_from(self, codes: Tensor) -> None:
        """Set the table to ``codes`` (size, dim), e.g. PCA codes of the images, then project."""
        if tuple(codes.shape) != tuple(self.weight.shape):
            raise ValueError(
                f"latent_table.init_from expects codes of shape {list(self.weight.shape)}, got {list(codes.shape)}"
            )
        self.weight.copy_(codes)
        self.project_()


def project_rows(z: Tensor, kind: str | None, radius: float) -> Tensor:
    """Per row: unit_l2 → z/‖z‖; l2_ball → z·min(1, r/‖z‖); None → z (norms floored at 1e-12).
    Written with sqrt(sum(z·z)) rather than ``norm`` so that it traces to plain ONNX ops: the
    export's optimisation loop, its verification and the amortisation report all use it."""
    if kind is None:
        return z
    norm = torch.sqrt(torch.sum(z * z, dim=1, keepdim=True)).clamp_min(1e-12)  # (B, 1)
    if kind == "unit_l2":
        return z / norm
    return z * torch.clamp(radius / norm, max=1.0)


def load_python(class_path: str, args: dict[str, Any]) -> nn.Module:
    """Instantiate ``pkg.module:Class`` with ``**args``."""
    module_name, _, attr = class_path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ImportError(f"python module: cannot load {class_path!r}: {err}") from err
    return cls(**args)


class GaussianPrior(nn.Module):
    """A full-covariance Gaussian prior N(μ, L Lᵀ) fitted to codes: z = μ + L ε, ε ~ N(0, I).

    ``fit(codes)`` sets μ to their mean and L to the Cholesky factor of their (unbiased)
    covariance plus ``reg`` I; the buffers start as the standard normal (μ = 0, L = I).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))  # (D,)
        self.register_buffer("scale_tril", torch.eye(dim))  # (D, D), lower triangular

    def forward(self, eps: Tensor) -> Tensor:
        return self.mean + eps @ self.scale_tril.T  # (B, D)

    @torch.no_grad()
    def fit(self, codes: Tensor, seed: int = 0, reg: float = 1e-6) -> None:
        x = codes.to(torch.float64)  # (N, D)
        cov = torch.cov(x.T).reshape(x.shape[1], x.shape[1]) + reg * torch.eye(x.shape[1], dtype=x.dtype)
        self.mean.copy_(x.mean(0))
        self.scale_tril.copy_(torch.linalg.cholesky(cov))


class GMMPrior(nn.Module):
    """A K-component full-covariance Gaussian mixture prior, sampled without branches.

    z = μ_k + L_k ε with k = #{j : u ≥ c_j}, u ~ U(0, 1), c the cumulative mixture weights
    (the last set to 2, above any u): the uniform input picks the component by inverse-CDF
    sampling, so the exported graph is a comparison, a sum, two gathers and a matmul.
    ``fit(codes, seed)`` runs scikit-learn's ``GaussianMixture`` (EM, k-means start).
    """

    def __init__(self, dim: int, components: int) -> None:
        super().__init__()
        k = components
        self.register_buffer("weights", torch.full((k,), 1.0 / k))  # (K,)
        self.register_buffer("edges", torch.cat([torch.arange(1, k) / k, torch.tensor([2.0])]))  # (K,)
        self.register_buffer("means", torch.zeros(k, dim))  # (K, D)
        self.register_buffer("scale_tril", torch.eye(dim).repeat(k, 1, 1))  # (K, D, D)

    def forward(self, eps: Tensor, u: Tensor) -> Tensor:
        k = (u >= self.edges).to(torch.int64).sum(-1).clamp(max=self.edges.shape[0] - 1)  # (B,)
        scale = self.scale_tril[k]  # (B, D, D)
        return self.means[k] + (scale @ eps.unsqueeze(-1)).squeeze(-1)  # (B, D)

    @torch.no_grad()
    def fit(self, codes: Tensor, seed: int = 0, reg: float = 1e-6) -> None:
        from latentspec._extras import require

        mixture = require("sklearn.mixture", "gmm", "a gmm prior")
        k = self.weights.shape[0]
        gm = mixture.GaussianMixture(k, covariance_type="full", reg_covar=reg, random_state=seed % 2**32)
        gm.fit(codes.to(torch.float64).cpu().numpy())
        weights = torch.as_tensor(gm.weights_)
        edges = weights.cumsum(0)
        edges[-1] = 2.0
        self.weights.copy_(weights)
        self.edges.copy_(edges)
        self.means.copy_(torch.as_tensor(gm.means_))
        self.scale_tril.copy_(torch.linalg.cholesky(torch.as_tensor(gm.covariances_)))


@contextlib.contextmanager
def frozen(model: torch.nn.Module) -> Iterator[None]:
    """Parameters without gradients (restored afterwards): only the variable is differentiated."""
    saved = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in saved:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)
