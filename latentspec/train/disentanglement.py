"""`latentspec eval RUN --disentanglement`: the run's codes of the test split against the
ground-truth factors of a procedural dataset (`shapes`, `hands`, `faces`)."""

from __future__ import annotations

import numpy as np

from latentspec.errors import RunError
from latentspec.spec import Spec

MAX_EXAMPLES = 5000  # the estimators are O(N·D) to O(N²); a random subset above this size


def ground_truth_factors(spec: Spec, field: str, split: str) -> tuple[np.ndarray, list[str], list[bool]]:
    """The free factors of the rows of ``split`` (in the order of ``field``'s group): values
    (N, K), names, and whether each is categorical."""
    from latentspec.data.pipeline import group_rows, load_arrays

    ds = spec.data.dataset.instance
    if not getattr(ds, "procedural", False):
        raise RunError(
            f"--disentanglement needs a dataset with ground-truth factors (shapes, hands, faces); "
            f"this run's dataset is {spec.data.dataset.name}"
        )
    cfg = spec.data.dataset.config.as_dict()
    arrays = load_arrays(spec)
    rows = next(keep for names, keep in group_rows(spec, split).values() if field in names)
    values, names, categorical = [], [], []
    for f in ds.factors(cfg):
        col = arrays[f.name][rows]
        if f.fixed or len(np.unique(col)) < 2:
            continue
        values.append(col.astype(np.float64))
        names.append(f.name)
        categorical.append(f.categorical)
    if not names:
        raise RunError("--disentanglement: every factor of the dataset is fixed in this split")
    return np.stack(values, 1), names, categorical


def disentanglement_report(spec: Spec, model, test, seed: int) -> dict:
    """MIG, DCI, SAP, the FactorVAE score and per factor the best unit with its |Spearman ρ|."""
    from latentspec._extras import require

    require("sklearn", "metrics", "disentanglement metrics (eval --disentanglement)")
    from latentspec.metrics import disentanglement
    from latentspec.train.evaluate import code_field, codes

    field = code_field(spec)
    z = codes(spec, model, test).double().numpy()
    factors, names, categorical = ground_truth_factors(spec, field, "test")
    if len(z) != len(factors):
        raise RunError(f"--disentanglement: {len(z)} codes but {len(factors)} factor rows in the test split")
    if len(z) > MAX_EXAMPLES:
        keep = np.sort(np.random.default_rng(seed).choice(len(z), MAX_EXAMPLES, replace=False))
        z, factors = z[keep], factors[keep]
    if z.shape[1] < 2:
        raise RunError("--disentanglement: the code has one unit; the metrics compare units with each other")
    report = disentanglement(z, factors, categorical, names, seed=seed)
    report["examples"] = len(z)
    report["units"] = int(z.shape[1])
    return report
