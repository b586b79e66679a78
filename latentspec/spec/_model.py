"""The validated spec as frozen dataclasses; field names are the YAML keys."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from latentspec.components._node import LatentInfo, TensorInfo
from latentspec.components._registry import Choice, Config
from latentspec.graph import Graph, NodeSpec, Producer


@dataclasses.dataclass(frozen=True, kw_only=True)
class FieldSpec:
    name: str
    source: str | tuple[str, ...]  # dataset array name, "index", or scalar arrays to stack
    dtype: str | None = None
    scale: tuple[float, float] | None = None
    shape: tuple[int, ...] | None = None
    classes: int | None = None
    one_hot: bool = False
    encode: str | None = None
    where: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def group(self) -> str:
        """Fields with the same `where` filter draw rows together (one sampler group)."""
        return ",".join(f"{k}={v}" for k, v in sorted(self.where.items())) or "*"


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataSpec:
    dataset: Choice  # a DATASETS entry and its config
    split: dict[str, float]
    fields: dict[str, FieldSpec]
    batch: int
    test_batch: int
    sampler: Choice  # a SAMPLERS entry and its config
    drop_last: bool


@dataclasses.dataclass(frozen=True, kw_only=True)
class TermSpec:
    name: str
    term: str
    inputs: tuple[str, ...]
    cfg: Config  # the term component's parameters, typed and frozen
    weight: float | Choice = 1.0  # a number, or a SCHEDULES entry and its config
    stages: tuple[str, ...] | None = None
    path: tuple = ()

    def role(self, role: str) -> str | None:
        """The tensor the term takes in ``role`` (e.g. "reconstruction", "target"), as its
        component declares (``TermComponent.roles``); None when it has no such input."""
        from latentspec.components import TERMS

        i = TERMS[self.term].roles.get(role)
        return self.inputs[i] if i is not None and i < len(self.inputs) else None

    @property
    def distribution(self) -> str | None:
        """The likelihood the term scores its reconstruction under: "bernoulli" (it takes
        logits), "gaussian" (a mean), or None (not a likelihood)."""
        from latentspec.components import TERMS

        return TERMS[self.term].distribution_of(self.cfg)


@dataclasses.dataclass(frozen=True, kw_only=True)
class StageSpec:
    name: str
    trainable: tuple[str, ...]
    terms: tuple[str, ...]
    optimizer: Choice  # an OPTIMIZERS entry and its config
    epochs: int
    steps: int | None = None
    fit: str | None = None
    schedule: Choice | None = None  # a SCHEDULES entry (the learning-rate multiplier)
    clip_grad: float | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainSpec:
    stages: tuple[StageSpec, ...]
    amp: bool
    compile: bool
    eval_every: int
    samples_every: int
    log_every: int
    checkpoint_every: int = 0  # 0: auto (see _sections)
    track: tuple = ()  # (tracker name, its config) pairs: the sinks the run streams to
    table_updates: str = "rows"  # latent tables: "rows" (row-wise, lazy) or "dense" updates


@dataclasses.dataclass(frozen=True, kw_only=True)
class InputSpec:
    """A tensor only one entry takes (``export.E.inputs``), e.g. an inpainting mask."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    meaning: str | None = None  # image | mask | latent | label | value
    range: tuple[float, float] | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class EntrySpec:
    name: str
    kind: str  # what it does (spec._sections.ENTRY_KINDS): from the name, or declared
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    optimize: str | None = None
    terms: tuple[TermSpec, ...] = ()
    steps: int
    lr: float
    starts: int
    iterations: int | None = None
    local: dict[str, InputSpec] = dataclasses.field(default_factory=dict)  # entry-only input tensors
    prior: tuple[str, ...] = ()  # latents drawn from their prior even when the inputs reach their producer


@dataclasses.dataclass(frozen=True, kw_only=True)
class Spec:
    name: str
    seed: int
    description: str
    data: DataSpec
    latents: dict[str, LatentInfo]
    nodes: dict[str, NodeSpec]
    objective: dict[str, TermSpec]
    train: TrainSpec
    export: dict[str, EntrySpec]
    infos: dict[str, TensorInfo]  # every tensor's inferred info
    producers: dict[str, Producer]  # tensor -> Field | Latent | Node
    text: str
    file: str
    raw: dict = dataclasses.field(repr=False, default_factory=dict)

    @functools.cached_property
    def graph(self) -> Graph:
        """The tensor graph (nodes in topological order) that planning and compiling read."""
        return Graph(self.nodes, self.latents, self.producers, self.infos)

    def entry_of_kind(self, kind: str) -> EntrySpec | None:
        """The export entry that does ``kind`` (encode, decode, sample, ...): the one named
        ``kind`` when several do, else the first; None when none does."""
        found = [e for e in self.export.values() if e.kind == kind]
        return next((e for e in found if e.name == kind), found[0] if found else None)

    @property
    def base_dir(self) -> str:
        import os

        return (
            os.path.dirname(os.path.abspath(self.file)) if self.file and not self.file.startswith("<") else os.getcwd()
        )
