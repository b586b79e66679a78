"""op: sigmoid — y = 1 / (1 + e^(−x)), range (0, 1)."""

import torch

from latentspec.components._kinds import OPS
from latentspec.components._node import TensorInfo


def test_sigmoid(make):
    comp, ctx = make(OPS["sigmoid"], {}, {"x_logits": (1, 2, 2)})
    assert comp.infer(ctx) == [TensorInfo((1, 2, 2), range=(0.0, 1.0))]
    assert comp.noise(ctx) == [] and comp.has_params is False
    x = torch.tensor([[0.0, 2.0]], requires_grad=True)
    y = comp.build(ctx)(x)
    torch.testing.assert_close(y, torch.tensor([[0.5, 1 / (1 + torch.e**-2)]]))
    y.sum().backward()
    torch.testing.assert_close(x.grad, y * (1 - y))


def test_unknown_shape(make):
    comp, ctx = make(OPS["sigmoid"], {}, {"x": None})
    assert comp.infer(ctx) == [TensorInfo(range=(0.0, 1.0))]
