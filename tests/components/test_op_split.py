"""op: split — pieces of ``sizes`` along a per-example axis, one output each."""

import re

import pytest
import torch

from latentspec.components._kinds import OPS
from latentspec.components._node import ShapeError, TensorInfo

SPLIT = OPS["split"]


def test_rgb_and_mask_channels(make):
    comp, ctx = make(SPLIT, {"sizes": [3, 1]}, {"y": (4, 8, 8)}, ("x_hat", "m_hat"))
    assert comp.infer(ctx) == [TensorInfo((3, 8, 8)), TensorInfo((1, 8, 8))]
    y = torch.randn(2, 4, 8, 8)
    rgb, mask = comp.build(ctx)(y)
    torch.testing.assert_close(rgb, y[:, :3])
    torch.testing.assert_close(mask, y[:, 3:])


def test_last_axis(make):
    comp, ctx = make(SPLIT, {"sizes": [1, 2], "dim": -1}, {"p": (4, 3)}, ("a", "b"))
    assert comp.infer(ctx) == [TensorInfo((4, 1)), TensorInfo((4, 2))]
    a, b = comp.build(ctx)(torch.zeros(2, 4, 3))
    assert a.shape == (2, 4, 1) and b.shape == (2, 4, 2)


def test_unknown_shape(make):
    comp, ctx = make(SPLIT, {"sizes": [1, 2]}, {"p": None}, ("a", "b"))
    assert comp.infer(ctx) == [TensorInfo(), TensorInfo()]


@pytest.mark.parametrize(
    ("cfg", "outputs", "message"),
    [
        (
            {"sizes": [3, 1], "dim": 1},
            ("x_hat", "m_hat"),
            "split: sizes [3, 1] sum to 4 but axis 1 of [4, 32, 32] has size 32 (dim counts "
            "per-example axes: 0 is the first axis after the batch)",
        ),
        (
            {"sizes": [3, 1]},
            ("x_hat",),
            "split: 2 sizes [3, 1] but 1 outputs ['x_hat']; give one output per size",
        ),
    ],
)
def test_infer_errors(make, cfg, outputs, message):
    comp, ctx = make(SPLIT, cfg, {"y": (4, 32, 32)}, outputs)
    with pytest.raises(ShapeError, match=re.escape(message)):
        comp.infer(ctx)
