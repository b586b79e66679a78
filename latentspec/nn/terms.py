"""Objective terms behind ``objective:`` entries (see ``latentspec.components.terms``).

Each forward returns a 0-d tensor: the mean over the batch of a per-example value (likelihood
terms sum over the per-example axes: nats per example).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_LOG_2PI = math.log(2 * math.pi)


def per_example_sum(x: Tensor) -> Tensor:
    """(B, *S) → (B,): the sum over all but the batch axis."""
    return x.flatten(1).sum(1)


def gaussian_log_density(x: Tensor, mean: Tensor, logvar: Tensor | float) -> Tensor:
    """log N(x; μ, σ²) per element: −½((x − μ)²/σ² + log σ² + log 2π)."""
    logvar = torch.as_tensor(logvar, dtype=x.dtype, device=x.device)
    return -0.5 * ((x - mean) ** 2 * torch.exp(-logvar) + logvar + _LOG_2PI)


class Distance(nn.Module):
    """mse: (x̂ − x)²; l1: |x̂ − x|; mean over all elements, or (``sum``) summed per example
    and averaged over the batch."""

    def __init__(self, power: int, reduction: str = "mean") -> None:
        super().__init__()
        self.power, self.reduction = power, reduction

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        diff = (pred.reshape_as(target) - target).abs()
        err = diff**2 if self.power == 2 else diff
        return err.mean() if self.reduction == "mean" else per_example_sum(err).mean()


class BernoulliNLL(nn.Module):
    """−log p(x|ℓ) = Σ_j [softplus(ℓ_j) − x_j ℓ_j] (binary cross-entropy with logits ℓ)."""

    def forward(self, logits: Tensor, x: Tensor) -> Tensor:
        # the mean over all elements times the elements per example = the batch mean of the
        # per-example sums, without materialising the (B, D) losses (the hot path of VAEs)
        per_example = math.prod(x.shape[1:])
        return F.binary_cross_entropy_with_logits(logits.reshape_as(x), x) * per_example


class GaussianNLL(nn.Module):
    """−log N(x; μ, σ²) = ½ Σ_j ((x_j − μ_j)²/σ_j² + log 2πσ_j²); σ² = exp(logvar) when given,
    else the fixed ``variance``."""

    def __init__(self, variance: float = 1.0) -> None:
        super().__init__()
        self.logvar = math.log(variance)

    def forward(self, mean: Tensor, x: Tensor, logvar: Tensor | None = None) -> Tensor:
        lv = self.logvar if logvar is None else logvar.reshape_as(x)
        return -per_example_sum(gaussian_log_density(x, mean.reshape_as(x), lv)).mean()


class GaussianKL(nn.Module):
    """KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)."""

    def forward(self, mu: Tensor, logvar: Tensor) -> Tensor:
        kl = 0.5 * (mu**2 + torch.exp(logvar) - 1 - logvar)
        return kl.mean() * math.prod(kl.shape[1:])  # = mean_b Σ_j kl_bj


class IWAEBound(nn.Module):
    """−L_k = −mean_b [logsumexp_i (log p(x|z_i) + log p(z_i) − log q(z_i|x)) − log k].

    x_logits and z have batch B·k, rows grouped per example (``repeat_interleave`` order).
    """

    def __init__(self, samples: int, likelihood: str = "bernoulli", variance: float = 1.0):
        super().__init__()
        self.samples, self.likelihood = samples, likelihood
        self.logvar_x = math.log(variance)

    def forward(self, x_logits: Tensor, x: Tensor, z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
        k = self.samples
        x = x.repeat_interleave(k, 0)  # (B·k, *S)
        x_logits = x_logits.reshape_as(x)
        if self.likelihood == "bernoulli":
            bce = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none")
            log_px = -per_example_sum(bce)  # (B·k,)
        else:
            log_px = per_example_sum(gaussian_log_density(x, x_logits, self.logvar_x))
        log_pz = per_example_sum(gaussian_log_density(z, torch.zeros_like(z), 0.0))
        mu, logvar = mu.repeat_interleave(k, 0), logvar.repeat_interleave(k, 0)
        log_qz = per_example_sum(gaussian_log_density(z, mu, logvar))
        log_w = (log_px + log_pz - log_qz).reshape(-1, k)  # (B, k)
        return -(torch.logsumexp(log_w, 1) - math.log(k)).mean()


class LaplacianL1(nn.Module):
    """Lap1(x̂, x) = Σ_j w_j · mean |L^j(x̂) − L^j(x)| over a Laplacian pyramid (Gaussian
    5×5 blur + stride-2 subsampling; L^j = G^j − up(G^{j+1}), the last level G^{J−1})."""

    def __init__(self, weights: Sequence[float]) -> None:
        super().__init__()
        self.weights = [float(w) for w in weights]
        row = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
        self.register_buffer("kernel", torch.outer(row, row)[None, None], persistent=False)

    def down(self, x: Tensor) -> Tensor:
        kernel = self.kernel.expand(x.shape[1], 1, 5, 5)  # (C, 1, 5, 5), depthwise
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), kernel, stride=2, groups=x.shape[1])

    def pyramid(self, x: Tensor) -> list[Tensor]:
        levels = []
        for _ in self.weights[1:]:
            low = self.down(x)
            up = F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False)
            levels.append(x - up)
            x = low
        return [*levels, x]

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        # The pyramid is linear: L^j(x̂) − L^j(x) = L^j(x̂ − x).
        levels = self.pyramid(pred.reshape_as(target) - target)
        loss = sum(w * lv.abs().flatten(1).mean(1) for w, lv in zip(self.weights, levels, strict=True))
        return loss.mean()


class FeatureNet(nn.Module):
    """[Conv 3×3 → ReLU] blocks, each but the last followed by 2×2 average pooling."""

    def __init__(self, in_channels: int, channels: Sequence[int]) -> None:
        super().__init__()
        widths = [in_channels, *channels]
        self.blocks = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in itertools.pairwise(widths))

    @property
    def in_channels(self) -> int:
        return self.blocks[0].in_channels

    @property
    def n_features(self) -> int:
        return len(self.blocks)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for i, conv in enumerate(self.blocks):
            if i > 0:
                x = F.avg_pool2d(x, 2)
            x = F.relu(conv(x))
            features.append(x)
        return features


def load_feature_net(path: str, channels: Sequence[int]) -> FeatureNet:
    """A frozen FeatureNet from a .safetensors file with keys ``blocks.{i}.weight``/``bias``."""
    from safetensors.torch import load_file

    if not os.path.isfile(path):
        raise FileNotFoundError(f"perceptual: weights file {path!r} not found")
    state = load_file(path)
    if "blocks.0.weight" not in state:
        raise ValueError(f"perceptual: {path!r} has no 'blocks.0.weight'; keys: {sorted(state)}")
    net = FeatureNet(state["blocks.0.weight"].shape[1], channels)
    want = {k: list(v.shape) for k, v in net.state_dict().items()}
    got = {k: list(v.shape) for k, v in state.items()}
    if want != got:
        raise ValueError(
            f"perceptual: {path!r} does not fit channels {list(channels)}: expected tensors {want}, the file has {got}"
        )
    net.load_state_dict(state)
    net.requires_grad_(False)
    return net.eval()


class RunFeatures(nn.Module):
    """A trained conv_encoder as a frozen feature net: the output of each conv block (after its
    norm and activation), then the linear output when the encoder has one."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.blocks = len(encoder.convs) // 3  # [conv, norm, activation] per block
        self.encoder.requires_grad_(False)
        self.encoder.eval()

    @property
    def in_channels(self) -> int:
        return self.encoder.convs[0].in_channels

    @property
    def n_features(self) -> int:
        return self.blocks + (self.encoder.fc is not None)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for i, layer in enumerate(self.encoder.convs):
            x = layer(x)
            if i % 3 == 2:
                features.append(x)
        if self.encoder.fc is not None:
            features.append(self.encoder.fc(x.flatten(1)))
        return features


