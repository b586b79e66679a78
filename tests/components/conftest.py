"""Shared helper of the component tests: a registered component and the Context it sees."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from latentspec.components import modules, ops, terms  # noqa: F401  (registers them)
from latentspec.components._node import Context, LatentInfo, TensorInfo


def _info(x: Any) -> TensorInfo:
    if isinstance(x, TensorInfo):
        return x
    return TensorInfo(None if x is None else tuple(x))


def make_component(
    cls: type,
    cfg: dict | None = None,
    inputs: dict[str, Any] | None = None,
    outputs: Iterable[str] = ("out",),
    latents: Iterable[LatentInfo] = (),
    name: str = "node",
) -> tuple[Any, Context]:
    """``cls`` instantiated, and a Context with ``cfg`` resolved and ``inputs`` {name: shape
    or TensorInfo} in order."""
    inputs = inputs or {}
    ctx = Context(
        name=name,
        cfg=cls.resolve(cfg or {}),
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        in_info=tuple(_info(v) for v in inputs.values()),
        latents={lat.name: lat for lat in latents},
    )
    return cls(), ctx


@pytest.fixture
def make() -> Callable[..., tuple[Any, Context]]:
    return make_component


@pytest.fixture(autouse=True)
def _seed() -> None:
    import torch

    torch.manual_seed(0)
