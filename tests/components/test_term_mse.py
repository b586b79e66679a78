"""term: mse — mean of (x̂ − x)² over all elements, or (sum) mean_b Σ_j (x̂_j − x_j)²."""

import re

import pytest
import torch

from latentspec.components._kinds import TERMS
from latentspec.components._node import ShapeError

MSE = TERMS["mse"]
PRED = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
TARGET = torch.tensor([[0.0, 0.0], [1.0, 3.0]])  # squared errors [[1, 4], [1, 9]]


def test_mean_and_sum(make):
    comp, ctx = make(MSE, {}, {"x_hat": (2,), "x": (2,)})
    comp.infer(ctx)
    assert comp.build(ctx)(PRED, TARGET).item() == pytest.approx(15 / 4)
    comp, ctx = make(MSE, {"reduction": "sum"}, {"x_hat": (2,), "x": (2,)})
    assert comp.build(ctx)(PRED, TARGET).item() == pytest.approx((5 + 10) / 2)


def test_flat_prediction_of_an_image_and_gradient(make):
    comp, ctx = make(MSE, {}, {"x_hat": (4,), "x": (1, 2, 2)})
    comp.infer(ctx)
    pred = torch.zeros(3, 4, requires_grad=True)
    loss = comp.build(ctx)(pred, torch.ones(3, 1, 2, 2))
    assert loss.dim() == 0 and loss.item() == 1.0
    loss.backward()
    torch.testing.assert_close(pred.grad, torch.full((3, 4), -2 / 12))


def test_infer_error(make):
    comp, ctx = make(MSE, {}, {"x_hat": (784,), "x": (1, 28, 27)})
    with pytest.raises(ShapeError, match=re.escape("mse: 'x_hat' has shape [784] but 'x' has shape [1, 28, 27]")):
        comp.infer(ctx)
