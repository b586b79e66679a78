"""Tensor operations (``op:`` nodes): parameters, shape inference, noise, and the builder.

Torch-free at import: each ``build`` imports its implementation from ``latentspec.nn.ops``.
Ops have no trainable parameters. Per-example axes count from 0 (the axis after the batch).
"""

from __future__ import annotations

import math
from typing import Any

from latentspec.components._kinds import OPS
from latentspec.components._node import (
    Context,
    LatentInfo,
    NodeComponent,
    Noise,
    Shape,
    ShapeError,
    TensorInfo,
)
from latentspec.components._registry import Param
from latentspec.components.modules import fmt, input_name, is_int


def _noise_shape(ctx: Context, i: int = 0) -> tuple[int, ...]:
    shape = ctx.in_shapes[i]
    if shape is None:
        raise ShapeError(f"{ctx.name}: the shape of '{input_name(ctx, i)}' must be known to declare its noise")
    return tuple(shape)


def _same_shape(ctx: Context, kind: str, i: int, j: int) -> Shape:
    """The shape of inputs i and j, which must hold the same number of elements."""
    a, b = ctx.in_shapes[i], ctx.in_shapes[j]
    if a is not None and b is not None and math.prod(a) != math.prod(b):
        raise ShapeError(
            f"{kind}: '{input_name(ctx, i)}' has shape {fmt(a)} but '{input_name(ctx, j)}' has "
            f"shape {fmt(b)}; they must match"
        )
    return b if b is not None else a


class _Op(NodeComponent):
    has_params = False


@OPS.register("reparameterize")
class Reparameterize(_Op):
    """Reparameterised Gaussian sample: z = μ + exp(½ log σ²) ⊙ ε, ε ~ N(0, I).

    With ``samples`` k > 1 each example is drawn k times: z has batch B·k, rows grouped per
    example (μ repeated with ``repeat_interleave``), and ε has batch B·k.
    """

    n_inputs = (2, 2)
    params = (Param("samples", "int", 1, "draws per example", minimum=1),)

    def infer(self, ctx: Context) -> list[TensorInfo]:
        a, b = ctx.in_shapes
        if a is not None and b is not None and tuple(a) != tuple(b):
            raise ShapeError(
                f"reparameterize: mu '{input_name(ctx, 0)}' has shape {fmt(a)} but logvar "
                f"'{input_name(ctx, 1)}' has shape {fmt(b)}; they must match"
            )
        return [TensorInfo(a if a is not None else b)]

    def noise(self, ctx: Context) -> list[Noise]:
        shape = self.infer(ctx)[0].shape or _noise_shape(ctx)
        return [Noise("eps", tuple(shape), "normal", ctx.cfg["samples"])]

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import ops as O

        return O.Reparameterize(ctx.cfg["samples"])


@OPS.register("corrupt")
class Corrupt(_Op):
    """Denoising-autoencoder corruption x̃ ~ q(x̃|x) (Vincent et al. 2010); identity at export.

    gaussian: x̃ = x + σε (``level`` σ); masking: a fraction ν (``level``) of the inputs set to
    0, x̃ = x ⊙ [u ≥ ν]; salt_pepper: a fraction ν set to ``low`` or ``high`` (equally likely),
    x̃ = where(u < ν, where(v < ½, low, high), x). Noise: ε ~ N(0, I) or u, v ~ U(0, 1).
    """

    params = (
        Param("kind", "str", doc="corruption", choices=("gaussian", "masking", "salt_pepper")),
        Param("level", "float", doc="sigma (gaussian) or corrupted fraction nu", minimum=0),
        Param("low", "float", 0.0, "salt-and-pepper minimum"),
        Param("high", "float", 1.0, "salt-and-pepper maximum"),
        Param("export", "bool", False, "keep the corruption in exported graphs"),
    )

    def infer(self, ctx: Context) -> list[TensorInfo]:
        info = ctx.in_info[0]
        kind = ctx.cfg["kind"]
        if kind != "gaussian" and not 0 <= ctx.cfg["level"] <= 1:
            raise ShapeError(f"corrupt: {kind} level is a fraction in [0, 1], got {ctx.cfg['level']}")
        return [TensorInfo(info.shape, range=None if kind == "gaussian" else info.range)]

    def noise(self, ctx: Context) -> list[Noise]:
        shape = _noise_shape(ctx)
        kind = ctx.cfg["kind"]
        if kind == "gaussian":
            return [Noise("eps", shape, "normal")]
        if kind == "masking":
            return [Noise("u", shape, "uniform")]
        return [Noise("u", shape, "uniform"), Noise("v", shape, "uniform")]

    def training_only(self, ctx: Context) -> bool:
        return not ctx.cfg["export"]

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import ops as O

        cfg = ctx.cfg
        return O.Corrupt(cfg["kind"], cfg["level"], cfg["low"], cfg["high"])


