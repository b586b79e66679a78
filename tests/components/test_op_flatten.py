"""op: flatten — (B, *S) → (B, ∏S)."""

import torch

from latentspec.components._kinds import OPS
from latentspec.components._node import TensorInfo


def test_flatten(make):
    comp, ctx = make(OPS["flatten"], {}, {"h": TensorInfo((64, 7, 7), range=(0.0, 1.0))})
    assert comp.infer(ctx) == [TensorInfo((3136,), range=(0.0, 1.0))]
    x = torch.arange(24.0).reshape(2, 3, 2, 2)
    torch.testing.assert_close(comp.build(ctx)(x), x.reshape(2, 12))
    comp, ctx = make(OPS["flatten"], {}, {"h": None})
    assert comp.infer(ctx) == [TensorInfo()]
