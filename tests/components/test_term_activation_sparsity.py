"""term: activation_sparsity — l1: mean_b Σ|h|; kl: Σ_j KL(ρ ‖ ρ̂_j), ρ̂ the batch mean."""

import math
import re

import pytest
import torch

from latentspec.components._kinds import TERMS
from latentspec.components._node import ShapeError

SPARSE = TERMS["activation_sparsity"]


def test_l1(make):
    comp, ctx = make(SPARSE, {}, {"h": (2,)})
    comp.infer(ctx)
    h = torch.tensor([[1.0, -2.0], [0.0, 3.0]], requires_grad=True)
    loss = comp.build(ctx)(h)
    assert loss.item() == pytest.approx(3.0)
    loss.backward()
    torch.testing.assert_close(h.grad, torch.tensor([[0.5, -0.5], [0.0, 0.5]]))


def test_kl_to_the_target_rate(make):
    comp, ctx = make(SPARSE, {"kind": "kl", "target": 0.1}, {"h": (2,)})
    comp.infer(ctx)
    h = torch.tensor([[0.1, 0.5], [0.1, 0.3]], requires_grad=True)  # ρ̂ = [0.1, 0.4]
    loss = comp.build(ctx)(h)
    expected = 0.1 * math.log(0.1 / 0.4) + 0.9 * math.log(0.9 / 0.6)  # unit 0 is on target
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert h.grad[:, 0].abs().max() < 1e-5 and (h.grad[:, 1] > 0).all()


def test_infer_error(make):
    comp, ctx = make(SPARSE, {"kind": "kl", "target": 0.0}, {"h": (2,)})
    with pytest.raises(ShapeError, match=re.escape("activation_sparsity: kl needs 0 < target < 1, got 0.0")):
        comp.infer(ctx)