class _Unary(_Op):
    """Elementwise: keeps the shape."""

    out_range: tuple[float, float] | None = None

    def infer(self, ctx: Context) -> list[TensorInfo]:
        info = ctx.in_info[0]
        return [TensorInfo(info.shape, info.dtype, info.classes, self.out_range)]


@OPS.register("sigmoid")
class Sigmoid(_Unary):
    """Logistic function y = 1 / (1 + e^(−x)), in (0, 1)."""

    out_range = (0.0, 1.0)

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import ops as O

        return O.Sigmoid()


@OPS.register("tanh")
class Tanh(_Unary):
    """Hyperbolic tangent y = tanh(x), in (−1, 1)."""

    out_range = (-1.0, 1.0)

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import ops as O

        return O.Tanh()


@OPS.register("relu")
class ReLU(_Unary):
    """Rectifier y = max(x, 0)."""

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import ops as O

        return O.ReLU()


@OPS.register("softplus")
class Softplus(_Unary):
    """Smooth rectifier y = log(1 + e^x)."""

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import ops as O

        return O.Softplus()


@OPS.register("clamp")
class Clamp(_Unary):
    """Clipping y = min(max(x, min), max); either bound may be left out."""

    params = (
        Param("min", "float", None, "lower bound"),
        Param("max", "float", None, "upper bound"),
    )

    def infer(self, ctx: Context) -> list[TensorInfo]:
        lo, hi = ctx.cfg["min"], ctx.cfg["max"]
        if lo is None and hi is None:
            raise ShapeError("clamp needs `min`, `max` or both")
        if lo is not None and hi is not None and lo > hi:
            raise ShapeError(f"clamp: min {lo} is above max {hi}")
        info = ctx.in_info[0]
        known_range = None if lo is None or hi is None else (float(lo), float(hi))
        return [TensorInfo(info.shape, info.dtype, info.classes, known_range)]

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import ops as O

        return O.Clamp(ctx.cfg["min"], ctx.cfg["max"])


@OPS.register("detach")
class Detach(_Unary):
    """Stop-gradient: y = x in the forward pass, ∂y/∂x = 0 in the backward pass."""

    def infer(self, ctx: Context) -> list[TensorInfo]:
        return [ctx.in_info[0]]

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import ops as O

        return O.Detach()


@OPS.register("flatten")
class Flatten(_Op):
    """Flattens the per-example axes: (B, *S) → (B, ∏S)."""

    def infer(self, ctx: Context) -> list[TensorInfo]:
        info = ctx.in_info[0]
        shape = None if info.shape is None else (math.prod(info.shape),)
        return [TensorInfo(shape, info.dtype, info.classes, info.range)]

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import ops as O

        return O.Flatten(1)


@OPS.register("reshape")
class Reshape(_Op):
    """Reshapes the per-example axes: (B, *S) → (B, *shape), ∏S = ∏shape."""

    params = (Param("shape", "shape", doc="the new per-example shape"),)

    def infer(self, ctx: Context) -> list[TensorInfo]:
        info, shape = ctx.in_info[0], tuple(ctx.cfg["shape"])
        if info.shape is not None and math.prod(info.shape) != math.prod(shape):
            raise ShapeError(
                f"reshape: cannot reshape {fmt(info.shape)} ({math.prod(info.shape)} elements) "
                f"to {list(shape)} ({math.prod(shape)} elements)"
            )
        return [TensorInfo(shape, info.dtype, info.classes, info.range)]

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import ops as O

        return O.Reshape(ctx.cfg["shape"])


class _Elementwise(_Op):
    """x_1 ∘ x_2 ∘ … left to right; per-example shapes of equal rank, each axis equal or 1."""

    n_inputs = (2, None)

    def infer(self, ctx: Context) -> list[TensorInfo]:
        out: Shape = None
        first = 0
        for i, shape in enumerate(ctx.in_shapes):
            if shape is None:
                continue
            if out is None:
                out, first = tuple(shape), i
                continue
            fits = len(shape) == len(out) and all(a == b or 1 in (a, b) for a, b in zip(shape, out, strict=True))
            if not fits:
                raise ShapeError(
                    f"{self.name}: shapes {fmt(out)} ('{input_name(ctx, first)}') and "
                    f"{fmt(shape)} ('{input_name(ctx, i)}') do not broadcast; per-example shapes "
                    "need the same rank, each axis equal or 1"
                )
            out = tuple(max(a, b) for a, b in zip(shape, out, strict=True))
        if any(s is None for s in ctx.in_shapes):
            out = None
        dtype = "int64" if all(is_int(i) for i in ctx.in_info) else "float32"
        return [TensorInfo(out, dtype)]

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import ops as O

        return O.Elementwise(self.name)


