"""The deterministic code of a trained model's inputs: which tensors hold it (``code_tensors``,
``find_vae``) and its value on every row of a split (``codes``).

Below both ``latentspec.train`` (``eval``, pictures, metrics) and ``latentspec.export`` (editing
directions and factor calibration), so exporting never imports the trainer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from latentspec.errors import RunError
from latentspec.spec._evalkeys import VaeParts, find_vae  # noqa: F401  (torch-free; the eval declarations use them)

if TYPE_CHECKING:
    from latentspec.data.pipeline import SplitData
    from latentspec.spec import Spec


def code_tensors(spec: Spec) -> tuple[str, str]:
    """(input field, code tensor) of the deterministic code: the posterior mean of a VAE, or
    the `encode` entry's first output."""
    v = find_vae(spec)
    if v is not None:
        return v.x, v.mu
    e = spec.entry_of_kind("encode")
    if e is not None and len(e.inputs) == 1 and not e.optimize:
        return e.inputs[0], e.outputs[0]
    raise RunError("this needs a VAE or an `encode` entry point with one input to take codes from")


def conditions(spec: Spec, outputs: list[str], given: list[str]) -> list[str]:
    """The data fields beside ``given`` that computing ``outputs`` reads, in spec order: the
    label a conditional VAE's encoder or decoder also takes (``y``), or nothing."""
    from latentspec.graph import plan

    p = plan(spec.graph, outputs, given, training=True)
    return [ph.tensor for ph in p.placeholders if ph.kind == "field" and ph.tensor not in given]


def code_field(spec: Spec) -> str:
    return code_tensors(spec)[0]


def codes(spec: Spec, model, data: SplitData) -> torch.Tensor:
    """The deterministic code of every example of ``data`` (see ``code_tensors``), (N, D)."""
    field, code = code_tensors(spec)
    ins = [field, *conditions(spec, [code], [field])]
    gm, _ = model.graph([code], ins, training=False)
    with torch.no_grad():
        return torch.cat([gm(*(b[t] for t in ins)).flatten(1) for b in data.batches(spec, 0, shuffle=False, batch=500)])
