"""op: add — y = x_1 + x_2 + … elementwise, broadcasting axes of size 1."""

import re

import pytest
import torch

from latentspec.components._kinds import OPS
from latentspec.components._node import ShapeError, TensorInfo

ADD = OPS["add"]


def test_add_two_and_three(make):
    comp, ctx = make(ADD, {}, {"p_prime": (3,), "dp": (3,)})
    assert comp.infer(ctx) == [TensorInfo((3,))]
    a, b = torch.tensor([[1.0, 2, 3]]), torch.tensor([[10.0, 20, 30]])
    torch.testing.assert_close(comp.build(ctx)(a, b), torch.tensor([[11.0, 22, 33]]))
    comp, ctx = make(ADD, {}, {"a": (3,), "b": (3,), "c": (3,)})
    torch.testing.assert_close(comp.build(ctx)(a, b, a), torch.tensor([[12.0, 24, 36]]))


def test_broadcasting_axes_of_size_one(make):
    comp, ctx = make(ADD, {}, {"x": (3, 4, 4), "bias": (3, 1, 1)})
    assert comp.infer(ctx) == [TensorInfo((3, 4, 4))]
    x, bias = torch.zeros(2, 3, 4, 4), torch.arange(3.0).reshape(1, 3, 1, 1)
    out = comp.build(ctx)(x, bias)
    assert out.shape == (2, 3, 4, 4) and out[1, 2].eq(2).all()


def test_gradient_and_unknown_shapes(make):
    comp, ctx = make(ADD, {}, {"a": (2,), "b": None})
    assert comp.infer(ctx) == [TensorInfo()]
    a = torch.zeros(1, 2, requires_grad=True)
    comp.build(ctx)(a, torch.ones(1, 2)).sum().backward()
    torch.testing.assert_close(a.grad, torch.ones(1, 2))


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        ((3,), (4,), "add: shapes [3] ('a') and [4] ('b') do not broadcast"),
        ((3,), (2, 3), "per-example shapes need the same rank, each axis equal or 1"),
    ],
)
def test_infer_errors(make, a, b, message):
    comp, ctx = make(ADD, {}, {"a": a, "b": b})
    with pytest.raises(ShapeError, match=re.escape(message)):
        comp.infer(ctx)
