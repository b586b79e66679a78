"""op: warp — random smooth affine + elastic warp of images (training only)."""

import re

import pytest
import torch

from latentspec.components._kinds import OPS
from latentspec.components._node import Noise, ShapeError, TensorInfo

WARP = OPS["warp"]


def test_zero_noise_is_the_identity(make):
    comp, ctx = make(WARP, {"elastic": 0.1, "grid": 3}, {"x_a": (3, 8, 8)})
    assert comp.infer(ctx) == [TensorInfo((3, 8, 8))]
    assert comp.noise(ctx) == [
        Noise("eps", (6,), "normal"),
        Noise("eps_field", (2, 3, 3), "normal"),
    ]
    assert comp.training_only(ctx) is True
    x = torch.rand(2, 3, 8, 8)
    out = comp.build(ctx)(x, torch.zeros(2, 6), torch.zeros(2, 2, 3, 3))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=1e-5)


def test_affine_noise_translates(make):
    comp, ctx = make(WARP, {"strength": 1.0}, {"x": (1, 4, 4)})
    assert comp.noise(ctx) == [Noise("eps", (6,), "normal")]
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    # θ = [[1, 0, 0.5], [0, 1, 0]]: read ¼ of the width (one pixel) to the right; border pad
    shift = torch.tensor([[0.0, 0.0, 0.5, 0.0, 0.0, 0.0]])
    expected = torch.tensor([[1.0, 2.0, 3.0, 3.0]]) + torch.tensor([[0.0], [4.0], [8.0], [12.0]])
    torch.testing.assert_close(comp.build(ctx)(x, shift)[0, 0], expected)


def test_gradient_reaches_the_image(make):
    comp, ctx = make(WARP, {}, {"x": (1, 8, 8)})
    x = torch.rand(2, 1, 8, 8, requires_grad=True)
    comp.build(ctx)(x, torch.randn(2, 6)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_infer_error_on_flat_input(make):
    comp, ctx = make(WARP, {}, {"x": (784,)})
    with pytest.raises(ShapeError, match=re.escape("warp expects images (C, H, W), got shape [784] for 'x'")):
        comp.infer(ctx)
