"""term: l1 — mean of |x̂ − x| over all elements, or (sum) mean_b Σ_j |x̂_j − x_j|."""

import re

import pytest
import torch

from latentspec.components._kinds import TERMS
from latentspec.components._node import ShapeError

L1 = TERMS["l1"]


def test_mean_and_sum_and_gradient(make):
    pred = torch.tensor([[1.0, -2.0], [0.5, 0.0]], requires_grad=True)
    target = torch.zeros(2, 2)
    comp, ctx = make(L1, {}, {"y_a": (2,), "x_a": (2,)})
    loss = comp.build(ctx)(pred, target)
    assert loss.item() == pytest.approx(3.5 / 4)
    loss.backward()
    torch.testing.assert_close(pred.grad, torch.tensor([[0.25, -0.25], [0.25, 0.0]]))
    comp, ctx = make(L1, {"reduction": "sum"}, {"y_a": (2,), "x_a": (2,)})
    assert comp.build(ctx)(pred, target).item() == pytest.approx(3.5 / 2)


def test_infer_error(make):
    comp, ctx = make(L1, {}, {"y_a": (3, 64, 64), "x_a": (3, 32, 32)})
    with pytest.raises(ShapeError, match=re.escape("l1: 'y_a' has shape [3, 64, 64]")):
        comp.infer(ctx)
