"""Neural modules (``module:`` nodes): parameters, shape inference, and the builder.

Torch-free at import: each ``build`` imports its implementation from ``latentspec.nn.modules``.
Shapes leave out the batch axis.
"""

from __future__ import annotations

import math
import re
from typing import Any

from latentspec.components._kinds import MODULES
from latentspec.components._node import Context, NodeComponent, Shape, ShapeError, TensorInfo
from latentspec.components._registry import MAX_DIM, MAX_KERNEL, Param

ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "gelu", "leaky_relu", "silu", "softplus", "none")
#: Value ranges of bounded activations, recorded on the output TensorInfo.
RANGES: dict[str, tuple[float, float]] = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}


def fmt(shape: Shape) -> str:
    """A shape as the user wrote it: ``[1, 28, 28]`` (or ``unknown``)."""
    return "unknown" if shape is None else str(list(shape))


def input_name(ctx: Context, i: int) -> str:
    return ctx.inputs[i] if i < len(ctx.inputs) else f"input {i}"


def is_int(info: TensorInfo) -> bool:
    return info.dtype.startswith("int")


def vector_inputs(ctx: Context, kind: str) -> tuple[int | None, list[int | None]]:
    """Total features of the inputs once flattened and concatenated (None when a shape is
    unknown), and per input the class count when it is an integer tensor to one-hot encode."""
    total: int | None = 0
    classes: list[int | None] = []
    for i, info in enumerate(ctx.in_info):
        n = None if info.shape is None else math.prod(info.shape)
        if is_int(info):
            if info.classes is None:
                raise ShapeError(
                    f"{kind} got the integer tensor '{input_name(ctx, i)}' without a class "
                    "count; declare `classes:` on it, or map it with op one_hot or module "
                    "embedding first"
                )
            n = None if n is None else n * info.classes
        classes.append(info.classes if is_int(info) else None)
        total = None if total is None or n is None else total + n
    return total, classes


def known(value: Any, ctx: Context, kind: str) -> Any:
    """``value`` when it is known; a ShapeError when the module cannot be built without it."""
    if value is None:
        raise ShapeError(
            f"{kind} '{ctx.name}' cannot be built: its input shapes {[fmt(s) for s in ctx.in_shapes]} are not all known"
        )
    return value


def _activation(name: str, doc: str, default: str = "relu") -> Param:
    return Param(name, "str", default, doc, choices=ACTIVATIONS)


@MODULES.register("mlp")
class MLP(NodeComponent):
    """Multi-layer perceptron over the flattened, concatenated inputs.

    h_0 = concat_i flatten(x_i) (integer class inputs one-hot encoded);
    h_l = dropout(act(norm(W_l h_{l-1} + b_l))) for each width in ``hidden``; with ``dim`` or
    ``shape`` a final y = out_act(W h_L + b) reshaped to ``shape``, else y = h_L.
    """

    n_inputs = (1, None)
    params = (
        Param("hidden", "ints", [], "widths of the hidden layers", minimum=1, maximum=MAX_DIM),
        _activation("activation", "activation after each hidden layer"),
        Param("norm", "str", "none", "normalisation of hidden layers", ("none", "batch", "layer")),
        Param("dropout", "float", 0.0, "dropout after each hidden layer", minimum=0, maximum=1),
        Param("dim", "int", None, "output features (adds an output layer)", minimum=1, maximum=MAX_DIM),
        Param("shape", "shape", None, "output shape (adds an output layer)"),
        _activation("out_activation", "activation of the output layer", "none"),
        Param("bias", "bool", True, "linear layers have biases"),
    )

    def _out_features(self, ctx: Context) -> int | None:
        cfg = ctx.cfg
        dim, shape = cfg["dim"], cfg["shape"]
        if dim is not None and shape is not None and math.prod(shape) != dim:
            raise ShapeError(
                f"mlp: dim {dim} and shape {list(shape)} ({math.prod(shape)} elements) disagree; give one of them"
            )
        if dim is None and shape is None:
            if not cfg["hidden"]:
                raise ShapeError("mlp needs `dim`, `shape` or a non-empty `hidden`")
            if cfg["out_activation"] != "none":
                raise ShapeError("mlp: `out_activation` needs an output layer (`dim` or `shape`)")
            return None
        return dim if dim is not None else math.prod(shape)

    def infer(self, ctx: Context) -> list[TensorInfo]:
        out = self._out_features(ctx)
        vector_inputs(ctx, "mlp")
        if out is None:
            return [TensorInfo((ctx.cfg["hidden"][-1],))]
        shape = tuple(ctx.cfg["shape"] or (out,))
        return [TensorInfo(shape, range=RANGES.get(ctx.cfg["out_activation"]))]

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import modules as M

        cfg = ctx.cfg
        total, classes = vector_inputs(ctx, "mlp")
        return M.MLP(
            known(total, ctx, "mlp"),
            cfg["hidden"],
            self._out_features(ctx),
            cfg["shape"],
            cfg["activation"],
            cfg["norm"],
            cfg["dropout"],
            cfg["out_activation"],
            cfg["bias"],
            classes,
        )


