"""module: conv_encoder — convolutions over images stacked on channels, then flatten/Linear."""

import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentspec.components._kinds import MODULES
from latentspec.components._node import ShapeError, TensorInfo

ENC = MODULES["conv_encoder"]


def test_mnist_features_are_64x7x7(make):
    comp, ctx = make(ENC, {}, {"x": (1, 28, 28)})  # channels [32, 64], k 4, s 2, p 1
    assert comp.infer(ctx) == [TensorInfo((64 * 7 * 7,))]
    assert comp.build(ctx)(torch.rand(2, 1, 28, 28)).shape == (2, 3136)


def test_output_size_follows_the_conv_formula(make):
    # 30 → ⌊(30 + 2 − 5)/3⌋ + 1 = 10 → ⌊(10 + 2 − 5)/3⌋ + 1 = 3
    cfg = {"channels": [4, 6], "kernel": 5, "stride": 3, "padding": 1, "norm": "group"}
    comp, ctx = make(ENC, cfg, {"x": (3, 30, 30)})
    assert comp.infer(ctx) == [TensorInfo((6 * 3 * 3,))]
    assert comp.build(ctx)(torch.rand(2, 3, 30, 30)).shape == (2, 54)


def test_two_images_are_stacked_and_projected(make):
    comp, ctx = make(ENC, {"dim": 42, "norm": "batch"}, {"x": (1, 64, 64), "x_syn": (1, 64, 64)})
    assert comp.infer(ctx) == [TensorInfo((42,))]
    enc = comp.build(ctx)
    assert enc.convs[0].in_channels == 2
    x = torch.rand(3, 1, 64, 64, requires_grad=True)
    p = enc(x, torch.rand(3, 1, 64, 64))
    assert p.shape == (3, 42)
    p.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_value_of_a_sum_pooling_layer(make):
    cfg = {"channels": [1], "kernel": 2, "stride": 2, "padding": 0, "activation": "none"}
    comp, ctx = make(ENC, cfg, {"x": (1, 4, 4)})
    enc = comp.build(ctx)
    with torch.no_grad():
        enc.convs[0].weight.fill_(1.0), enc.convs[0].bias.zero_()
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    # 2×2 block sums of [[0..3], [4..7], [8..11], [12..15]]
    torch.testing.assert_close(enc(x), torch.tensor([[10.0, 18.0, 42.0, 50.0]]))


def test_unknown_shape_gives_unknown_features_unless_dim(make):
    comp, ctx = make(ENC, {}, {"x": None})
    assert comp.infer(ctx) == [TensorInfo()]
    comp, ctx = make(ENC, {"dim": 8}, {"x": None})
    assert comp.infer(ctx) == [TensorInfo((8,))]


@pytest.mark.parametrize(
    ("cfg", "inputs", "message"),
    [
        ({}, {"x": (784,)}, "conv_encoder expects images (C, H, W), got shape [784] for 'x'"),
        (
            {},
            {"x": (1, 64, 64), "y": (1, 32, 32)},
            "conv_encoder inputs must share H and W to stack, got [1, 64, 64] for 'x', [1, 32, 32] for 'y'",
        ),
        (
            {"channels": [8, 8, 8, 8]},
            {"x": (1, 8, 8)},
            "conv_encoder: input 8x8 is too small for 4 conv layers (kernel 4, stride 2, padding 1)",
        ),
    ],
)
def test_infer_errors(make, cfg, inputs, message):
    comp, ctx = make(ENC, cfg, inputs)
    with pytest.raises(ShapeError, match=re.escape(message)):
        comp.infer(ctx)


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    size=st.tuples(st.integers(4, 40), st.integers(4, 40)),
    layers=st.integers(1, 3),
    kernel=st.integers(1, 5),
    stride=st.integers(1, 3),
    padding=st.integers(0, 2),
)
def test_inferred_size_is_the_real_size(make, size, layers, kernel, stride, padding):
    cfg = {"channels": [2] * layers, "kernel": kernel, "stride": stride, "padding": padding}
    comp, ctx = make(ENC, cfg, {"x": (1, *size)})
    convs = torch.nn.Sequential(
        *(torch.nn.Conv2d(1 if i == 0 else 2, 2, kernel, stride, padding) for i in range(layers))
    )
    try:
        (info,) = comp.infer(ctx)
    except ShapeError:
        with pytest.raises(RuntimeError):  # torch agrees: the image is too small
            convs(torch.zeros(1, 1, *size))
        return
    assert convs(torch.zeros(1, 1, *size)).flatten(1).shape[1:] == info.shape
    assert comp.build(ctx)(torch.zeros(1, 1, *size)).shape[1:] == info.shape
