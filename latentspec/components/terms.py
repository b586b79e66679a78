"""Objective terms (``objective:`` entries): parameters, shape checks, and the builder.

Torch-free at import: each ``build`` imports its implementation from ``latentspec.nn.terms``.
Every term is a 0-d tensor, the mean over the batch of a per-example value; likelihood terms
sum over the per-example axes (nats per example).
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from typing import Any

from latentspec.components._kinds import TERMS
from latentspec.components._node import Context, ShapeError, TermComponent
from latentspec.components._registry import MAX_DIM, Param
from latentspec.components.modules import fmt, input_name, is_int
from latentspec.components.ops import GROUP_PARAMS, resolve_groups


def _same_numel(ctx: Context, kind: str, *idx: int) -> None:
    """The inputs at ``idx`` (default: all) hold the same number of elements per example."""
    idx = idx or tuple(range(len(ctx.in_shapes)))
    known = [(i, ctx.in_shapes[i]) for i in idx if ctx.in_shapes[i] is not None]
    for i, s in known[1:]:
        j, first = known[0]
        if math.prod(s) != math.prod(first):
            raise ShapeError(
                f"{kind}: '{input_name(ctx, j)}' has shape {fmt(first)} but "
                f"'{input_name(ctx, i)}' has shape {fmt(s)}; they must hold the same elements"
            )


def _roles(*names: str) -> Mapping[str, int]:
    """The role of each input, in input order (see ``TermComponent.roles``)."""
    return types.MappingProxyType({n: i for i, n in enumerate(names)})


_RECON = _roles("reconstruction", "target")


class _Pair(TermComponent):
    """A term on [prediction, target] of equal size."""

    roles = _RECON

    def infer(self, ctx: Context) -> None:
        _same_numel(ctx, self.name)


_REDUCTION = Param("reduction", "str", "mean", "mean over all elements, or sum per example", ("mean", "sum"))


@TERMS.register("mse")
class MSE(_Pair):
    """Squared error: mean over all elements of (x̂ − x)², or mean_b Σ_j (x̂_j − x_j)²."""

    params = (_REDUCTION,)

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import terms as T

        return T.Distance(2, ctx.cfg["reduction"])


@TERMS.register("l1")
class L1(_Pair):
    """Absolute error: mean over all elements of |x̂ − x|, or mean_b Σ_j |x̂_j − x_j|."""

    params = (_REDUCTION,)

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import terms as T

        return T.Distance(1, ctx.cfg["reduction"])


@TERMS.register("bernoulli_nll")
class BernoulliNLL(_Pair):
    """Bernoulli negative log-likelihood of x ∈ [0, 1] given logits ℓ, nats per example.

    −log p(x|ℓ) = Σ_j [softplus(ℓ_j) − x_j ℓ_j] (binary cross-entropy with logits; stable).
    """

    distribution = "bernoulli"

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import terms as T

        return T.BernoulliNLL()


@TERMS.register("gaussian_nll")
class GaussianNLL(_Pair):
    """Gaussian negative log-likelihood, nats per example: in [mean, x] or [mean, x, logvar].

    −log N(x; μ, σ²) = ½ Σ_j ((x_j − μ_j)²/σ_j² + log 2πσ_j²), σ² = exp(logvar) or
    ``variance``.
    """

    n_inputs = (2, 3)
    params = (Param("variance", "float", 1.0, "sigma^2 when no logvar input", minimum=0),)
    roles = _roles("reconstruction", "target", "logvar")
    distribution = "gaussian"

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import terms as T

        return T.GaussianNLL(ctx.cfg["variance"])


@TERMS.register("gaussian_kl")
class GaussianKL(TermComponent):
    """KL(N(μ, σ²) ‖ N(0, I)) in nats per example, in [mu, logvar].

    KL = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²).
    """

    roles = _roles("mean", "logvar")

    def infer(self, ctx: Context) -> None:
        _same_numel(ctx, "gaussian_kl")

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import terms as T

        return T.GaussianKL()


@TERMS.register("iwae_bound")
class IWAEBound(TermComponent):
    """Negative importance-weighted bound −L_k (Burda et al. 2016), nats per example.

    In [x_logits, x, z, mu, logvar]; z and x_logits have batch B·k (rows grouped per example):
    −L_k = −mean_b [logsumexp_i (log p(x|z_i) + log p(z_i) − log q(z_i|x)) − log k], with
    p(z) = N(0, I), q = N(μ, σ²), p(x|z) Bernoulli(logits) or N(x_logits, variance).
    """

    n_inputs = (5, 5)
    params = (
        Param("samples", "int", doc="k, importance samples per example", minimum=1),
        Param("likelihood", "str", "bernoulli", "p(x|z)", ("bernoulli", "gaussian")),
        Param("variance", "float", 1.0, "variance of a gaussian likelihood", minimum=0),
    )
    roles = _roles("reconstruction", "target", "sample", "mean", "logvar")

    @classmethod
    def distribution_of(cls, cfg: Any) -> str | None:
        return cfg["likelihood"]

    def infer(self, ctx: Context) -> None:
        _same_numel(ctx, "iwae_bound", 0, 1)
        _same_numel(ctx, "iwae_bound", 2, 3, 4)

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import terms as T

        cfg = ctx.cfg
        return T.IWAEBound(cfg["samples"], cfg["likelihood"], cfg["variance"])


def _image_pair(ctx: Context, kind: str) -> tuple[int, int, int] | None:
    """The target's image shape (C, H, W) (or the prediction's when the target's is unknown)."""
    _same_numel(ctx, kind, 0, 1)
    i = 1 if ctx.in_shapes[1] is not None else 0
    shape = ctx.in_shapes[i]
    if shape is not None and len(shape) != 3:
        raise ShapeError(f"{kind} expects images (C, H, W), got shape {fmt(shape)} for '{input_name(ctx, i)}'")
    return None if shape is None else tuple(shape)