@MODULES.register("conv_encoder")
class ConvEncoder(NodeComponent):
    """Convolutional encoder of images stacked on channels, flattened, optionally projected.

    h = flatten([act(norm(conv_k,s,p(·)))]^n(concat_c(x_i))); with ``dim``: y = W h + b.
    Each layer maps H to ⌊(H + 2p − k)/s⌋ + 1.
    """

    n_inputs = (1, None)
    params = (
        Param("channels", "ints", [32, 64], "output channels of the conv layers", minimum=1, maximum=MAX_DIM),
        Param("kernel", "int", 4, "kernel size", minimum=1, maximum=MAX_KERNEL),
        Param("stride", "int", 2, "stride", minimum=1, maximum=MAX_KERNEL),
        Param("padding", "int", 1, "zero padding", minimum=0, maximum=MAX_KERNEL),
        _activation("activation", "activation after each conv layer"),
        Param("norm", "str", "none", "normalisation after each conv", ("none", "batch", "group")),
        Param(
            "dim", "int", None, "features of a final linear layer (None: the conv features)", minimum=1, maximum=MAX_DIM
        ),
    )

    def _geometry(self, ctx: Context) -> tuple[int, int, int, int] | None:
        """(input channels, H, W, flattened conv features), or None when unknown."""
        shapes = list(ctx.in_shapes)
        for i, s in enumerate(shapes):
            if s is not None and len(s) != 3:
                raise ShapeError(
                    f"conv_encoder expects images (C, H, W), got shape {fmt(s)} for '{input_name(ctx, i)}'"
                )
        sizes = {tuple(s[1:]) for s in shapes if s is not None}
        if len(sizes) > 1:
            got = ", ".join(f"{fmt(s)} for '{input_name(ctx, i)}'" for i, s in enumerate(shapes))
            raise ShapeError(f"conv_encoder inputs must share H and W to stack, got {got}")
        if any(s is None for s in shapes):
            return None
        h, w = sizes.pop()
        k, st, p, channels = (ctx.cfg[key] for key in ("kernel", "stride", "padding", "channels"))
        for _ in channels:
            h, w = (h + 2 * p - k) // st + 1, (w + 2 * p - k) // st + 1
            if h < 1 or w < 1:
                raise ShapeError(
                    f"conv_encoder: input {shapes[0][1]}x{shapes[0][2]} is too small for "
                    f"{len(channels)} conv layers (kernel {k}, stride {st}, padding {p})"
                )
        c_out = channels[-1] if channels else sum(s[0] for s in shapes)
        return sum(s[0] for s in shapes), h, w, c_out * h * w

    def infer(self, ctx: Context) -> list[TensorInfo]:
        geometry = self._geometry(ctx)
        if ctx.cfg["dim"] is not None:
            return [TensorInfo((ctx.cfg["dim"],))]
        return [TensorInfo(None if geometry is None else (geometry[3],))]

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import modules as M

        c_in, _, _, features = known(self._geometry(ctx), ctx, "conv_encoder")
        cfg = ctx.cfg
        return M.ConvEncoder(
            c_in,
            cfg["channels"],
            cfg["kernel"],
            cfg["stride"],
            cfg["padding"],
            cfg["activation"],
            cfg["norm"],
            features,
            cfg["dim"],
        )


