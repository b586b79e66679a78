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
    comp = TERMS[t.term]()
    runs = {}
    for p in comp.run_params:  # e.g. a perceptual loss through a trained classifier's features
        if t.cfg.get(p) is not None:
            from latentspec.run._load import load_run

            runs[p] = load_run(t.cfg[p])[1]
    infos = tuple(spec.infos.get(x, TensorInfo()) for x in t.inputs)
    return comp.build(Context(t.name, t.cfg, t.inputs, (), infos, spec.latents, runs))


def term_weight(t: TermSpec, step: int, epoch: float) -> float:
    """The term's weight at ``step``: its number, or its schedule's value (resolved once, at
    validation)."""
    if isinstance(t.weight, (int, float)):
        return float(t.weight)
    return t.weight.instance.value(t.weight.config, step, epoch)
