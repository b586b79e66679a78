"""op: detach — stop-gradient: y = x, ∂y/∂x = 0."""

import torch

from latentspec.components._kinds import OPS
from latentspec.components._node import TensorInfo


def test_detach_blocks_the_gradient(make):
    info = TensorInfo((2,), range=(0.0, 1.0))
    comp, ctx = make(OPS["detach"], {}, {"p": info})
    assert comp.infer(ctx) == [info]
    x = torch.tensor([[0.2, 0.4]], requires_grad=True)
    y = comp.build(ctx)(x)
    torch.testing.assert_close(y, x.detach())
    assert not y.requires_grad
    (y.sum() + x.sum()).backward()
    torch.testing.assert_close(x.grad, torch.ones(1, 2))  # only the direct path
