"""term: hinge_update — mean_b max(0, ‖p″ − p‖₂ − λ‖p′ − p‖₂) (feedback loop)."""

import re

import pytest
import torch

from latentspec.components._kinds import TERMS
from latentspec.components._node import ShapeError

HINGE = TERMS["hinge_update"]
INPUTS = {"p_dd": (2,), "p_prime": (2,), "p": (2,)}


def test_value_and_gradient(make):
    comp, ctx = make(HINGE, {"lambda": 0.5}, INPUTS)
    comp.infer(ctx)
    p = torch.zeros(2, 2)
    p_prime = torch.tensor([[3.0, 4.0], [3.0, 4.0]])  # error 5 before the update
    p_dd = torch.tensor([[0.0, 3.0], [0.0, 1.0]], requires_grad=True)  # errors 3 and 1 after
    loss = comp.build(ctx)(p_dd, p_prime, p)
    assert loss.item() == pytest.approx((max(0, 3 - 2.5) + max(0, 1 - 2.5)) / 2)
    loss.backward()
    # only the first example is active: ∂‖p″‖/∂p″ = p″/‖p″‖, / B
    torch.testing.assert_close(p_dd.grad, torch.tensor([[0.0, 0.5], [0.0, 0.0]]))


def test_default_lambda(make):
    assert HINGE.param("lambda").default == 0.6


def test_infer_error(make):
    comp, ctx = make(HINGE, {}, {"p_dd": (42,), "p_prime": (42,), "p": (40,)})
    with pytest.raises(ShapeError, match=re.escape("hinge_update: 'p_dd' has shape [42] but 'p'")):
        comp.infer(ctx)