_UPSAMPLE_KERNEL = {"transposed": 4, "nearest": 3, "unpool": 5}


@MODULES.register("conv_decoder")
class ConvDecoder(NodeComponent):
    """Up-convolutional decoder (Dosovitskiy et al. 2015): vector → image of ``shape``.

    h = reshape(act(W concat_i flatten(x_i) + b), (c_0, H/2^n, W/2^n)), then n = len(channels)
    ×2 up-blocks c_i → c_{i+1} (the last → C) with norm + activation between blocks and
    ``out_activation`` after the last. Up-blocks: transposed (ConvTranspose2d k, stride 2),
    nearest (×2 nearest up-sampling + conv k, padding k//2), unpool (2×2 zero-insertion
    unpooling + conv k). ``kernel`` defaults to 4, 3 and 5 respectively.
    """

    n_inputs = (1, None)
    params = (
        Param("shape", "shape", doc="output image shape [C, H, W]"),
        Param("channels", "ints", [64, 32], "channels entering each up-block", minimum=1, maximum=MAX_DIM),
        Param(
            "kernel",
            "int",
            None,
            "kernel size (default 4 | 3 | 5 by upsample)",
            minimum=2,
            default_doc="4 (transposed), 3 (nearest), 5 (unpool)",
        ),
        Param("upsample", "str", "transposed", "up-block kind", tuple(_UPSAMPLE_KERNEL)),
        _activation("activation", "activation between blocks"),
        Param("norm", "str", "none", "normalisation between blocks", ("none", "batch")),
        _activation("out_activation", "activation of the output image", "none"),
    )

    def _kernel(self, ctx: Context) -> int:
        cfg = ctx.cfg
        shape, channels, up = list(cfg["shape"]), cfg["channels"], cfg["upsample"]
        if len(shape) != 3:
            raise ShapeError(f"conv_decoder: shape must be [C, H, W], got {shape}")
        if not channels:
            raise ShapeError("conv_decoder needs at least one entry in `channels`")
        n = len(channels)
        if shape[1] % 2**n or shape[2] % 2**n:
            raise ShapeError(
                f"conv_decoder: shape {shape} is not divisible by 2^{n} ({n} up-blocks for "
                f"channels {list(channels)}); use H and W divisible by {2**n}, or fewer channels"
            )
        kernel = cfg["kernel"] or _UPSAMPLE_KERNEL[up]
        if up != "transposed" and kernel % 2 == 0:
            raise ShapeError(f"conv_decoder: upsample {up} needs an odd kernel, got {kernel}")
        return kernel

    def infer(self, ctx: Context) -> list[TensorInfo]:
        self._kernel(ctx)
        vector_inputs(ctx, "conv_decoder")
        shape = tuple(ctx.cfg["shape"])
        return [TensorInfo(shape, range=RANGES.get(ctx.cfg["out_activation"]))]

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import modules as M

        cfg = ctx.cfg
        kernel = self._kernel(ctx)
        total, classes = vector_inputs(ctx, "conv_decoder")
        return M.ConvDecoder(
            known(total, ctx, "conv_decoder"),
            cfg["shape"],
            cfg["channels"],
            kernel,
            cfg["upsample"],
            cfg["activation"],
            cfg["norm"],
            cfg["out_activation"],
            classes,
        )


@MODULES.register("linear")
class Linear(NodeComponent):
    """Affine map of the flattened, concatenated inputs: y = W concat_i flatten(x_i) + b."""

    n_inputs = (1, None)
    params = (
        Param("dim", "int", doc="output features", minimum=1, maximum=MAX_DIM),
        Param("bias", "bool", True, "add a bias"),
    )

    def infer(self, ctx: Context) -> list[TensorInfo]:
        vector_inputs(ctx, "linear")
        return [TensorInfo((ctx.cfg["dim"],))]

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import modules as M

        total, classes = vector_inputs(ctx, "linear")
        return M.MLP(known(total, ctx, "linear"), [], ctx.cfg["dim"], bias=ctx.cfg["bias"], classes=classes)


