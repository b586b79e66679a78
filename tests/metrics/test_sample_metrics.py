"""Sample-quality metrics on feature sets with known answers."""

import numpy as np
import pytest

from latentspec.metrics import (
    frechet_distance,
    frechet_distance_gaussians,
    kernel_inception_distance,
    precision_recall,
    sample_quality,
)


def _gauss(n, d, seed, shift=0.0, scale=1.0):
    return np.random.default_rng(seed).standard_normal((n, d)) * scale + shift


def test_fd_of_a_set_with_itself_is_zero():
    x = _gauss(500, 8, 0)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fd_closed_form_for_gaussians():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    s1, s2 = a @ a.T + np.eye(4), b @ b.T + 0.5 * np.eye(4)
    mu1, mu2 = np.zeros(4), np.array([1.0, -2.0, 0.5, 3.0])
    # for commuting (here diagonal) covariances tr((S1 S2)^½) = Σ sqrt(λ1 λ2); check a general pair
    # against the eigen-decomposition of S1^½ S2 S1^½, which has the same trace of square root
    w, v = np.linalg.eigh(s1)
    r1 = v @ np.diag(np.sqrt(w)) @ v.T
    tr_sqrt = np.sqrt(np.linalg.eigvalsh(r1 @ s2 @ r1)).sum()
    expect = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert frechet_distance_gaussians(mu1, s1, mu2, s2) == pytest.approx(expect, rel=1e-8)


def test_fd_of_shifted_samples_matches_the_shift():
    x, y = _gauss(20000, 3, 2), _gauss(20000, 3, 3, shift=np.array([2.0, 0.0, -1.0]))
    # same covariance: FD = ‖Δμ‖² = 5 (up to sampling error)
    assert frechet_distance(x, y) == pytest.approx(5.0, abs=0.1)


def test_fd_of_scaled_gaussians():
    x, y = _gauss(20000, 2, 4), _gauss(20000, 2, 5, scale=3.0)
    # tr(I + 9I - 2·3I) = 2·(1 + 9 - 6) = 8
    assert frechet_distance(x, y) == pytest.approx(8.0, rel=0.05)


def test_fd_survives_singular_covariances():
    x = np.zeros((100, 4))
    x[:, 0] = np.arange(100.0)  # rank-1 covariance
    y = x + 1.0
    assert frechet_distance(x, y) == pytest.approx(4.0, abs=1e-3)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    x, y = _gauss(600, 8, 6), _gauss(600, 8, 7)
    same, same_std = kernel_inception_distance(x, y, subsets=20, subset_size=300)
    far, _ = kernel_inception_distance(x, y + 1.0, subsets=20, subset_size=300)
    assert abs(same) < 3 * same_std + 1e-3
    assert far > 10 * abs(same) and far > 0.1


def test_kid_of_a_set_with_itself_is_near_zero():
    x = _gauss(300, 4, 8)
    kid, std = kernel_inception_distance(x, x, subsets=10, subset_size=1000)
    assert abs(kid) < 3 * std + 1e-3 and std > 0  # subsets of half the set: they differ


def test_kid_of_identical_subsets_is_never_positive():
    from latentspec.metrics._sample import _poly_kernel

    # with x = y the estimate is 2/(m(m-1)) (1ᵀK1/m − tr K) ≤ 0, as K is positive semi-definite
    x = _gauss(50, 4, 9)
    k = _poly_kernel(x, x)
    m = len(x)
    assert 2 / (m * (m - 1)) * (k.sum() / m - np.trace(k)) <= 0


def test_precision_recall_of_identical_sets_is_one():
    x = _gauss(400, 5, 9)
    assert precision_recall(x, x) == (1.0, 1.0)


def test_precision_recall_see_mode_dropping_and_off_manifold_samples():
    real = _gauss(1000, 2, 10)
    # generated samples that cover only a corner of the real data: precise, poor recall
    corner = real[(real[:, 0] > 0.5) & (real[:, 1] > 0.5)]
    p, r = precision_recall(real, corner)
    assert p > 0.95 and r < 0.4
    # generated samples far from the data: neither
    p, r = precision_recall(real, _gauss(1000, 2, 11, shift=8.0))
    assert p == 0.0 and r == 0.0


def test_sample_quality_reports_every_metric():
    q = sample_quality(_gauss(200, 4, 12), _gauss(150, 4, 13), kid_subsets=5)
    assert set(q) == {"fd", "kid", "kid_std", "precision", "recall", "k", "real", "generated"}
    assert (q["real"], q["generated"], q["k"]) == (200, 150, 3)


@pytest.mark.parametrize(
    "a, b, msg",
    [
        (np.zeros((10, 3)), np.zeros((10, 4)), "same width"),
        (np.zeros((1, 3)), np.zeros((10, 3)), "at least 2"),
        (np.full((10, 3), np.nan), np.zeros((10, 3)), "NaN"),
    ],
)
def test_bad_feature_sets_are_refused(a, b, msg):
    with pytest.raises(ValueError, match=msg):
        frechet_distance(a, b)