@TERMS.register("laplacian_l1")
class LaplacianL1(TermComponent):
    """Laplacian-pyramid L1 (GLO's Lap1, Bojanowski et al. 2018), in [x_hat, x].

    Lap1 = Σ_j w_j · mean |L^j(x̂) − L^j(x)|, the mean over each level's elements (C·H_j·W_j);
    the pyramid blurs with a 5×5 binomial kernel and subsamples by 2, L^j = G^j − up(G^{j+1})
    and the last level is the blurred residual. Default w_j = 1 on the level means: the paper's
    Σ_j 2^(2j) ‖·‖₁ sums over pixels and level j has 4^(−j) of level 0's pixels, so it equals
    N_0 · Σ_j mean_j. Sources differ on the exponent's sign; ``weights`` chooses (e.g.
    ``[1, 4, 16]`` for 2^(2j) on the means). Settled by `python -m benchmarks.reproduce glo`:
    GLO on MNIST (d = 100, benchmarks/results/glo.json) reaches a held-out inversion MSE of
    0.0019 with weights 1 each against 0.0040 with 2^(2j).
    """

    roles = _RECON
    params = (
        Param("levels", "int", 3, "pyramid levels", minimum=1),
        Param(
            "weights",
            "floats",
            None,
            "per-level weights on the level means (default 1 each: the paper's per-pixel sums, "
            "Σ_j 2^(2j) ‖·‖₁; benchmarks/results/glo.json compares them with 2^(2j) on the means)",
            default_doc="1 each",
        ),
    )

    def weights(self, ctx: Context) -> list[float]:
        levels, weights = ctx.cfg["levels"], ctx.cfg["weights"]
        if weights is None:
            return [1.0] * levels
        if len(weights) != levels:
            raise ShapeError(f"laplacian_l1: {len(weights)} weights for {levels} levels")
        return list(weights)

    def infer(self, ctx: Context) -> None:
        self.weights(ctx)
        shape, levels = _image_pair(ctx, "laplacian_l1"), ctx.cfg["levels"]
        if shape is not None and min(shape[1:]) < 2 ** (levels - 1):
            raise ShapeError(
                f"laplacian_l1: images {shape[1]}x{shape[2]} are too small for {levels} levels "
                f"(need at least {2 ** (levels - 1)} pixels a side)"
            )

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import terms as T

        return T.LaplacianL1(self.weights(ctx))