@MODULES.register("gaussian_head")
class GaussianHead(NodeComponent):
    """Diagonal Gaussian posterior parameters from one feature vector: (μ, log σ²).

    μ = W_μ h + b_μ, log σ² = W_v h + b_v (layers named ``mu`` and ``logvar``); the size comes
    from ``latent`` (the declared latent's dim) or ``dim``, exactly one of them.
    """

    n_outputs = (2, 2)
    params = (
        Param("latent", "str", None, "latent whose dim sets the size"),
        Param("dim", "int", None, "size of mu and logvar", minimum=1, maximum=MAX_DIM),
    )

    def _dim(self, ctx: Context) -> int:
        latent, dim = ctx.cfg["latent"], ctx.cfg["dim"]
        if (latent is None) == (dim is None):
            got = "both" if latent is not None else "neither"
            raise ShapeError(f"gaussian_head needs exactly one of `latent` or `dim`, got {got}")
        if latent is None:
            return dim
        if latent not in ctx.latents:
            raise ShapeError(f"gaussian_head: unknown latent {latent!r}; declared latents: {sorted(ctx.latents)}")
        return ctx.latents[latent].dim

    def infer(self, ctx: Context) -> list[TensorInfo]:
        dim = self._dim(ctx)
        shape = ctx.in_shapes[0]
        if shape is not None and len(shape) != 1:
            raise ShapeError(
                f"gaussian_head expects a flat input, got shape {fmt(shape)} for "
                f"'{input_name(ctx, 0)}'; give the module before it a `dim`, or use op flatten"
            )
        return [TensorInfo((dim,)), TensorInfo((dim,))]

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import modules as M

        dim = self.infer(ctx)[0].shape[0]
        return M.GaussianHead(known(ctx.in_shapes[0], ctx, "gaussian_head")[0], dim)


def _class_count(ctx: Context, kind: str) -> int:
    info = ctx.in_info[0]
    if not is_int(info):
        raise ShapeError(f"{kind} expects an int64 class tensor, got {info.dtype} '{input_name(ctx, 0)}'")
    classes = ctx.cfg["classes"] if ctx.cfg["classes"] is not None else info.classes
    if classes is None:
        raise ShapeError(f"{kind} needs `classes:` (the input '{input_name(ctx, 0)}' declares no class count)")
    if info.classes is not None and info.classes > classes:
        raise ShapeError(
            f"{kind}: the input '{input_name(ctx, 0)}' has {info.classes} classes but `classes` is {classes}"
        )
    return classes


def _append(shape: Shape, n: int) -> Shape:
    return None if shape is None else (*shape, n)


#: the class count of a label input, shared by embedding and one_hot
CLASSES = Param(
    "classes",
    "int",
    None,
    "number of classes (default: the input's)",
    minimum=1,
    maximum=MAX_DIM,
    default_doc="the input's",
)


@MODULES.register("embedding")
class Embedding(NodeComponent):
    """A learned vector per class: y = E[c], E (classes, dim)."""

    params = (CLASSES, Param("dim", "int", doc="embedding size", minimum=1, maximum=MAX_DIM))

    def infer(self, ctx: Context) -> list[TensorInfo]:
        _class_count(ctx, "embedding")
        return [TensorInfo(_append(ctx.in_shapes[0], ctx.cfg["dim"]))]

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import modules as M

        return M.Embedding(_class_count(ctx, "embedding"), ctx.cfg["dim"])


@MODULES.register("one_hot")
class OneHot(NodeComponent):
    """One-hot encoding of a class index: y_j = [c = j], j < classes (float)."""

    has_params = False
    params = (CLASSES,)

    def infer(self, ctx: Context) -> list[TensorInfo]:
        classes = _class_count(ctx, "one_hot")
        return [TensorInfo(_append(ctx.in_shapes[0], classes), range=(0.0, 1.0))]

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import modules as M

        return M.OneHot(_class_count(ctx, "one_hot"))