@OPS.register("add")
class Add(_Elementwise):
    """Elementwise sum y = x_1 + x_2 + … (broadcasting axes of size 1)."""


@OPS.register("sub")
class Sub(_Elementwise):
    """Elementwise difference y = x_1 − x_2 − … (broadcasting axes of size 1)."""


@OPS.register("mul")
class Mul(_Elementwise):
    """Elementwise product y = x_1 ⊙ x_2 ⊙ … (broadcasting axes of size 1)."""


def _axis(ctx: Context, kind: str, shape: tuple[int, ...]) -> int:
    dim = ctx.cfg["dim"]
    axis = dim if dim >= 0 else len(shape) + dim
    if not 0 <= axis < len(shape):
        raise ShapeError(
            f"{kind}: dim {dim} is out of range for shape {fmt(shape)} (dim counts per-example "
            "axes: 0 is the first axis after the batch)"
        )
    return axis


@OPS.register("concat")
class Concat(_Op):
    """Concatenation along a per-example axis ``dim`` (0: features / channels)."""

    n_inputs = (1, None)
    params = (Param("dim", "int", 0, "per-example axis (0 = the first after the batch)"),)

    def infer(self, ctx: Context) -> list[TensorInfo]:
        shapes = ctx.in_shapes
        if any(s is None for s in shapes):
            return [TensorInfo()]
        axis = _axis(ctx, "concat", shapes[0])
        for i, s in enumerate(shapes[1:], 1):
            rest = [n for k, n in enumerate(s) if k != axis]
            if len(s) != len(shapes[0]) or rest != [n for k, n in enumerate(shapes[0]) if k != axis]:
                raise ShapeError(
                    f"concat: '{input_name(ctx, i)}' has shape {fmt(s)} but "
                    f"'{input_name(ctx, 0)}' has shape {fmt(shapes[0])}; all axes but dim "
                    f"{ctx.cfg['dim']} must match"
                )
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return [TensorInfo(tuple(out))]

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import ops as O

        return O.Concat(ctx.cfg["dim"])


@OPS.register("split")
class Split(_Op):
    """Splits a per-example axis ``dim`` into pieces of ``sizes`` (one output per size)."""

    n_outputs = (1, None)
    params = (
        Param("sizes", "ints", doc="size of each piece; they sum to the axis size"),
        Param("dim", "int", 0, "per-example axis (0 = the first after the batch)"),
    )

    def infer(self, ctx: Context) -> list[TensorInfo]:
        sizes, shape = list(ctx.cfg["sizes"]), ctx.in_shapes[0]
        if ctx.outputs and len(ctx.outputs) != len(sizes):
            raise ShapeError(
                f"split: {len(sizes)} sizes {sizes} but {len(ctx.outputs)} outputs "
                f"{list(ctx.outputs)}; give one output per size"
            )
        if shape is None:
            return [TensorInfo() for _ in sizes]
        axis = _axis(ctx, "split", shape)
        if sum(sizes) != shape[axis]:
            raise ShapeError(
                f"split: sizes {sizes} sum to {sum(sizes)} but axis {ctx.cfg['dim']} of "
                f"{fmt(shape)} has size {shape[axis]} (dim counts per-example axes: 0 is the "
                "first axis after the batch)"
            )
        return [TensorInfo(shape[:axis] + (n,) + shape[axis + 1 :]) for n in sizes]

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import ops as O

        return O.Split(ctx.cfg["sizes"], ctx.cfg["dim"])


def _image_shape(ctx: Context, kind: str, i: int = 0) -> Shape:
    shape = ctx.in_shapes[i]
    if shape is not None and len(shape) != 3:
        raise ShapeError(f"{kind} expects images (C, H, W), got shape {fmt(shape)} for '{input_name(ctx, i)}'")
    return shape


