"""term: bernoulli_nll — Σ_j [softplus(ℓ_j) − x_j ℓ_j] per example, mean over the batch."""

import re

import numpy as np
import pytest
import torch

from latentspec.components._kinds import TERMS
from latentspec.components._node import ShapeError

NLL = TERMS["bernoulli_nll"]


def test_value_matches_numpy(make):
    comp, ctx = make(NLL, {}, {"x_logits": (1, 2, 2), "x": (1, 2, 2)})
    comp.infer(ctx)
    logits = np.array([[0.0, 2.0, -1.0, 3.0], [1.0, 1.0, 1.0, 1.0]])
    x = np.array([[1.0, 0.0, 0.5, 1.0], [0.0, 1.0, 0.0, 1.0]])
    p = 1 / (1 + np.exp(-logits))
    expected = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(1).mean()
    got = comp.build(ctx)(torch.tensor(logits).reshape(2, 1, 2, 2), torch.tensor(x).reshape(2, 1, 2, 2))
    assert got.dim() == 0 and got.item() == pytest.approx(expected)


def test_stable_for_extreme_logits_and_gradient(make):
    comp, ctx = make(NLL, {}, {"x_logits": (2,), "x": (2,)})
    logits = torch.tensor([[100.0, -100.0]], requires_grad=True)
    loss = comp.build(ctx)(logits, torch.tensor([[0.0, 1.0]]))
    assert loss.item() == pytest.approx(200.0)
    loss.backward()
    torch.testing.assert_close(logits.grad, torch.tensor([[1.0, -1.0]]))  # σ(ℓ) − x


def test_infer_error(make):
    comp, ctx = make(NLL, {}, {"x_logits": (784,), "x": (1, 32, 32)})
    with pytest.raises(ShapeError, match=re.escape("bernoulli_nll: 'x_logits' has shape [784]")):
        comp.infer(ctx)
