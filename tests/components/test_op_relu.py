"""op: relu — y = max(x, 0)."""

import torch

from latentspec.components._kinds import OPS
from latentspec.components._node import TensorInfo


def test_relu(make):
    comp, ctx = make(OPS["relu"], {}, {"x": (3,)})
    assert comp.infer(ctx) == [TensorInfo((3,))]
    x = torch.tensor([[-1.0, 0.5, 2.0]], requires_grad=True)
    y = comp.build(ctx)(x)
    torch.testing.assert_close(y, torch.tensor([[0.0, 0.5, 2.0]]))
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([[0.0, 1.0, 1.0]]))