@TERMS.register("perceptual")
class Perceptual(TermComponent):
    """Perceptual loss (Chen & Koltun 2017) through a frozen feature net Φ.

    L = pixel_weight · mean|x̂ − x| + Σ_l λ_l · mean|Φ_l(x̂) − Φ_l(x)|, in [x_hat, x]. Φ is
    either ``weights``, a .safetensors file of [conv 3×3 → ReLU] blocks of widths ``channels``
    with 2×2 average pooling between blocks (keys ``blocks.{i}.weight``/``bias``), or ``run``, a
    trained run directory whose conv_encoder ``node`` (e.g. a classifier's) gives one feature
    map per conv block, then its linear output when it has one. Grayscale images are repeated
    to the net's input channels.
    """

    roles = _RECON
    run_params = ("run",)
    params = (
        Param("weights", "str", None, "path of the .safetensors file of the feature net", default_doc="none"),
        Param(
            "channels",
            "ints",
            None,
            "widths of the conv blocks (with `weights`)",
            minimum=1,
            maximum=MAX_DIM,
            default_doc="none",
        ),
        Param("run", "str", None, "a trained run directory whose conv_encoder is the feature net", default_doc="none"),
        Param("node", "str", None, "with `run`: its conv_encoder node", default_doc="its first conv_encoder"),
        Param("layers", "ints", None, "blocks whose outputs are compared (default: all)", default_doc="all"),
        Param("layer_weights", "floats", None, "lambda_l per compared block (default 1)", default_doc="1 each"),
        Param("pixel_weight", "float", 1.0, "weight of the pixel L1 term", minimum=0),
    )

    def _source(self, ctx: Context) -> None:
        cfg = ctx.cfg
        if (cfg["weights"] is None) == (cfg["run"] is None):
            raise ShapeError("perceptual needs one feature net: `weights` (a file) or `run` (a trained run)")
        if cfg["weights"] is not None and not cfg["channels"]:
            raise ShapeError("perceptual needs at least one entry in `channels`")
        if cfg["run"] is not None and cfg["channels"] is not None:
            raise ShapeError("perceptual: `channels` describes a `weights` file; a `run` brings its own")

    def _layers(self, ctx: Context, n: int) -> tuple[list[int], list[float]]:
        cfg = ctx.cfg
        layers = list(range(n)) if cfg["layers"] is None else list(cfg["layers"])
        bad = [i for i in layers if not 0 <= i < n]
        if bad:
            raise ShapeError(f"perceptual: layers {bad} out of range for {n} blocks")
        weights = [1.0] * len(layers) if cfg["layer_weights"] is None else cfg["layer_weights"]
        if len(weights) != len(layers):
            raise ShapeError(f"perceptual: {len(weights)} layer_weights for {len(layers)} layers {layers}")
        return layers, list(weights)

    def infer(self, ctx: Context) -> None:
        self._source(ctx)
        if ctx.cfg["weights"] is not None:  # a run's block count is known when it is loaded
            self._layers(ctx, len(ctx.cfg["channels"]))
        _image_pair(ctx, "perceptual")

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import terms as T

        self._source(ctx)
        if ctx.cfg["run"] is not None:
            if "run" not in ctx.runs:
                raise ShapeError(f"perceptual: run {ctx.cfg['run']} was not loaded (build the term with build_term)")
            net = T.run_features(ctx.runs["run"], ctx.cfg["run"], ctx.cfg["node"])
        else:
            net = T.load_feature_net(ctx.cfg["weights"], ctx.cfg["channels"])
        layers, weights = self._layers(ctx, net.n_features)
        shape = _image_pair(ctx, "perceptual")
        if shape is not None and shape[0] not in (1, net.in_channels):
            raise ShapeError(
                f"perceptual: the feature net takes {net.in_channels} channels, the images have {shape[0]}"
            )
        return T.Perceptual(net, layers, weights, ctx.cfg["pixel_weight"])


