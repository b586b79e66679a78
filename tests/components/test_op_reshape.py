"""op: reshape — (B, *S) → (B, *shape)."""

import re

import pytest
import torch

from latentspec.components._kinds import OPS
from latentspec.components._node import ShapeError, TensorInfo

RESHAPE = OPS["reshape"]


def test_reshape(make):
    comp, ctx = make(RESHAPE, {"shape": [1, 28, 28]}, {"x": (784,)})
    assert comp.infer(ctx) == [TensorInfo((1, 28, 28))]
    x = torch.arange(2 * 784.0).reshape(2, 784)
    torch.testing.assert_close(comp.build(ctx)(x), x.reshape(2, 1, 28, 28))


def test_infer_error_on_element_count(make):
    comp, ctx = make(RESHAPE, {"shape": [780]}, {"x": (1, 28, 28)})
    message = "reshape: cannot reshape [1, 28, 28] (784 elements) to [780] (780 elements)"
    with pytest.raises(ShapeError, match=re.escape(message)):
        comp.infer(ctx)
