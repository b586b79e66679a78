"""term: cross_entropy — mean_b −log softmax(ℓ)_y (probes and classifiers)."""

import re

import numpy as np
import pytest
import torch

from latentspec.components._kinds import TERMS
from latentspec.components._node import ShapeError, TensorInfo

CE = TERMS["cross_entropy"]
Y = TensorInfo((), "int64", classes=3)


def test_value_matches_numpy(make):
    comp, ctx = make(CE, {}, {"logits": (3,), "y": Y})
    comp.infer(ctx)
    logits = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]])
    y = np.array([1, 0])
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = -log_softmax[np.arange(2), y].mean()
    t = torch.tensor(logits, requires_grad=True)
    loss = comp.build(ctx)(t, torch.tensor(y))
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    assert torch.isfinite(t.grad).all()


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            {"logits": (3, 2), "y": Y},
            "cross_entropy expects flat logits, got shape [3, 2] for 'logits'",
        ),
        ({"logits": (3,), "y": (1,)}, "cross_entropy expects 'y' to be an int64 class per example"),
        ({"logits": (10,), "y": Y}, "cross_entropy: 'y' has 3 classes but 'logits' has 10 logits"),
    ],
)
def test_infer_errors(make, inputs, message):
    comp, ctx = make(CE, {}, inputs)
    with pytest.raises(ShapeError, match=re.escape(message)):
        comp.infer(ctx)
