"""op: mul — y = x_1 ⊙ x_2 ⊙ … elementwise (e.g. an image and its mask)."""

import re

import pytest
import torch

from latentspec.components._kinds import OPS
from latentspec.components._node import ShapeError, TensorInfo

MUL = OPS["mul"]


def test_mul_with_broadcast_mask(make):
    comp, ctx = make(MUL, {}, {"x": (3, 2, 2), "mask": (1, 2, 2)})
    assert comp.infer(ctx) == [TensorInfo((3, 2, 2))]
    x = torch.ones(1, 3, 2, 2, requires_grad=True)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 2.0]]]])
    y = comp.build(ctx)(x, mask)
    torch.testing.assert_close(y, mask.expand(1, 3, 2, 2))
    y.sum().backward()
    torch.testing.assert_close(x.grad, mask.expand(1, 3, 2, 2))


def test_infer_error(make):
    comp, ctx = make(MUL, {}, {"x": (3, 2, 2), "m": (2, 2)})
    with pytest.raises(ShapeError, match=re.escape("mul: shapes [3, 2, 2] ('x') and [2, 2] ('m')")):
        comp.infer(ctx)