def run_features(model: nn.Module, run: str, node: str | None) -> RunFeatures:
    """The frozen conv_encoder ``node`` (default: the first) of ``model``, run ``run``'s trained
    model (a CompiledModel: one attribute of ``model.layers`` per node)."""
    from latentspec.errors import RunError
    from latentspec.nn.modules import ConvEncoder

    encoders = [n for n in model.spec.nodes if isinstance(getattr(model.layers, n, None), ConvEncoder)]
    if node is None and not encoders:
        raise RunError(f"perceptual: run {run} has no conv_encoder node to take features from")
    node = node if node is not None else encoders[0]
    if node not in encoders:
        have = f"its conv_encoder nodes are: {', '.join(encoders)}" if encoders else "it has no conv_encoder node"
        raise RunError(f"perceptual: run {run} has no conv_encoder node '{node}'; {have}")
    return RunFeatures(getattr(model.layers, node).cpu())


class Perceptual(nn.Module):
    """L = λ_px · mean|x̂ − x| + Σ_l λ_l · mean|Φ_l(x̂) − Φ_l(x)| (Chen & Koltun 2017), Φ a
    frozen feature net; grayscale images are repeated to the net's input channels."""

    def __init__(
        self,
        net: FeatureNet,
        layers: Sequence[int],
        layer_weights: Sequence[float],
        pixel_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.net = net
        self.layers, self.layer_weights = list(layers), [float(w) for w in layer_weights]
        self.pixel_weight = pixel_weight
        self.in_channels = net.in_channels

    def train(self, mode: bool = True) -> Perceptual:
        super().train(mode)
        self.net.eval()  # the feature net stays frozen
        return self

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        pred = pred.reshape_as(target)
        loss = self.pixel_weight * (pred - target).abs().mean()
        if target.shape[1] != self.in_channels:  # grayscale → (B, C_net, H, W)
            pred = pred.expand(-1, self.in_channels, -1, -1)
            target = target.expand(-1, self.in_channels, -1, -1)
        with torch.no_grad():
            feats_x = self.net(target)
        feats_p = self.net(pred)
        for layer, w in zip(self.layers, self.layer_weights, strict=True):
            loss = loss + w * (feats_p[layer] - feats_x[layer]).abs().mean()
        return loss


class MaskedRecon(nn.Module):
    """‖(x̂ − x) ⊙ m‖² (l2) or ‖(x̂ − x) ⊙ m‖₁ (l1) per example, mean over the batch."""

    def __init__(self, norm: str = "l2") -> None:
        super().__init__()
        self.norm = norm

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        diff = (pred.reshape_as(target) - target) * mask.to(target.dtype)
        err = diff**2 if self.norm == "l2" else diff.abs()
        return per_example_sum(err).mean()


class Clamping(nn.Module):
    """DC-IGN invariance penalty: Σ over the clamped units of (z − mean_batch z)², per
    example, mean over the batch (clamped: the units of the other factor groups)."""

    def __init__(self, keep: Sequence[Sequence[float]]) -> None:
        super().__init__()
        self.register_buffer("keep", torch.tensor(keep, dtype=torch.float32))  # (G, d)

    def forward(self, z: Tensor, vary: Tensor) -> Tensor:
        clamped = 1 - F.embedding(vary[:1], self.keep)  # (1, d)
        sq = (z - z.mean(0, keepdim=True)) ** 2 * clamped  # (B, d)
        return sq.sum(1).mean()


class HingeUpdate(nn.Module):
    """mean_b max(0, ‖p″ − p‖₂ − λ‖p′ − p‖₂): each update must shrink the error by λ."""

    def __init__(self, lam: float = 0.6) -> None:
        super().__init__()
        self.lam = lam

    def forward(self, p_dd: Tensor, p_prime: Tensor, p: Tensor) -> Tensor:
        after = torch.linalg.vector_norm((p_dd - p).flatten(1), dim=1)  # (B,)
        before = torch.linalg.vector_norm((p_prime - p).flatten(1), dim=1)
        return F.relu(after - self.lam * before).mean()


class PointDistance(nn.Module):
    """mean_b mean_j scale·‖x̂_j − x_j‖₂ over the points j of ``dims`` coordinates each."""

    def __init__(self, dims: int = 2, scale: float = 1.0) -> None:
        super().__init__()
        self.dims, self.scale = dims, scale

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        diff = (pred.reshape_as(target) - target).reshape(len(target), -1, self.dims)  # (B, J, dims)
        return self.scale * torch.linalg.vector_norm(diff, dim=2).mean()


class IMLE(nn.Module):
    """mean_t min_i ‖z_t − ẑ_{t,i}‖² over the m candidates ẑ_{t,·} generated for target t
    (the choice takes no gradient; rows of z_gen grouped per target); with ``pool``, over all
    B·m candidates of the batch instead."""

    def __init__(self, candidates: int | None = None, pool: bool = False) -> None:
        super().__init__()
        self.candidates = candidates
        self.pool = pool

    def forward(self, z_gen: Tensor, z: Tensor) -> Tensor:
        b = z.shape[0]
        m = self.candidates or z_gen.shape[0] // b
        z = z.reshape(b, 1, -1)
        if self.pool:
            cand = z_gen.reshape(1, b * m, -1)  # (1, B·m, d): one pool for every target
        else:
            cand = z_gen.reshape(b, m, -1)  # (B, m, d)
        dist = ((cand - z) ** 2).sum(2)  # (B, m) or (B, B·m)
        best = dist.detach().argmin(1, keepdim=True)  # (B, 1)
        return dist.gather(1, best).mean()


class L2Penalty(nn.Module):
    """mean_b Σ_j x_j²."""

    def forward(self, x: Tensor) -> Tensor:
        return per_example_sum(x**2).mean()


class ActivationSparsity(nn.Module):
    """l1: mean_b Σ_j |h_j|; kl: Σ_j KL(ρ ‖ ρ̂_j), ρ̂_j the batch mean of h_j ∈ (0, 1)."""

    def __init__(self, kind: str = "l1", target: float = 0.05) -> None:
        super().__init__()
        self.kind, self.rho = kind, target

    def forward(self, h: Tensor) -> Tensor:
        if self.kind == "l1":
            return per_example_sum(h.abs()).mean()
        rho, rho_hat = self.rho, h.flatten(1).mean(0).clamp(1e-6, 1 - 1e-6)  # (d,)
        kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
        return kl.sum()


class CrossEntropy(nn.Module):
    """mean_b −log softmax(ℓ)_y."""

    def forward(self, logits: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(logits.flatten(1), y)
