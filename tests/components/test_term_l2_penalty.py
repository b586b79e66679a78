"""term: l2_penalty — mean_b Σ_j x_j²."""

import pytest
import torch

from latentspec.components._kinds import TERMS

L2 = TERMS["l2_penalty"]


def test_value_and_gradient(make):
    comp, ctx = make(L2, {}, {"h": (2,)})
    assert L2.n_inputs == (1, 1)
    comp.infer(ctx)
    h = torch.tensor([[1.0, 2.0], [3.0, 0.0]], requires_grad=True)
    loss = comp.build(ctx)(h)
    assert loss.item() == pytest.approx((5 + 9) / 2)
    loss.backward()
    torch.testing.assert_close(h.grad, h.detach())  # 2h / B
