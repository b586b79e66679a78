"""op: concat — concatenation along a per-example axis (default 0: features / channels)."""

import re

import pytest
import torch

from latentspec.components._kinds import OPS
from latentspec.components._node import ShapeError, TensorInfo

CONCAT = OPS["concat"]


def test_features(make):
    comp, ctx = make(CONCAT, {}, {"hc": (2,), "hv": (1,), "ht": (3,)})
    assert comp.infer(ctx) == [TensorInfo((6,))]
    a, b, c = torch.tensor([[1.0, 2]]), torch.tensor([[3.0]]), torch.tensor([[4.0, 5, 6]])
    torch.testing.assert_close(comp.build(ctx)(a, b, c), torch.tensor([[1.0, 2, 3, 4, 5, 6]]))


def test_channels_and_negative_dim(make):
    comp, ctx = make(CONCAT, {}, {"x": (1, 4, 4), "y": (2, 4, 4)})
    assert comp.infer(ctx) == [TensorInfo((3, 4, 4))]
    assert comp.build(ctx)(torch.zeros(5, 1, 4, 4), torch.zeros(5, 2, 4, 4)).shape == (5, 3, 4, 4)
    comp, ctx = make(CONCAT, {"dim": -1}, {"x": (1, 4, 4), "y": (1, 4, 2)})
    assert comp.infer(ctx) == [TensorInfo((1, 4, 6))]
    assert comp.build(ctx)(torch.zeros(5, 1, 4, 4), torch.zeros(5, 1, 4, 2)).shape == (5, 1, 4, 6)


def test_single_input_and_unknown(make):
    comp, ctx = make(CONCAT, {}, {"x": (3,)})
    assert comp.infer(ctx) == [TensorInfo((3,))]
    comp, ctx = make(CONCAT, {}, {"x": (3,), "y": None})
    assert comp.infer(ctx) == [TensorInfo()]


@pytest.mark.parametrize(
    ("cfg", "inputs", "message"),
    [
        (
            {},
            {"x": (1, 4, 4), "y": (1, 4, 5)},
            "concat: 'y' has shape [1, 4, 5] but 'x' has shape [1, 4, 4]; all axes but dim 0 must match",
        ),
        ({"dim": 1}, {"x": (3,), "y": (3,)}, "concat: dim 1 is out of range for shape [3]"),
    ],
)
def test_infer_errors(make, cfg, inputs, message):
    comp, ctx = make(CONCAT, cfg, inputs)
    with pytest.raises(ShapeError, match=re.escape(message)):
        comp.infer(ctx)
