"""Who produces a tensor: a tagged type, so that no node name can pass for a marker.

A node may be called ``latent`` or ``field``; its producer is still ``Node("latent")``, never
the ``Latent`` that stands for a declared latent nobody computes.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Field:
    """A data field (``data.fields``, or the sampler's ``vary``): given in training only."""

    name: str

    def describe(self) -> str:
        return "data field"


@dataclasses.dataclass(frozen=True)
class Latent:
    """A declared latent that no node computes: a table looked up by index, or prior noise."""

    name: str

    def describe(self) -> str:
        return "latent"


@dataclasses.dataclass(frozen=True)
class Node:
    """The output of the node ``name``."""

    name: str

    def describe(self) -> str:
        return f"node '{self.name}'"


@dataclasses.dataclass(frozen=True)
class EntryInput:
    """An input an export entry declares for itself (``export.<entry>.inputs``)."""

    entry: str

    def describe(self) -> str:
        return f"an input of entry '{self.entry}'"


@dataclasses.dataclass(frozen=True)
class LoopState:
    """A state tensor inside the body of the loop node ``loop``."""

    loop: str

    def describe(self) -> str:
        return f"a state of loop '{self.loop}'"


Producer = Field | Latent | Node | EntryInput | LoopState
