"""module: linear — y = W flatten(x) + b."""

import pytest
import torch

from latentspec.components._kinds import MODULES
from latentspec.components._node import ShapeError, TensorInfo

LINEAR = MODULES["linear"]


def test_shape_and_value(make):
    comp, ctx = make(LINEAR, {"dim": 2}, {"x": (1, 2, 2)})
    assert comp.infer(ctx) == [TensorInfo((2,))]
    lin = comp.build(ctx)
    (layer,) = lin.net
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 1, 1, 1], [1, -1, 0, 2]]))
        layer.bias.copy_(torch.tensor([0.5, 0.0]))
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    torch.testing.assert_close(lin(x), torch.tensor([[10.5, 7.0]]))


def test_no_bias_and_gradient(make):
    comp, ctx = make(LINEAR, {"dim": 3, "bias": False}, {"x": (4,)})
    lin = comp.build(ctx)
    assert [n for n, _ in lin.named_parameters()] == ["net.0.weight"]
    x = torch.randn(2, 4, requires_grad=True)
    lin(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_build_needs_known_shape(make):
    comp, ctx = make(LINEAR, {"dim": 3}, {"x": None})
    assert comp.infer(ctx) == [TensorInfo((3,))]
    with pytest.raises(ShapeError, match=r"linear 'node' cannot be built: its input shapes"):
        comp.build(ctx)
