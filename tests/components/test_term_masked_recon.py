"""term: masked_recon — ‖(x̂ − x) ⊙ m‖² (or ‖·‖₁) per example, mean over the batch."""

import re

import pytest
import torch

from latentspec.components._kinds import TERMS
from latentspec.components._node import ShapeError

MASKED = TERMS["masked_recon"]


def test_only_known_pixels_count(make):
    comp, ctx = make(MASKED, {}, {"x_hat": (2, 2, 2), "x": (2, 2, 2), "mask": (1, 2, 2)})
    comp.infer(ctx)
    pred = torch.full((1, 2, 2, 2), 3.0, requires_grad=True)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])  # 2 known pixels × 2 channels
    loss = comp.build(ctx)(pred, torch.ones(1, 2, 2, 2), mask)
    assert loss.item() == pytest.approx(4 * 2**2)
    loss.backward()
    torch.testing.assert_close(pred.grad, 4 * mask.expand(1, 2, 2, 2))  # 2(x̂ − x)·m


def test_l1_and_batch_mean(make):
    comp, ctx = make(MASKED, {"norm": "l1"}, {"x_hat": (3,), "x": (3,), "mask": (3,)})
    pred, target = torch.tensor([[1.0, -2.0, 5.0], [0.0, 0.0, 1.0]]), torch.zeros(2, 3)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    assert comp.build(ctx)(pred, target, mask).item() == pytest.approx((3 + 1) / 2)


def test_infer_error_on_mask_shape(make):
    comp, ctx = make(MASKED, {}, {"x_hat": (1, 4, 4), "x": (1, 4, 4), "mask": (4, 4)})
    message = "masked_recon: mask 'mask' of shape [4, 4] does not broadcast to 'x' of shape [1, 4, 4]"
    with pytest.raises(ShapeError, match=re.escape(message)):
        comp.infer(ctx)
