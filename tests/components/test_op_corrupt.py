"""op: corrupt — denoising-autoencoder corruptions (Vincent et al. 2010)."""

import re

import pytest
import torch

from latentspec.components._kinds import OPS
from latentspec.components._node import Noise, ShapeError, TensorInfo

CORRUPT = OPS["corrupt"]
X = TensorInfo((4,), range=(0.0, 1.0))


def test_gaussian_adds_sigma_eps(make):
    comp, ctx = make(CORRUPT, {"kind": "gaussian", "level": 0.5}, {"x": X})
    assert comp.infer(ctx) == [TensorInfo((4,))]  # the range is lost
    assert comp.noise(ctx) == [Noise("eps", (4,), "normal")]
    x, eps = torch.tensor([[0.0, 0.5, 1.0, 1.0]]), torch.tensor([[1.0, -1.0, 2.0, 0.0]])
    torch.testing.assert_close(comp.build(ctx)(x, eps), torch.tensor([[0.5, 0.0, 2.0, 1.0]]))


def test_masking_zeroes_where_u_below_nu(make):
    comp, ctx = make(CORRUPT, {"kind": "masking", "level": 0.25}, {"x": X})
    assert comp.infer(ctx) == [X]
    assert comp.noise(ctx) == [Noise("u", (4,), "uniform")]
    x, u = torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([[0.1, 0.3, 0.2, 0.9]])
    torch.testing.assert_close(comp.build(ctx)(x, u), torch.tensor([[0.0, 2.0, 0.0, 4.0]]))


def test_masking_removes_the_fraction_nu(make):
    comp, ctx = make(CORRUPT, {"kind": "masking", "level": 0.3}, {"x": (1000,)})
    out = comp.build(ctx)(torch.ones(4, 1000), torch.rand(4, 1000))
    assert abs((out == 0).float().mean().item() - 0.3) < 0.03


def test_salt_and_pepper(make):
    cfg = {"kind": "salt_pepper", "level": 0.5, "low": -1.0, "high": 2.0}
    comp, ctx = make(CORRUPT, cfg, {"x": X})
    assert comp.noise(ctx) == [Noise("u", (4,), "uniform"), Noise("v", (4,), "uniform")]
    x = torch.tensor([[0.5, 0.5, 0.5, 0.5]], requires_grad=True)
    u, v = torch.tensor([[0.1, 0.2, 0.7, 0.9]]), torch.tensor([[0.3, 0.8, 0.3, 0.8]])
    out = comp.build(ctx)(x, u, v)
    torch.testing.assert_close(out, torch.tensor([[-1.0, 2.0, 0.5, 0.5]]))
    out.sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([[0.0, 0.0, 1.0, 1.0]]))


def test_training_only_unless_exported(make):
    comp, ctx = make(CORRUPT, {"kind": "gaussian", "level": 0.1}, {"x": X})
    assert comp.training_only(ctx) is True
    comp, ctx = make(CORRUPT, {"kind": "gaussian", "level": 0.1, "export": True}, {"x": X})
    assert comp.training_only(ctx) is False


def test_infer_error_on_fraction_above_one(make):
    comp, ctx = make(CORRUPT, {"kind": "masking", "level": 1.5}, {"x": X})
    with pytest.raises(ShapeError, match=re.escape("corrupt: masking level is a fraction in [0, 1], got 1.5")):
        comp.infer(ctx)