@OPS.register("warp")
class Warp(_Op):
    """Random smooth warp of images (paired autoencoders); identity at export.

    Sampling grid = affine_grid([I | 0] + strength·ε_a) + elastic·bilinear_up(ε_e), read with
    ``grid_sample`` (border padding); ε_a ~ N(0, I) of shape (6,), and when elastic > 0
    ε_e ~ N(0, I) of shape (2, grid, grid): a coarse displacement field.
    """

    params = (
        Param("strength", "float", 0.05, "scale of the random affine deviation", minimum=0),
        Param("elastic", "float", 0.0, "scale of the elastic displacement (0: none)", minimum=0),
        Param("grid", "int", 4, "size of the coarse displacement grid", minimum=2),
    )

    def infer(self, ctx: Context) -> list[TensorInfo]:
        _image_shape(ctx, "warp")
        return [TensorInfo(ctx.in_shapes[0], range=ctx.in_info[0].range)]

    def noise(self, ctx: Context) -> list[Noise]:
        g = ctx.cfg["grid"]
        field = [Noise("eps_field", (2, g, g), "normal")] if ctx.cfg["elastic"] > 0 else []
        return [Noise("eps", (6,), "normal"), *field]

    def training_only(self, ctx: Context) -> bool:
        return True

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import ops as O

        return O.Warp(ctx.cfg["strength"], ctx.cfg["elastic"])


def resolve_groups(ctx: Context, kind: str) -> tuple[LatentInfo, list[str], list[list[float]]]:
    """DC-IGN groups: the latent, the group names in the sampler's ``vary`` order, and per
    group a 0/1 row over the latent's units: 1 for the units kept when that group varies (its
    own), 0 for the units clamped. As in Kulkarni et al. (2015) every other unit is clamped,
    the ``intrinsic`` group and the units in no group included; with ``intrinsic: pass`` those
    pass through unclamped (only the other factor groups are clamped)."""
    name = ctx.cfg["latent"]
    if name is None:
        name = ctx.inputs[0] if ctx.inputs and ctx.inputs[0] in ctx.latents else None
        if name is None:
            raise ShapeError(
                f"{kind} needs `latent:` naming the latent whose groups to use (its input "
                f"'{input_name(ctx, 0)}' is not a latent)"
            )
    if name not in ctx.latents:
        raise ShapeError(f"{kind}: unknown latent {name!r}; declared latents: {sorted(ctx.latents)}")
    latent = ctx.latents[name]
    if not latent.groups:
        raise ShapeError(f"{kind}: latent {name!r} declares no `groups:`")
    order = list(ctx.cfg["vary"] or [g for g in latent.groups if g != "intrinsic"])
    unknown = [g for g in order if g not in latent.groups]
    if unknown:
        raise ShapeError(
            f"{kind}: `vary` names {unknown}, which are not groups of latent {name!r} ({list(latent.groups)})"
        )
    bad = sorted(u for units in latent.groups.values() for u in units if not 0 <= u < latent.dim)
    if bad:
        raise ShapeError(f"{kind}: latent {name!r} has dim {latent.dim}, no unit {bad[0]}")
    factors = {u for g, units in latent.groups.items() if g != "intrinsic" for u in units}
    free = ctx.cfg.get("intrinsic", "clamp") == "pass"
    keep = []
    for group in order:
        varying = set(latent.groups[group])
        keep.append([1.0 if u in varying or (free and u not in factors) else 0.0 for u in range(latent.dim)])
    z, vary = ctx.in_info[0], ctx.in_info[1]
    if z.shape is not None and tuple(z.shape) != (latent.dim,):
        raise ShapeError(
            f"{kind} expects '{input_name(ctx, 0)}' of shape [{latent.dim}] (latent {name!r}), got {fmt(z.shape)}"
        )
    if not is_int(vary) or vary.shape not in (None, ()):
        raise ShapeError(
            f"{kind} expects '{input_name(ctx, 1)}' to be an int64 group index per example, "
            f"got {vary.dtype} of shape {fmt(vary.shape)}"
        )
    if vary.classes is not None and vary.classes != len(order):
        raise ShapeError(
            f"{kind}: '{input_name(ctx, 1)}' has {vary.classes} classes but latent {name!r} "
            f"varies {len(order)} groups {order}; list them in `vary:` in the sampler's order"
        )
    return latent, order, keep


GROUP_PARAMS = (
    Param("latent", "str", None, "the latent whose groups to use (default: input 0's name)", default_doc="input 0"),
    Param(
        "vary",
        "strs",
        None,
        "group names in the sampler's order (default: all but intrinsic)",
        default_doc="all groups but intrinsic",
    ),
    Param(
        "intrinsic",
        "str",
        "clamp",
        "units of the `intrinsic` group and in no group, while a factor varies: clamp (Kulkarni et al.) "
        "or pass through",
        ("clamp", "pass"),
    ),
)


