"""term: point_distance — mean over points and batch of scale·‖x̂_j − x_j‖₂ (mean joint error)."""

import re

import pytest
import torch

from latentspec.components._kinds import TERMS
from latentspec.components._node import ShapeError

POINTS = TERMS["point_distance"]


def test_value_is_the_mean_euclidean_distance_per_point(make):
    comp, ctx = make(POINTS, {}, {"pred": (4,), "target": (4,)})
    comp.infer(ctx)
    target = torch.zeros(2, 4)
    pred = torch.tensor([[3.0, 4.0, 0.0, 1.0], [0.0, 0.0, 6.0, 8.0]])  # distances 5, 1 and 0, 10
    assert comp.build(ctx)(pred, target).item() == pytest.approx((5 + 1 + 0 + 10) / 4)


def test_scale_and_dims(make):
    comp, ctx = make(POINTS, {"dims": 3, "scale": 32.0}, {"pred": (6,), "target": (6,)})
    comp.infer(ctx)
    pred = torch.tensor([[1.0, 2.0, 2.0, 0.0, 0.0, 0.0]])  # points (1, 2, 2) and (0, 0, 0)
    assert comp.build(ctx)(pred, torch.zeros(1, 6)).item() == pytest.approx(32 * (3 + 0) / 2)


def test_not_squared_error(make):
    """Unlike mse, doubling every error doubles the term."""
    comp, ctx = make(POINTS, {}, {"pred": (2,), "target": (2,)})
    term = comp.build(ctx)
    target, pred = torch.zeros(5, 2), torch.randn(5, 2)
    assert term(2 * pred, target).item() == pytest.approx(2 * term(pred, target).item(), rel=1e-6)


def test_defaults(make):
    assert POINTS.param("dims").default == 2
    assert POINTS.param("scale").default == 1.0


def test_infer_errors(make):
    comp, ctx = make(POINTS, {}, {"pred": (42,), "target": (40,)})
    with pytest.raises(ShapeError, match=re.escape("point_distance: 'pred' has shape [42] but 'target'")):
        comp.infer(ctx)
    comp, ctx = make(POINTS, {"dims": 2}, {"pred": (5,), "target": (5,)})
    with pytest.raises(ShapeError, match="holds 5 elements per example, not a multiple of dims 2"):
        comp.infer(ctx)
