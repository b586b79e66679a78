"""op: sub — y = x_1 − x_2 − … elementwise."""

import re

import pytest
import torch

from latentspec.components._kinds import OPS
from latentspec.components._node import ShapeError, TensorInfo

SUB = OPS["sub"]


def test_sub(make):
    comp, ctx = make(SUB, {}, {"z_after": (2,), "z_before": (2,)})
    assert comp.infer(ctx) == [TensorInfo((2,))]
    a, b = (
        torch.tensor([[5.0, 1.0]], requires_grad=True),
        torch.tensor([[2.0, 3.0]], requires_grad=True),
    )
    y = comp.build(ctx)(a, b)
    torch.testing.assert_close(y, torch.tensor([[3.0, -2.0]]))
    y.sum().backward()
    torch.testing.assert_close(b.grad, -torch.ones(1, 2))


def test_infer_error(make):
    comp, ctx = make(SUB, {}, {"a": (2,), "b": (3,)})
    with pytest.raises(ShapeError, match=re.escape("sub: shapes [2] ('a') and [3] ('b')")):
        comp.infer(ctx)
