"""module: gaussian_head — (μ, log σ²) = (W_μ h + b_μ, W_v h + b_v)."""

import re

import pytest
import torch

from latentspec.components._kinds import MODULES
from latentspec.components._node import LatentInfo, ShapeError, TensorInfo

HEAD = MODULES["gaussian_head"]
Z = LatentInfo("z", 20)


def test_size_from_latent_and_parameter_names(make):
    comp, ctx = make(HEAD, {"latent": "z"}, {"h": (400,)}, ("z_mu", "z_logvar"), [Z])
    assert comp.infer(ctx) == [TensorInfo((20,)), TensorInfo((20,))]
    head = comp.build(ctx)
    assert sorted(n for n, _ in head.named_parameters()) == [
        "logvar.bias",
        "logvar.weight",
        "mu.bias",
        "mu.weight",
    ]
    mu, logvar = head(torch.randn(3, 400))
    assert mu.shape == logvar.shape == (3, 20)


def test_values_are_two_linear_maps(make):
    comp, ctx = make(HEAD, {"dim": 1}, {"h": (2,)})
    head = comp.build(ctx)
    with torch.no_grad():
        head.mu.weight.copy_(torch.tensor([[1.0, 2.0]])), head.mu.bias.fill_(1.0)
        head.logvar.weight.copy_(torch.tensor([[0.0, -1.0]])), head.logvar.bias.zero_()
    mu, logvar = head(torch.tensor([[3.0, 4.0]]))
    torch.testing.assert_close(mu, torch.tensor([[12.0]]))
    torch.testing.assert_close(logvar, torch.tensor([[-4.0]]))
    h = torch.randn(2, 2, requires_grad=True)
    sum(t.sum() for t in head(h)).backward()
    assert torch.isfinite(h.grad).all()


@pytest.mark.parametrize(
    ("cfg", "shape", "message"),
    [
        (
            {"latent": "z"},
            (64, 7, 7),
            "gaussian_head expects a flat input, got shape [64, 7, 7] for 'h'",
        ),
        ({}, (400,), "gaussian_head needs exactly one of `latent` or `dim`, got neither"),
        (
            {"latent": "z", "dim": 20},
            (400,),
            "gaussian_head needs exactly one of `latent` or `dim`, got both",
        ),
        ({"latent": "w"}, (400,), "gaussian_head: unknown latent 'w'; declared latents: ['z']"),
    ],
)
def test_infer_errors(make, cfg, shape, message):
    comp, ctx = make(HEAD, cfg, {"h": shape}, latents=[Z])
    with pytest.raises(ShapeError, match=re.escape(message)):
        comp.infer(ctx)


def test_unknown_input_shape(make):
    comp, ctx = make(HEAD, {"dim": 5}, {"h": None})
    assert comp.infer(ctx) == [TensorInfo((5,)), TensorInfo((5,))]
