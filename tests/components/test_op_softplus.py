"""op: softplus — y = log(1 + e^x)."""

import math

import torch

from latentspec.components._kinds import OPS
from latentspec.components._node import TensorInfo


def test_softplus(make):
    comp, ctx = make(OPS["softplus"], {}, {"x": (2,)})
    assert comp.infer(ctx) == [TensorInfo((2,))]
    y = comp.build(ctx)(torch.tensor([[0.0, 1.0]]))
    torch.testing.assert_close(y, torch.tensor([[math.log(2), math.log(1 + math.e)]]))
