"""term: laplacian_l1 — Σ_j w_j · mean |L^j(x̂) − L^j(x)| over a Laplacian pyramid (GLO)."""

import re

import pytest
import torch

from latentspec.components._kinds import TERMS
from latentspec.components._node import ShapeError

LAP = TERMS["laplacian_l1"]
IMAGES = {"x_hat": (1, 28, 28), "x": (1, 28, 28)}


def test_constant_error_lives_in_the_coarsest_level(make):
    comp, ctx = make(LAP, {}, IMAGES)  # levels 3, default weights 1 each: the paper's pixel-sum balance
    comp.infer(ctx)
    lap = comp.build(ctx)
    x = torch.rand(2, 1, 28, 28)
    assert lap(x + 0.5, x).item() == pytest.approx(0.5, rel=1e-5)
    comp, ctx = make(LAP, {"weights": [1.0, 4.0, 16.0]}, IMAGES)  # 2^(2j) on the level means
    assert comp.build(ctx)(x + 0.5, x).item() == pytest.approx(16 * 0.5, rel=1e-5)
    comp, ctx = make(LAP, {"weights": [1.0, 1.0, 0.0]}, IMAGES)
    assert comp.build(ctx)(x + 0.5, x).item() == pytest.approx(0.0, abs=1e-5)


def test_one_level_is_the_mean_absolute_error(make):
    comp, ctx = make(LAP, {"levels": 1}, IMAGES)
    pred, target = torch.rand(3, 1, 28, 28), torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(comp.build(ctx)(pred, target), (pred - target).abs().mean())


def test_pyramid_shapes_and_reconstruction(make):
    comp, ctx = make(LAP, {}, IMAGES)
    lap = comp.build(ctx)
    x = torch.rand(2, 3, 28, 28)
    levels = lap.pyramid(x)
    assert [tuple(lv.shape[-2:]) for lv in levels] == [(28, 28), (14, 14), (7, 7)]
    up = torch.nn.functional.interpolate
    rebuilt = levels[2]
    for level in (levels[1], levels[0]):
        rebuilt = level + up(rebuilt, size=level.shape[-2:], mode="bilinear", align_corners=False)
    torch.testing.assert_close(rebuilt, x)


def test_gradient_reaches_the_prediction(make):
    comp, ctx = make(LAP, {}, {"x_hat": (784,), "x": (1, 28, 28)})
    comp.infer(ctx)
    pred = torch.rand(2, 784, requires_grad=True)
    comp.build(ctx)(pred, torch.rand(2, 1, 28, 28)).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("cfg", "inputs", "message"),
    [
        (
            {},
            {"x_hat": (784,), "x": (784,)},
            "laplacian_l1 expects images (C, H, W), got shape [784] for 'x'",
        ),
        (
            {"levels": 4},
            {"x_hat": (1, 4, 4), "x": (1, 4, 4)},
            "laplacian_l1: images 4x4 are too small for 4 levels (need at least 8 pixels a side)",
        ),
        ({"weights": [1.0, 2.0]}, IMAGES, "laplacian_l1: 2 weights for 3 levels"),
    ],
)
def test_infer_errors(make, cfg, inputs, message):
    comp, ctx = make(LAP, cfg, inputs)
    with pytest.raises(ShapeError, match=re.escape(message)):
        comp.infer(ctx)
