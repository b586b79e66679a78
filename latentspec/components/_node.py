"""Base classes of graph components: modules, ops and objective terms.

A component declares its parameters (torch-free), infers output shapes from input shapes
(torch-free, used by ``latentspec validate``), and builds a ``torch.nn.Module`` (imports torch).
Shapes leave out the batch axis; ``None`` is an unknown shape.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import types
from collections.abc import Mapping
from typing import Any, ClassVar

from latentspec.components._registry import Component

Shape = tuple[int, ...] | None


class ShapeError(Exception):
    """A node's inputs do not fit it. The message says what was expected and what came."""


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """What the validator knows about a tensor: per-item shape and dtype."""

    shape: Shape = None
    dtype: str = "float32"  # "float32" | "int64"
    classes: int | None = None  # for integer class tensors
    range: tuple[float, float] | None = None  # value range, when known (fields, sigmoid outputs)


@dataclasses.dataclass(frozen=True)
class LatentInfo:
    """A declared latent variable (``latents:`` entry), resolved."""

    name: str
    dim: int
    _: dataclasses.KW_ONLY
    prior: str = "normal"  # normal | uniform | none | gaussian | gmm (fitted by a `fit:` stage)
    components: int = 10  # of a gmm prior
    fit_from: str | None = None  # the tensor a fitted prior is fitted to (None: the latent)
    table: bool = False
    index: str | None = None  # the field that indexes the table
    project: str | None = None  # None | unit_l2 | l2_ball
    radius: float = 1.0
    init: str = "normal"  # pca | normal | zeros
    init_scale: float = 1.0
    candidates: int = 1
    groups: dict[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Context:
    """What a component sees when it infers shapes or builds itself."""

    name: str  # the node (or term) name in the spec
    cfg: Mapping[str, Any]  # its parameters, defaults filled in (a term's: its typed Config)
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    in_info: tuple[TensorInfo, ...]
    latents: dict[str, LatentInfo] = dataclasses.field(default_factory=dict)
    #: when building a term: the trained runs its ``run_params`` name, loaded by the caller
    #: (latentspec.run.build_term), parameter -> compiled model with its weights
    runs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def in_shapes(self) -> tuple[Shape, ...]:
        return tuple(i.shape for i in self.in_info)


@dataclasses.dataclass(frozen=True)
class Noise:
    """An explicit noise input of a stochastic op (drawn by the trainer, given by the caller
    of an exported graph). ``shape`` excludes the batch axis; ``batch_factor`` multiplies it."""

    suffix: str  # the input is named "eps" (or "eps_<node>" when a graph has several)
    shape: tuple[int, ...]
    distribution: str = "normal"  # normal | uniform
    batch_factor: int = 1


def numel(shape: Shape) -> int | None:
    return None if shape is None else math.prod(shape)


class NodeComponent(Component, abc.ABC):
    """A module or op: maps input tensors to output tensors."""

    #: (min, max) number of inputs and outputs; max None = unbounded.
    n_inputs: ClassVar[tuple[int, int | None]] = (1, 1)
    n_outputs: ClassVar[tuple[int, int | None]] = (1, 1)
    #: True when the node has trainable parameters (a `module:`); ops usually have none.
    has_params: ClassVar[bool] = True
    #: Other methods of the built module that `use:` nodes may call (`method: inverse`).
    methods: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def infer(self, ctx: Context) -> list[TensorInfo]:
        """Output tensor infos from input infos; raise ShapeError when inputs do not fit."""

    @abc.abstractmethod
    def build(self, ctx: Context) -> Any:
        """A ``torch.nn.Module`` whose forward takes the inputs (then the noise tensors, in
        ``noise()`` order) and returns one tensor, or a tuple for several outputs."""

    def noise(self, ctx: Context) -> list[Noise]:
        """The explicit noise inputs this node needs (stochastic ops override)."""
        return []

    def training_only(self, ctx: Context) -> bool:
        """True when the node is the identity outside training (corruption, warps, clamping):
        exported graphs then skip it and take no noise for it."""
        return False


class TermComponent(Component, abc.ABC):
    """An objective term: maps tensors to a scalar loss (averaged over the batch)."""

    n_inputs: ClassVar[tuple[int, int | None]] = (2, 2)
    #: Which input plays which role, by position: a likelihood or reconstruction term declares
    #: {"reconstruction": 0, "target": 1} (and e.g. "mask": 2), so evaluation, sample
    #: pictures and the bundle manifest find them without guessing from tensor names.
    roles: ClassVar[Mapping[str, int]] = types.MappingProxyType({})
    #: The distribution the reconstruction parametrises: "bernoulli" (logits), "gaussian"
    #: (a mean), or None (a distance, or not a likelihood).
    distribution: ClassVar[str | None] = None
    #: Parameters that name a trained run directory; ``build`` finds each loaded in ``ctx.runs``.
    run_params: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def distribution_of(cls, cfg: Any) -> str | None:
        """The distribution for these parameters (a term whose likelihood is a parameter
        overrides this)."""
        return cls.distribution

    def infer(self, ctx: Context) -> None:
        """Check the input shapes fit; raise ShapeError when they do not. Default: the first
        two inputs must have equal known shapes."""
        a, b = ctx.in_shapes[:2] if len(ctx.in_shapes) >= 2 else (None, None)
        if a is not None and b is not None and numel(a) != numel(b):
            raise ShapeError(f"'{ctx.inputs[0]}' has shape {list(a)} but '{ctx.inputs[1]}' has shape {list(b)}")

    @abc.abstractmethod
    def build(self, ctx: Context) -> Any:
        """A ``torch.nn.Module`` whose forward takes the input tensors and returns a 0-d loss."""
