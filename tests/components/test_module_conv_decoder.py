"""module: conv_decoder — up-convolutional decoder (Dosovitskiy et al. 2015)."""

import re

import pytest
import torch

from latentspec.components._kinds import MODULES
from latentspec.components._node import ShapeError, TensorInfo
from latentspec.nn.modules import Unpool2d

DEC = MODULES["conv_decoder"]


def test_mnist_layout_7_14_28(make):
    comp, ctx = make(DEC, {"shape": [1, 28, 28], "channels": [64, 32]}, {"z": (20,)})
    assert comp.infer(ctx) == [TensorInfo((1, 28, 28))]
    dec = comp.build(ctx)
    z = torch.randn(2, 20)
    h = dec.fc(dec.inputs(z))
    assert h.shape == (2, 64, 7, 7)
    assert dec.up[0](h).shape == (2, 32, 14, 14)
    assert dec(z).shape == (2, 1, 28, 28)


@pytest.mark.parametrize(("upsample", "kernel"), [("transposed", 4), ("nearest", 3), ("unpool", 5)])
def test_each_upsample_doubles_exactly(make, upsample, kernel):
    cfg = {"shape": [3, 32, 16], "channels": [8, 4, 4], "upsample": upsample, "norm": "batch"}
    comp, ctx = make(DEC, cfg, {"h": (10,)})
    dec = comp.build(ctx)
    z = torch.randn(2, 10, requires_grad=True)
    x = dec(z)
    assert x.shape == (2, 3, 32, 16)
    convs = [m for m in dec.up.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)]
    assert convs[0].kernel_size == (kernel, kernel)
    x.sum().backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_odd_transposed_kernel_keeps_exact_doubling(make):
    comp, ctx = make(DEC, {"shape": [1, 8, 8], "channels": [4], "kernel": 3}, {"z": (2,)})
    assert comp.build(ctx)(torch.randn(1, 2)).shape == (1, 1, 8, 8)


def test_unpool_inserts_zeros_top_left():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    expected = torch.tensor([[[[1.0, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]]])
    torch.testing.assert_close(Unpool2d()(x), expected)


def test_out_activation_and_several_inputs(make):
    cfg = {"shape": [4, 32, 32], "out_activation": "sigmoid"}
    comp, ctx = make(DEC, cfg, {"hc": (256,), "hv": (256,)})
    assert comp.infer(ctx) == [TensorInfo((4, 32, 32), range=(0.0, 1.0))]
    y = comp.build(ctx)(torch.randn(2, 256), torch.randn(2, 256))
    assert y.shape == (2, 4, 32, 32) and ((y > 0) & (y < 1)).all()


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (
            {"shape": [1, 30, 30], "channels": [64, 32]},
            "conv_decoder: shape [1, 30, 30] is not divisible by 2^2 (2 up-blocks for channels "
            "[64, 32]); use H and W divisible by 4, or fewer channels",
        ),
        ({"shape": [28, 28]}, "conv_decoder: shape must be [C, H, W], got [28, 28]"),
        (
            {"shape": [1, 28, 28], "upsample": "nearest", "kernel": 4},
            "conv_decoder: upsample nearest needs an odd kernel, got 4",
        ),
        ({"shape": [1, 28, 28], "channels": []}, "conv_decoder needs at least one entry"),
    ],
)
def test_infer_errors(make, cfg, message):
    comp, ctx = make(DEC, cfg, {"z": (20,)})
    with pytest.raises(ShapeError, match=re.escape(message)):
        comp.infer(ctx)
