"""term: iwae_bound — −mean_b [logsumexp_i (log p(x|z_i) + log p(z_i) − log q(z_i|x)) − log k]."""

import math
import re

import numpy as np
import pytest
import torch
from torch.distributions import Normal

from latentspec.components._kinds import TERMS
from latentspec.components._node import ShapeError

IWAE = TERMS["iwae_bound"]
INPUTS = {"x_logits": (4,), "x": (4,), "z": (2,), "z_mu": (2,), "z_logvar": (2,)}


def _bce(logits, x):
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)


def test_k1_is_the_single_sample_elbo_for_a_fixed_z(make):
    comp, ctx = make(IWAE, {"samples": 1}, INPUTS)
    comp.infer(ctx)
    x, logits = torch.rand(3, 4).round(), torch.randn(3, 4)
    mu, logvar, z = torch.randn(3, 2), torch.randn(3, 2), torch.randn(3, 2)
    log_q = Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(1)
    log_p = Normal(0.0, 1.0).log_prob(z).sum(1)
    expected = (_bce(logits, x) + log_q - log_p).mean()
    torch.testing.assert_close(comp.build(ctx)(logits, x, z, mu, logvar), expected)


def test_k1_equals_bernoulli_nll_plus_gaussian_kl_in_expectation(make):
    comp, ctx = make(IWAE, {"samples": 1}, INPUTS)
    n = 20000  # one example, n posterior draws; the decoder ignores z
    x, logits = (
        torch.tensor([[1.0, 0, 1, 0]]).expand(n, 4),
        torch.tensor([[0.5, -1, 2, 0]]).expand(n, 4),
    )
    mu, logvar = torch.tensor([[0.5, -1.0]]).expand(n, 2), torch.tensor([[0.0, -1.0]]).expand(n, 2)
    z = mu + (0.5 * logvar).exp() * torch.randn(n, 2)
    bound = comp.build(ctx)(logits, x, z, mu, logvar)
    nll = make(TERMS["bernoulli_nll"], {}, {"a": (4,), "b": (4,)})
    kl = make(TERMS["gaussian_kl"], {}, {"a": (2,), "b": (2,)})
    expected = nll[0].build(nll[1])(logits, x) + kl[0].build(kl[1])(mu, logvar)
    assert bound.item() == pytest.approx(expected.item(), abs=0.03)


def test_k2_matches_numpy(make):
    comp, ctx = make(IWAE, {"samples": 2}, INPUTS)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (2, 4)).astype(float)  # B = 2
    logits, z = rng.normal(size=(4, 4)), rng.normal(size=(4, 2))  # B·k = 4, grouped per example
    mu, logvar = rng.normal(size=(2, 2)), rng.normal(size=(2, 2))
    log_w = np.zeros((2, 2))
    for b in range(2):
        for i in range(2):
            row = 2 * b + i
            p = 1 / (1 + np.exp(-logits[row]))
            log_px = (x[b] * np.log(p) + (1 - x[b]) * np.log(1 - p)).sum()
            log_pz = (-0.5 * z[row] ** 2 - 0.5 * math.log(2 * math.pi)).sum()
            var = np.exp(logvar[b])
            log_qz = (-0.5 * (z[row] - mu[b]) ** 2 / var - 0.5 * np.log(2 * math.pi * var)).sum()
            log_w[b, i] = log_px + log_pz - log_qz
    m = log_w.max(1, keepdims=True)
    expected = -(m[:, 0] + np.log(np.exp(log_w - m).sum(1)) - math.log(2)).mean()
    args = [torch.tensor(a) for a in (logits, x, z, mu, logvar)]
    assert comp.build(ctx)(*args).item() == pytest.approx(expected)


def test_gaussian_likelihood_and_gradient(make):
    comp, ctx = make(IWAE, {"samples": 3, "likelihood": "gaussian", "variance": 0.5}, INPUTS)
    x, mean = torch.randn(2, 4), torch.randn(6, 4, requires_grad=True)
    mu = torch.randn(2, 2, requires_grad=True)
    z = mu.detach().repeat_interleave(3, 0) + torch.randn(6, 2)
    loss = comp.build(ctx)(mean, x, z, mu, torch.zeros(2, 2))
    log_w = (
        Normal(mean, 0.5**0.5).log_prob(x.repeat_interleave(3, 0)).sum(1)
        + Normal(0.0, 1.0).log_prob(z).sum(1)
        - Normal(mu.repeat_interleave(3, 0), 1.0).log_prob(z).sum(1)
    ).reshape(2, 3)
    torch.testing.assert_close(loss, -(log_w.logsumexp(1) - math.log(3)).mean())
    loss.backward()
    assert torch.isfinite(mean.grad).all() and torch.isfinite(mu.grad).all()


def test_infer_errors(make):
    comp, ctx = make(IWAE, {"samples": 5}, {**INPUTS, "z_logvar": (3,)})
    with pytest.raises(ShapeError, match=re.escape("iwae_bound: 'z' has shape [2] but 'z_logvar'")):
        comp.infer(ctx)
    comp, ctx = make(IWAE, {"samples": 5}, {**INPUTS, "x": (5,)})
    with pytest.raises(ShapeError, match=re.escape("iwae_bound: 'x_logits' has shape [4]")):
        comp.infer(ctx)