@MODULES.register("pca")
class PCA(NodeComponent):
    """Principal-component code (eigenfaces), fitted by the trainer's ``fit: pca`` stage.

    c = (flatten(x) − m) Vᵀ, divided by the coefficients' standard deviations s when
    ``whiten``; ``inverse(c)`` = c V + m reshaped to the input shape. V: top ``dim``
    right-singular vectors of the centred data.
    """

    methods = ("inverse",)  # `use: pca_node, method: inverse` decodes codes
    params = (
        Param("dim", "int", doc="number of components", minimum=1, maximum=MAX_DIM),
        Param("whiten", "bool", False, "divide each coefficient by its standard deviation"),
    )

    def infer(self, ctx: Context) -> list[TensorInfo]:
        shape, dim = ctx.in_shapes[0], ctx.cfg["dim"]
        if shape is not None and math.prod(shape) < dim:
            raise ShapeError(
                f"pca: dim {dim} is more than the {math.prod(shape)} features of "
                f"'{input_name(ctx, 0)}' (shape {fmt(shape)})"
            )
        return [TensorInfo((dim,))]

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import modules as M

        self.infer(ctx)
        shape = known(ctx.in_shapes[0], ctx, "pca")
        return M.PCA(shape, ctx.cfg["dim"], ctx.cfg["whiten"])


@MODULES.register("latent_table")
class LatentTable(NodeComponent):
    """One trainable code per training example (GLO): z = W[i], W (size, dim).

    After each optimiser step the trainer calls ``project_()``: unit_l2 sets ‖z‖ = 1, l2_ball
    clips ‖z‖ ≤ radius. init: normal (N(0, init_scale²), then projected), zeros, or pca (the
    trainer calls ``init_from(codes)``).
    """

    params = (
        Param("size", "int", doc="number of codes (training examples)", minimum=1),
        Param("dim", "int", doc="code size", minimum=1, maximum=MAX_DIM),
        Param("project", "str", "none", "projection after each step", ("none", "unit_l2", "l2_ball")),
        Param("radius", "float", 1.0, "radius of the l2 ball", minimum=0),
        Param("init", "str", "normal", "initial codes", ("normal", "zeros", "pca")),
        Param("init_scale", "float", 1.0, "standard deviation of the normal init", minimum=0),
    )

    def infer(self, ctx: Context) -> list[TensorInfo]:
        info, size = ctx.in_info[0], ctx.cfg["size"]
        if not is_int(info):
            raise ShapeError(f"latent_table expects an int64 index, got {info.dtype} '{input_name(ctx, 0)}'")
        if info.classes is not None and info.classes > size:
            raise ShapeError(
                f"latent_table: the index '{input_name(ctx, 0)}' takes {info.classes} values "
                f"but the table has size {size}"
            )
        return [TensorInfo(_append(info.shape, ctx.cfg["dim"]))]

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import modules as M

        cfg = ctx.cfg
        return M.LatentTable(cfg["size"], cfg["dim"], cfg["project"], cfg["radius"], cfg["init"], cfg["init_scale"])


_CLASS_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@MODULES.register("python")
class Python(NodeComponent):
    """A user's ``torch.nn.Module`` class, ``pkg.module:Class``, instantiated with ``args``.

    Its output shape is the declared ``shape`` (unknown otherwise). Runs arbitrary code: the
    CLI allows it only with ``--allow-python``.
    """

    n_inputs = (1, None)
    params = (
        Param("class", "str", doc="the class, as pkg.module:Class"),
        Param("args", "mapping", {}, "keyword arguments of the constructor"),
        Param("shape", "shape", None, "the output shape, when known"),
    )

    def infer(self, ctx: Context) -> list[TensorInfo]:
        path = ctx.cfg["class"]
        if not isinstance(path, str) or not _CLASS_PATH.match(path):
            raise ShapeError(f"python: `class` must look like pkg.module:Class, got {path!r}")
        shape = ctx.cfg["shape"]
        return [TensorInfo(None if shape is None else tuple(shape))]

    def build(self, ctx: Context) -> Any:
        from latentspec.nn import modules as M

        self.infer(ctx)
        return M.load_python(ctx.cfg["class"], dict(ctx.cfg["args"] or {}))
