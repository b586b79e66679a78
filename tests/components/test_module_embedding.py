"""module: embedding — y = E[c], a learned vector per class."""

import re

import pytest
import torch

from latentspec.components._kinds import MODULES
from latentspec.components._node import ShapeError, TensorInfo

EMB = MODULES["embedding"]
LABEL = TensorInfo((), "int64", classes=10)


def test_lookup_of_rows(make):
    comp, ctx = make(EMB, {"dim": 3}, {"y": LABEL})
    assert comp.infer(ctx) == [TensorInfo((3,))]
    emb = comp.build(ctx)
    assert emb.weight.shape == (10, 3)
    y = torch.tensor([7, 0, 7])
    out = emb(y)
    torch.testing.assert_close(out, emb.weight[[7, 0, 7]])
    out.sum().backward()
    assert emb.weight.grad[7].eq(2).all() and emb.weight.grad[1].eq(0).all()


def test_classes_param_overrides_unknown_count(make):
    comp, ctx = make(EMB, {"classes": 4, "dim": 2}, {"c": TensorInfo((), "int64")})
    assert comp.build(ctx).weight.shape == (4, 2)


@pytest.mark.parametrize(
    ("cfg", "info", "message"),
    [
        ({"dim": 3}, TensorInfo((1,)), "embedding expects an int64 class tensor, got float32 'y'"),
        (
            {"dim": 3},
            TensorInfo((), "int64"),
            "embedding needs `classes:` (the input 'y' declares no class count)",
        ),
        (
            {"dim": 3, "classes": 5},
            LABEL,
            "embedding: the input 'y' has 10 classes but `classes` is 5",
        ),
    ],
)
def test_infer_errors(make, cfg, info, message):
    comp, ctx = make(EMB, cfg, {"y": info})
    with pytest.raises(ShapeError, match=re.escape(message)):
        comp.infer(ctx)