@TERMS.register("masked_recon")
class MaskedRecon(TermComponent):
    """Reconstruction on known pixels (inpainting), in [x_hat, x, mask]: per example
    ‖(x̂ − x) ⊙ m‖² (``l2``, squared) or ‖(x̂ − x) ⊙ m‖₁ (``l1``), mean over the batch."""

    n_inputs = (3, 3)
    roles = _roles("reconstruction", "target", "mask")
    params = (Param("norm", "str", "l2", "squared l2 or l1", ("l2", "l1")),)

    def infer(self, ctx: Context) -> None:
        _same_numel(ctx, "masked_recon", 0, 1)
        x, mask = ctx.in_shapes[1], ctx.in_shapes[2]
        if x is None or mask is None:
            return
        if len(mask) != len(x) or any(m not in (1, n) for m, n in zip(mask, x, strict=True)):
            raise ShapeError(
                f"masked_recon: mask '{input_name(ctx, 2)}' of shape {fmt(mask)} does not "
                f"broadcast to '{input_name(ctx, 1)}' of shape {fmt(x)} (same rank, each axis "
                "equal or 1)"
            )

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import terms as T

        return T.MaskedRecon(ctx.cfg["norm"])


@TERMS.register("clamping")
class Clamping(TermComponent):
    """DC-IGN invariance penalty, in [z, vary]: per example Σ_j∈clamped (z_j − z̄_j)², z̄ the
    batch mean, mean over the batch; clamped = every unit outside the batch's varying group
    (with ``intrinsic: pass``, only the other factor groups' units; see op clamp_latents)."""

    params = GROUP_PARAMS

    def infer(self, ctx: Context) -> None:
        resolve_groups(ctx, "clamping")

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import terms as T

        return T.Clamping(resolve_groups(ctx, "clamping")[2])


@TERMS.register("hinge_update")
class HingeUpdate(TermComponent):
    """Feedback-loop hinge (Oberweger et al. 2015), in [p_dd, p_prime, p]:
    mean_b max(0, ‖p″ − p‖₂ − λ‖p′ − p‖₂): every update must shrink the error by λ."""

    n_inputs = (3, 3)
    params = (Param("lambda", "float", 0.6, "required shrink factor, below 1", minimum=0),)

    def infer(self, ctx: Context) -> None:
        _same_numel(ctx, "hinge_update")

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import terms as T

        return T.HingeUpdate(ctx.cfg["lambda"])


@TERMS.register("point_distance")
class PointDistance(_Pair):
    """Mean distance between corresponding points, in [prediction, target]: each example's
    elements taken `dims` at a time as points (x0, y0, x1, y1, …), mean over points and batch
    of scale·‖x̂_j − x_j‖₂. The mean joint error of pose estimation; `scale` converts to the
    unit reported (e.g. 32: pixels of `hands`' 64-pixel `joints_flat`, which spans [-1, 1])."""

    params = (
        Param("dims", "int", 2, "coordinates per point", minimum=1),
        Param("scale", "float", 1.0, "units of the reported distance per unit of the inputs", minimum=0),
    )

    def infer(self, ctx: Context) -> None:
        _same_numel(ctx, "point_distance")
        shape = next((s for s in ctx.in_shapes if s is not None), None)
        if shape is not None and math.prod(shape) % ctx.cfg["dims"]:
            raise ShapeError(
                f"point_distance: '{input_name(ctx, 0)}' holds {math.prod(shape)} elements per example, "
                f"not a multiple of dims {ctx.cfg['dims']}"
            )

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import terms as T

        return T.PointDistance(ctx.cfg["dims"], ctx.cfg["scale"])


