"""op: clamp — y = min(max(x, min), max)."""

import re

import pytest
import torch

from latentspec.components._kinds import OPS
from latentspec.components._node import ShapeError, TensorInfo

CLAMP = OPS["clamp"]


def test_clamp_both_bounds(make):
    comp, ctx = make(CLAMP, {"min": 0.0, "max": 1.0}, {"x": (3,)})
    assert comp.infer(ctx) == [TensorInfo((3,), range=(0.0, 1.0))]
    x = torch.tensor([[-1.0, 0.5, 2.0]], requires_grad=True)
    y = comp.build(ctx)(x)
    torch.testing.assert_close(y, torch.tensor([[0.0, 0.5, 1.0]]))
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([[0.0, 1.0, 0.0]]))


def test_one_bound(make):
    comp, ctx = make(CLAMP, {"min": 0.0}, {"x": (2,)})
    assert comp.infer(ctx) == [TensorInfo((2,))]
    torch.testing.assert_close(comp.build(ctx)(torch.tensor([[-3.0, 3.0]])), torch.tensor([[0.0, 3.0]]))


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({}, "clamp needs `min`, `max` or both"),
        ({"min": 2, "max": 1}, "clamp: min 2 is above max 1"),
    ],
)
def test_infer_errors(make, cfg, message):
    comp, ctx = make(CLAMP, cfg, {"x": (2,)})
    with pytest.raises(ShapeError, match=re.escape(message)):
        comp.infer(ctx)
