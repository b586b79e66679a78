"""Sample quality from features: Fréchet distance, kernel inception distance, precision/recall.

All three compare two sets of feature vectors (N, D): features of real images and of generated
ones, taken from a network trained on the data (the Inception network of the original papers is
replaced by a run the user trains, so nothing is downloaded). numpy/scipy/scikit-learn only.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg


def _check(a: np.ndarray, b: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"{name}: expects two (N, D) feature arrays of the same width, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"{name}: needs at least 2 vectors per set, got {len(a)} and {len(b)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(f"{name}: the features hold NaN or infinite values")
    return a, b


def frechet_distance_gaussians(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """d² = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½), the Fréchet (2-Wasserstein) distance between two
    Gaussians (Dowson & Landau 1982; FID, Heusel et al. 2017).

    As in the reference implementations (pytorch-fid, TTUR): when the product is singular (scipy
    warns) or sqrtm returns non-finite values, retry with ε·I added to both covariances; a complex
    square root whose diagonal has an imaginary part above 1e-3 is an error, otherwise its real
    part is kept.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(s1).astype(np.float64), np.atleast_2d(s2).astype(np.float64)
    diff = mu1 - mu2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2)
    if caught or not np.isfinite(covmean).all():  # singular product: regularise, as pytorch-fid does
        offset = np.eye(len(s1)) * 1e-6
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.abs(np.diagonal(covmean).imag).max()
        if imag > 1e-3:
            raise ValueError(f"frechet_distance: the covariance product's square root has imaginary part {imag:.3g}")
        covmean = covmean.real
    return float(max(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean), 0.0))


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted (mean, unbiased covariance) to two feature sets."""
    real, fake = _check(real, fake, "frechet_distance")
    return frechet_distance_gaussians(
        real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False)
    )


def _poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3  # k(x, y) = (xᵀy / d + 1)³


def kernel_inception_distance(
    real: np.ndarray, fake: np.ndarray, *, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018): the unbiased estimate of MMD² with the cubic polynomial kernel
    k(x, y) = (xᵀy/d + 1)³, averaged over ``subsets`` random subsets of ``subset_size`` vectors
    drawn without replacement from each set. Returns (mean, std over the subsets). The subset size
    is capped at half the smaller set, so that subsets differ and the std means something (with
    subsets as large as the sets, every subset is the whole set and the std is 0).
    """
    real, fake = _check(real, fake, "kernel_inception_distance")
    m = max(2, min(subset_size, len(real) // 2, len(fake) // 2))
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)
    for i in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
        values[i] = (
            (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
            + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2 * kxy.sum() / (m * m)
        )
    return float(values.mean()), float(values.std())


def _radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each vector to its k-th nearest neighbour in its own set (itself excluded)."""
    from sklearn.neighbors import NearestNeighbors

    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return dist[:, k]


def _coverage(manifold: np.ndarray, radii: np.ndarray, queries: np.ndarray, chunk: int = 1024) -> float:
    """Fraction of ``queries`` inside at least one ball B(manifold_i, radii_i)."""
    from sklearn.metrics import pairwise_distances

    inside = 0
    for start in range(0, len(queries), chunk):
        d = pairwise_distances(queries[start : start + chunk], manifold)  # (chunk, N)
        inside += int((d <= radii[None, :]).any(1).sum())
    return inside / len(queries)


def precision_recall(real: np.ndarray, fake: np.ndarray, *, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): each set's manifold is the union
    of balls around its vectors reaching their k-th nearest neighbour. Precision is the fraction
    of generated vectors inside the real manifold, recall the fraction of real vectors inside the
    generated one."""
    real, fake = _check(real, fake, "precision_recall")
    if k < 1 or k >= min(len(real), len(fake)):
        raise ValueError(f"precision_recall: k={k} needs 1 <= k < the size of each set ({len(real)}, {len(fake)})")
    precision = _coverage(real, _radii(real, k), fake)
    recall = _coverage(fake, _radii(fake, k), real)
    return precision, recall


def sample_quality(
    real: np.ndarray,
    fake: np.ndarray,
    *,
    k: int = 3,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """All sample-quality metrics between two feature sets, as a flat dict."""
    kid, kid_std = kernel_inception_distance(real, fake, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
    precision, recall = precision_recall(real, fake, k=k)
    return {
        "fd": frechet_distance(real, fake),
        "kid": kid,
        "kid_std": kid_std,
        "precision": precision,
        "recall": recall,
        "k": k,
        "real": len(real),
        "generated": len(fake),
    }