@TERMS.register("imle")
class IMLE(TermComponent):
    """Implicit maximum-likelihood estimation (GLANN stage 2), in [z_gen, z].

    z_gen has batch B·m, m candidates per target z_t (rows grouped per target):
    L = mean_t ‖z_t − ẑ_{t,i*}‖², i* = argmin_i ‖z_t − ẑ_{t,i}‖² (no gradient through the
    choice). With ``pool: true`` each target takes its nearest among all B·m candidates of the
    batch, as in Li & Malik's IMLE and GLANN, where every code picks its nearest of one set of
    generated samples (the paper draws one set per epoch; here one per batch).
    """

    params = (
        Param(
            "candidates",
            "int",
            None,
            "m (default: batch of z_gen / batch of z)",
            minimum=1,
            default_doc="batch of z_gen / batch of z",
        ),
        Param("pool", "bool", False, "choose among all the batch's candidates, not only the target's own m"),
    )

    def infer(self, ctx: Context) -> None:
        _same_numel(ctx, "imle")

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import terms as T

        return T.IMLE(ctx.cfg["candidates"], ctx.cfg["pool"])


@TERMS.register("l2_penalty")
class L2Penalty(TermComponent):
    """Squared-norm penalty: mean_b Σ_j x_j² (activations or codes)."""

    n_inputs = (1, 1)

    def infer(self, ctx: Context) -> None:
        return None

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import terms as T

        return T.L2Penalty()


@TERMS.register("activation_sparsity")
class ActivationSparsity(TermComponent):
    """Sparsity of activations h: l1 = mean_b Σ_j |h_j|; kl = Σ_j KL(ρ ‖ ρ̂_j) with ρ̂_j the
    batch mean of h_j ∈ (0, 1): ρ log(ρ/ρ̂_j) + (1 − ρ) log((1 − ρ)/(1 − ρ̂_j))."""

    n_inputs = (1, 1)
    params = (
        Param("kind", "str", "l1", "penalty", ("l1", "kl")),
        Param("target", "float", 0.05, "rho, the target mean activation (kl)", minimum=0, maximum=1),
    )

    def infer(self, ctx: Context) -> None:
        if ctx.cfg["kind"] == "kl" and not 0 < ctx.cfg["target"] < 1:
            raise ShapeError(f"activation_sparsity: kl needs 0 < target < 1, got {ctx.cfg['target']}")

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import terms as T

        return T.ActivationSparsity(ctx.cfg["kind"], ctx.cfg["target"])


@TERMS.register("cross_entropy")
class CrossEntropy(TermComponent):
    """Classification loss (probes, classifiers), in [logits, y]: mean_b −log softmax(ℓ)_y."""

    def infer(self, ctx: Context) -> None:
        logits, y = ctx.in_info
        if logits.shape is not None and len(logits.shape) != 1:
            raise ShapeError(
                f"cross_entropy expects flat logits, got shape {fmt(logits.shape)} for '{input_name(ctx, 0)}'"
            )
        if not is_int(y) or y.shape not in (None, ()):
            raise ShapeError(
                f"cross_entropy expects '{input_name(ctx, 1)}' to be an int64 class per "
                f"example, got {y.dtype} of shape {fmt(y.shape)}"
            )
        if logits.shape is not None and y.classes is not None and y.classes != logits.shape[0]:
            raise ShapeError(
                f"cross_entropy: '{input_name(ctx, 1)}' has {y.classes} classes but "
                f"'{input_name(ctx, 0)}' has {logits.shape[0]} logits"
            )

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import terms as T

        return T.CrossEntropy()
