"""The validated spec as frozen dataclasses; field names are the YAML keys."""

from __future__ import annotations

import dataclasses
from typing import Any

from latentspec.components._node import LatentInfo, TensorInfo


@dataclasses.dataclass(frozen=True)
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


@dataclasses.dataclass(frozen=True)
class DataSpec:
    dataset: str
    dataset_cfg: dict[str, Any]
    split: dict[str, float]
    fields: dict[str, FieldSpec]
    batch: int = 64
    test_batch: int | None = None
    sampler: str = "shuffle"
    sampler_cfg: dict[str, Any] = dataclasses.field(default_factory=dict)
    drop_last: bool = False


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    name: str
    kind: str  # "module" | "op" | "use"
    type: str  # the registry name (for `use`, the shared node's registry name)
    owner: str  # the node that owns the parameters (itself, or the `use` target)
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    cfg: dict[str, Any]
    method: str | None = None
    body: dict[str, NodeSpec] | None = None  # loop nodes
    state: dict[str, str] | None = None  # loop: state tensor -> initial tensor
    path: tuple = ()

    @property
    def reads(self) -> tuple[str, ...]:
        """The outer tensors the node reads: its inputs; for a loop, the initial states, then
        what its body reads from outside."""
        if self.body is None:
            return self.inputs
        local = set(self.state or {}) | {t for b in self.body.values() for t in b.outputs}
        outer = [t for b in self.body.values() for t in b.inputs if t not in local]
        return tuple(dict.fromkeys([*(self.state or {}).values(), *outer]))


@dataclasses.dataclass(frozen=True)
class TermSpec:
    name: str
    term: str
    inputs: tuple[str, ...]
    cfg: dict[str, Any]
    weight: float | dict = 1.0  # a number or a schedule {schedule: linear, ...}
    stages: tuple[str, ...] | None = None
    path: tuple = ()


@dataclasses.dataclass(frozen=True)
class StageSpec:
    name: str
    trainable: tuple[str, ...]
    terms: tuple[str, ...]
    optimizer: dict[str, Any]
    epochs: int = 1
    steps: int | None = None
    fit: str | None = None
    schedule: dict | None = None
    clip_grad: float | None = None


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    stages: tuple[StageSpec, ...]
    amp: bool = False
    compile: bool = False
    eval_every: int = 1
    samples_every: int = 0
    log_every: int = 10


@dataclasses.dataclass(frozen=True)
class EntrySpec:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    optimize: str | None = None
    terms: tuple[TermSpec, ...] = ()
    steps: int = 200
    lr: float = 0.05
    starts: int = 1
    iterations: int | None = None
    local: dict[str, dict] = dataclasses.field(default_factory=dict)  # entry-only input tensors


@dataclasses.dataclass(frozen=True)
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
    producers: dict[str, str]  # tensor -> "field" | "latent" | node name
    text: str
    file: str
    raw: dict = dataclasses.field(repr=False, default_factory=dict)

    @property
    def base_dir(self) -> str:
        import os

        return (
            os.path.dirname(os.path.abspath(self.file)) if self.file and not self.file.startswith("<") else os.getcwd()
        )
