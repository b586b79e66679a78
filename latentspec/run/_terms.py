"""The objective's terms as modules, and their weights over training."""

from __future__ import annotations

from typing import TYPE_CHECKING

from latentspec.components import TERMS
from latentspec.components._node import Context, TensorInfo

if TYPE_CHECKING:
    import torch

    from latentspec.spec import Spec
    from latentspec.spec._model import TermSpec


def build_term(spec: Spec, t: TermSpec) -> torch.nn.Module:
    """The module that computes term ``t`` from its input tensors."""
    ctx = Context(t.name, t.cfg, t.inputs, (), tuple(spec.infos.get(x, TensorInfo()) for x in t.inputs), spec.latents)
    return TERMS[t.term]().build(ctx)


def term_weight(t: TermSpec, step: int, epoch: float) -> float:
    """The term's weight at ``step``: its number, or its schedule's value (resolved once, at
    validation)."""
    if isinstance(t.weight, (int, float)):
        return float(t.weight)
    return t.weight.instance.value(t.weight.config, step, epoch)
