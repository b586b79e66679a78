"""A node of the tensor graph, as the validator resolved it."""

from __future__ import annotations

import dataclasses
from typing import Any


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
