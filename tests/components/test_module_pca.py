"""module: pca — c = (flatten(x) − m) Vᵀ [/ s], fitted by SVD; inverse(c) = c V + m."""

import re

import numpy as np
import pytest
import torch

from latentspec.components._kinds import MODULES
from latentspec.components._node import ShapeError, TensorInfo

PCA = MODULES["pca"]


def _data(n=200):
    g = torch.Generator().manual_seed(1)
    basis = torch.randn(2, 6, generator=g)
    coeff = torch.randn(n, 2, generator=g) * torch.tensor([3.0, 1.0])
    return (coeff @ basis + torch.arange(6.0)).reshape(n, 1, 2, 3)  # rank-2 data + offset


def test_fit_matches_numpy_svd_with_deterministic_sign(make):
    comp, ctx = make(PCA, {"dim": 2}, {"x": (1, 2, 3)})
    assert comp.infer(ctx) == [TensorInfo((2,))]
    pca = comp.build(ctx)
    x = _data()
    pca.fit(x)
    a = x.flatten(1).double().numpy()
    _, s, vh = np.linalg.svd(a - a.mean(0), full_matrices=False)
    for v, got in zip(vh[:2], pca.components.double().numpy(), strict=True):
        v = v * np.sign(v[np.abs(v).argmax()])
        np.testing.assert_allclose(got, v, atol=1e-5)
        assert got[np.abs(got).argmax()] > 0
    np.testing.assert_allclose(pca.mean.numpy(), a.mean(0), atol=1e-5)
    np.testing.assert_allclose(pca.scale.numpy(), s[:2] / np.sqrt(len(a) - 1), rtol=1e-5)


def test_code_and_inverse_round_trip_in_the_subspace(make):
    assert PCA.methods == ("inverse",)  # usable as `use: pca, method: inverse`
    comp, ctx = make(PCA, {"dim": 2}, {"x": (1, 2, 3)})
    pca = comp.build(ctx)
    x = _data()
    pca.fit(x)
    code = pca(x)
    assert code.shape == (200, 2)
    torch.testing.assert_close(pca.inverse(code), x, atol=1e-4, rtol=1e-4)


def test_whitened_codes_have_unit_variance(make):
    comp, ctx = make(PCA, {"dim": 2, "whiten": True}, {"x": (1, 2, 3)})
    pca = comp.build(ctx)
    x = _data()
    pca.fit(x)
    code = pca(x)
    torch.testing.assert_close(code.std(0), torch.ones(2), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(pca.inverse(code), x, atol=1e-4, rtol=1e-4)


def test_unfitted_buffers_and_gradient(make):
    comp, ctx = make(PCA, {"dim": 2}, {"x": (3,)})
    pca = comp.build(ctx)
    assert sorted(pca.state_dict()) == ["components", "mean", "scale"]
    assert list(pca.parameters()) == []
    x = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    torch.testing.assert_close(pca(x), torch.tensor([[1.0, 2.0]]))  # V = I, m = 0
    pca(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([[1.0, 1.0, 0.0]]))


def test_fit_needs_enough_examples(make):
    comp, ctx = make(PCA, {"dim": 4}, {"x": (6,)})
    with pytest.raises(ValueError, match=re.escape("pca.fit needs at least 4 examples")):
        comp.build(ctx).fit(torch.randn(3, 6))


def test_infer_error_when_dim_exceeds_features(make):
    comp, ctx = make(PCA, {"dim": 10}, {"x": (1, 2, 3)})
    with pytest.raises(
        ShapeError,
        match=re.escape("pca: dim 10 is more than the 6 features of 'x' (shape [1, 2, 3])"),
    ):
        comp.infer(ctx)
