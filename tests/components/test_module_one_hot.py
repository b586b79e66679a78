"""module: one_hot — y_j = [c = j] (no parameters)."""

import re

import pytest
import torch

from latentspec.components._kinds import MODULES
from latentspec.components._node import ShapeError, TensorInfo

ONE_HOT = MODULES["one_hot"]


def test_value_and_info(make):
    assert ONE_HOT.has_params is False
    comp, ctx = make(ONE_HOT, {}, {"c": TensorInfo((), "int64", classes=4)})
    assert comp.infer(ctx) == [TensorInfo((4,), range=(0.0, 1.0))]
    out = comp.build(ctx)(torch.tensor([2, 0]))
    torch.testing.assert_close(out, torch.tensor([[0.0, 0, 1, 0], [1, 0, 0, 0]]))
    assert list(comp.build(ctx).parameters()) == []


def test_classes_param(make):
    comp, ctx = make(ONE_HOT, {"classes": 3}, {"c": TensorInfo((2,), "int64")})
    assert comp.infer(ctx) == [TensorInfo((2, 3), range=(0.0, 1.0))]
    assert comp.build(ctx)(torch.tensor([[0, 2]])).shape == (1, 2, 3)


def test_infer_error_on_float_input(make):
    comp, ctx = make(ONE_HOT, {"classes": 3}, {"x": (1,)})
    with pytest.raises(ShapeError, match=re.escape("one_hot expects an int64 class tensor")):
        comp.infer(ctx)
