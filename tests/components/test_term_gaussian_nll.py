"""term: gaussian_nll — ½ Σ_j ((x_j − μ_j)²/σ_j² + log 2πσ_j²) per example."""

import math
import re

import pytest
import torch

from latentspec.components._kinds import TERMS
from latentspec.components._node import ShapeError

NLL = TERMS["gaussian_nll"]


def test_fixed_variance(make):
    comp, ctx = make(NLL, {"variance": 4.0}, {"mean": (2,), "x": (2,)})
    comp.infer(ctx)
    mean, x = torch.tensor([[0.0, 1.0]]), torch.tensor([[2.0, 1.0]])
    expected = 0.5 * ((4 / 4 + 0 / 4) + 2 * math.log(2 * math.pi * 4))
    assert comp.build(ctx)(mean, x).item() == pytest.approx(expected)


def test_logvar_input_and_gradient(make):
    comp, ctx = make(NLL, {}, {"mean": (1,), "x": (1,), "logvar": (1,)})
    comp.infer(ctx)
    mean = torch.tensor([[1.0], [0.0]], requires_grad=True)
    logvar = torch.tensor([[0.0], [math.log(2.0)]])
    loss = comp.build(ctx)(mean, torch.zeros(2, 1), logvar)
    expected = (0.5 * (1 + math.log(2 * math.pi)) + 0.5 * (0 + math.log(4 * math.pi))) / 2
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    torch.testing.assert_close(mean.grad, torch.tensor([[0.5], [0.0]]))


def test_matches_torch_gaussian_nll(make):
    comp, ctx = make(NLL, {}, {"mean": (3, 4), "x": (3, 4), "logvar": (3, 4)})
    mean, x, logvar = torch.randn(5, 3, 4), torch.randn(5, 3, 4), torch.randn(5, 3, 4)
    ref = torch.nn.functional.gaussian_nll_loss(mean, x, logvar.exp(), full=True, reduction="sum")
    torch.testing.assert_close(comp.build(ctx)(mean, x, logvar), ref / 5)


def test_infer_error(make):
    comp, ctx = make(NLL, {}, {"mean": (4,), "x": (4,), "logvar": (3,)})
    with pytest.raises(ShapeError, match=re.escape("'logvar' has shape [3]")):
        comp.infer(ctx)