@OPS.register("clamp_latents")
class ClampLatents(_Op):
    """DC-IGN clamping (Kulkarni et al. 2015); identity at export.

    In a batch where group g = vary[0] varies, every unit outside g is replaced by the batch
    mean (``to: mean``) or the first example's value (``to: first``): z̄. Backward: kept units
    pass the gradient; clamped units get 0 (``rule: zero``) or strength·(z − z̄)/B
    (``rule: toward_mean``), the clamping error that makes them invariant. Only g's units pass
    through, as in the paper; ``intrinsic: pass`` also lets the ``intrinsic`` group and the units
    in no group through (only the other factor groups are clamped).
    """

    n_inputs = (2, 2)
    params = (
        *GROUP_PARAMS,
        Param("to", "str", "mean", "value of the clamped units", ("mean", "first")),
        Param(
            "grad",
            "mapping",
            {"rule": "toward_mean", "strength": 1.0},
            "backward rule of clamped units: {rule: zero | toward_mean, strength}",
            schema={
                "type": "object",
                "properties": {
                    "rule": {"enum": ["zero", "toward_mean"]},
                    "strength": {"type": "number", "minimum": 0, "maximum": 1e6},
                },
                "additionalProperties": False,
            },
        ),
    )

    def _grad(self, ctx: Context) -> tuple[str, float]:
        grad = {"rule": "toward_mean", "strength": 1.0, **(ctx.cfg["grad"] or {})}
        extra = sorted(set(grad) - {"rule", "strength"})
        if extra or grad["rule"] not in ("zero", "toward_mean"):
            raise ShapeError(
                f"clamp_latents: grad must be {{rule: zero | toward_mean, strength: number}}, got {ctx.cfg['grad']}"
            )
        return grad["rule"], float(grad["strength"])

    def infer(self, ctx: Context) -> list[TensorInfo]:
        self._grad(ctx)
        resolve_groups(ctx, "clamp_latents")
        return [TensorInfo(ctx.in_shapes[0])]

    def training_only(self, ctx: Context) -> bool:
        return True

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import ops as O

        rule, strength = self._grad(ctx)
        _, _, keep = resolve_groups(ctx, "clamp_latents")
        return O.ClampLatents(keep, ctx.cfg["to"], rule, strength)


@OPS.register("perturb")
class Perturb(_Op):
    """Poses near the truth for the feedback loop's updater (Oberweger et al. 2015).

    Per example: p' = p_pred with probability ``p_pred``, else p_true + σε; u ~ U(0, 1) of
    shape (1,) picks, ε ~ N(0, I) has p's shape. With ``detach`` p' carries no gradient.
    """

    n_inputs = (2, 2)
    params = (
        Param("sigma", "float", 0.05, "std of the perturbation of the true pose", minimum=0),
        Param("p_pred", "float", 0.5, "probability of taking the prediction", minimum=0, maximum=1),
        Param("detach", "bool", True, "stop gradients through p'"),
    )

    def infer(self, ctx: Context) -> list[TensorInfo]:
        return [TensorInfo(_same_shape(ctx, "perturb", 0, 1))]

    def noise(self, ctx: Context) -> list[Noise]:
        shape = self.infer(ctx)[0].shape or _noise_shape(ctx, 1)
        return [Noise("eps", tuple(shape), "normal"), Noise("u", (1,), "uniform")]

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import ops as O

        shape = self.infer(ctx)[0].shape
        if shape is None:
            raise ShapeError(f"perturb '{ctx.name}' cannot be built: its input shapes are unknown")
        cfg = ctx.cfg
        return O.Perturb(cfg["sigma"], cfg["p_pred"], cfg["detach"], len(shape))


@OPS.register("loop")
class Loop(_Op):
    """Iterative refinement: ``steps`` times run ``body`` on the ``state`` tensors.

    state: {s: initial tensor}; each step the body recomputes every s from the current state
    (p ← p + U(x, S(p))). Compiled by the compiler itself (an ONNX Loop at export), never
    built as a module.
    """

    n_inputs = (0, None)
    n_outputs = (1, None)
    params = (
        Param("body", "mapping", doc="the nodes of one step, as under `nodes:`"),
        Param("steps", "int", 2, "number of steps", minimum=0),
        Param("state", "mapping", doc="{state tensor: its initial tensor}"),
    )

    def infer(self, ctx: Context) -> list[TensorInfo]:
        return [TensorInfo()]

    def build(self, ctx: Context) -> Any:
        raise TypeError("loop nodes are compiled by the compiler, not built as modules")
