"""op: reparameterize — z = μ + exp(½ log σ²) ε, with explicit noise ε."""

import re

import pytest
import torch

from latentspec.components._kinds import OPS
from latentspec.components._node import Noise, ShapeError, TensorInfo

REPARAM = OPS["reparameterize"]


def test_value_with_explicit_noise(make):
    comp, ctx = make(REPARAM, {}, {"z_mu": (2,), "z_logvar": (2,)})
    assert comp.infer(ctx) == [TensorInfo((2,))]
    assert comp.noise(ctx) == [Noise("eps", (2,), "normal", 1)]
    assert comp.training_only(ctx) is False
    mu, logvar = torch.tensor([[1.0, -1.0]]), torch.tensor([[0.0, 2 * 0.6931471805599453]])
    eps = torch.tensor([[0.5, 0.5]])
    # σ = exp(½ log σ²) = [1, 2]: z = [1 + 0.5, −1 + 1]
    torch.testing.assert_close(comp.build(ctx)(mu, logvar, eps), torch.tensor([[1.5, 0.0]]))


def test_k_samples_are_grouped_per_example(make):
    comp, ctx = make(REPARAM, {"samples": 3}, {"z_mu": (1,), "z_logvar": (1,)})
    assert comp.noise(ctx) == [Noise("eps", (1,), "normal", 3)]
    mu = torch.tensor([[10.0], [20.0]])
    z = comp.build(ctx)(mu, torch.zeros(2, 1), torch.tensor([[0.0], [1], [2], [0], [1], [2]]))
    torch.testing.assert_close(z.flatten(), torch.tensor([10.0, 11, 12, 20, 21, 22]))


def test_gradient_reaches_mu_and_logvar(make):
    comp, ctx = make(REPARAM, {}, {"z_mu": (3,), "z_logvar": (3,)})
    mu, logvar = torch.zeros(2, 3, requires_grad=True), torch.zeros(2, 3, requires_grad=True)
    comp.build(ctx)(mu, logvar, torch.ones(2, 3)).sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones(2, 3))
    torch.testing.assert_close(logvar.grad, torch.full((2, 3), 0.5))  # ½ σ ε


def test_infer_error_on_mismatched_shapes(make):
    comp, ctx = make(REPARAM, {}, {"z_mu": (20,), "z_logvar": (10,)})
    with pytest.raises(
        ShapeError,
        match=re.escape("reparameterize: mu 'z_mu' has shape [20] but logvar 'z_logvar' has shape [10]"),
    ):
        comp.infer(ctx)


def test_noise_needs_a_known_shape(make):
    comp, ctx = make(REPARAM, {}, {"z_mu": None, "z_logvar": None}, name="draw")
    assert comp.infer(ctx) == [TensorInfo()]
    with pytest.raises(ShapeError, match=re.escape("draw: the shape of 'z_mu' must be known")):
        comp.noise(ctx)
