"""Item 1 of "Seed results I": eigenfaces, and a linear autoencoder that learns the PCA subspace."""

from __future__ import annotations

import os
from typing import Any

from benchmarks.seeds import Context, claim_rows, epoch_rows, register

EIGEN_KS = (1, 5, 10, 20, 50)
FACES_QUICK = ["data.dataset.faces.size=160", "data.split.train=120", "data.split.test=40", "data.batch=40"]


def _component_grid(spec_run: str, path: str, n: int) -> None:
    """The decode entry's columns dec(e_i) − dec(0) as images, each stretched to [0, 1]."""
    from latentspec.run import load_run
    from latentspec.train.images import grid, save_png
    from latentspec.train.subspace import decoder_columns

    spec, model = load_run(spec_run)
    cols = decoder_columns(spec, model, "decode")[:n]  # (n, D)
    lo, hi = cols.min(1, keepdims=True), cols.max(1, keepdims=True)
    images = ((cols - lo) / (hi - lo + 1e-12)).reshape((len(cols), *spec.infos["x"].shape))
    save_png(path, grid(images, ncol=min(10, n)))


def _mean_image_mse(run: str) -> float:
    """The baseline k = 0: every test face reconstructed as the mean training face."""
    from latentspec.data.pipeline import SplitData
    from latentspec.run import load_run

    spec, _ = load_run(run)
    train, test = (SplitData.build(spec, part).fields["x"].double() for part in ("train", "test"))
    return float(((test - train.mean(0)) ** 2).mean())


@register(
    "eigenfaces",
    "Eigenfaces; a linear AE learns the PCA subspace",
    "Turk & Pentland 1991; Baldi & Hornik 1989",
)
def eigenfaces(ctx: Context) -> dict[str, Any]:
    quick = FACES_QUICK if ctx.quick else []
    mse = {}
    for k in EIGEN_KS:
        run = ctx.train("specs/eigenfaces.yaml", f"eigenfaces_k{k}", [f"nodes.pca.dim={k}", *quick])
        mse[k] = ctx.evaluate(run)["test"]["rec"]
    grid_png = ctx.figure("eigenfaces.png")
    _component_grid(os.path.join(ctx.runs, f"eigenfaces_k{max(EIGEN_KS)}"), grid_png, 20)
    lae_sets = [*quick, "train.epochs=2"] if ctx.quick else []
    lae = ctx.train("specs/linear_ae_faces.yaml", "linear_ae_faces", lae_sets)
    ev = ctx.evaluate(lae, "--pca")
    claims = ctx.check(lae)
    lae_png = ctx.figure("linear_ae_faces.png")
    _component_grid(lae, lae_png, 10)
    epochs = epoch_rows(lae)
    mean_mse = _mean_image_mse(lae)
    numbers = {
        "mean_image_test_mse": mean_mse,
        "pca_test_mse": {str(k): v for k, v in mse.items()},
        "linear_ae": {
            "k": ev["pca"]["k"],
            "test_mse": ev["test"]["rec"],
            "pca_test_mse": ev["pca"]["test_mse"],
            "mse_ratio": ev["test"]["rec"] / ev["pca"]["test_mse"],
            "cosines": ev["pca"]["cosines"],
            "epochs": len(epochs),
            "train_seconds": sum(r.get("seconds", 0.0) for r in epochs),
        },
    }
    rows = [
        ("mean training face as every test face's reconstruction (k = 0): test MSE", f"{mean_mse:.4g}", None),
        ("PCA test MSE at k = " + ", ".join(map(str, EIGEN_KS)), ", ".join(f"{mse[k]:.4g}" for k in EIGEN_KS), None),
        *claim_rows(claims),
    ]
    return {"numbers": numbers, "claims": {"linear_ae_faces": claims}, "figures": [grid_png, lae_png], "rows": rows}
