"""op: tanh — y = tanh(x), range (−1, 1)."""

import torch

from latentspec.components._kinds import OPS
from latentspec.components._node import TensorInfo


def test_tanh(make):
    comp, ctx = make(OPS["tanh"], {}, {"x": (3,)})
    assert comp.infer(ctx) == [TensorInfo((3,), range=(-1.0, 1.0))]
    x = torch.tensor([[0.0, 1.0, -2.0]])
    torch.testing.assert_close(comp.build(ctx)(x), torch.tanh(x))
