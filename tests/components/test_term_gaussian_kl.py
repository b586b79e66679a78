"""term: gaussian_kl — KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)."""

import re

import numpy as np
import pytest
import torch

from latentspec.components._kinds import TERMS
from latentspec.components._node import ShapeError

KL = TERMS["gaussian_kl"]


def test_value_matches_numpy_and_torch_distributions(make):
    comp, ctx = make(KL, {}, {"z_mu": (3,), "z_logvar": (3,)})
    comp.infer(ctx)
    mu, logvar = np.array([[0.0, 1.0, -2.0], [0.5, 0.5, 0.5]]), np.array([[0.0, -1.0, 1.0]] * 2)
    expected = (0.5 * (mu**2 + np.exp(logvar) - 1 - logvar)).sum(1).mean()
    got = comp.build(ctx)(torch.tensor(mu), torch.tensor(logvar))
    assert got.dim() == 0 and got.item() == pytest.approx(expected)
    q = torch.distributions.Normal(torch.tensor(mu), torch.tensor(np.exp(0.5 * logvar)))
    ref = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(1).mean()
    assert got.item() == pytest.approx(ref.item())


def test_zero_at_the_prior_and_gradient(make):
    comp, ctx = make(KL, {}, {"z_mu": (2,), "z_logvar": (2,)})
    mu, logvar = torch.zeros(4, 2, requires_grad=True), torch.zeros(4, 2, requires_grad=True)
    loss = comp.build(ctx)(mu, logvar)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(mu.grad).all() and torch.isfinite(logvar.grad).all()


def test_infer_error(make):
    comp, ctx = make(KL, {}, {"z_mu": (20,), "z_logvar": (10,)})
    with pytest.raises(ShapeError, match=re.escape("gaussian_kl: 'z_mu' has shape [20]")):
        comp.infer(ctx)
