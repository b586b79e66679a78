"""Evaluation metrics on arrays (numpy/scipy/scikit-learn; no torch): sample quality from
features, and disentanglement against known factors. See docs/metrics.md."""

from latentspec.metrics._disentangle import (
    best_units,
    dci,
    discretize,
    disentanglement,
    factorvae_score,
    mig,
    sap,
)
from latentspec.metrics._sample import (
    frechet_distance,
    frechet_distance_gaussians,
    kernel_inception_distance,
    precision_recall,
    sample_quality,
)

__all__ = [
    "best_units",
    "dci",
    "discretize",
    "disentanglement",
    "factorvae_score",
    "frechet_distance",
    "frechet_distance_gaussians",
    "kernel_inception_distance",
    "mig",
    "precision_recall",
    "sample_quality",
    "sap",
]
