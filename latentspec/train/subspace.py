"""`latentspec eval --pca`: a decoder against PCA of the data it reconstructs.

A linear autoencoder trained on squared error learns the principal subspace (Baldi & Hornik
1989), though not the principal directions themselves. The report fits scikit-learn's PCA with
as many components as the code has units on the training split, and gives its test MSE and the
cosines of the principal angles (``scipy.linalg.subspace_angles``) between its components and
the decoder's columns, dec(e_i) − dec(0): for an affine decoder exactly the span of its image,
for a nonlinear one the chords from the origin's image.
"""

from __future__ import annotations

import numpy as np
import torch

from latentspec.data.pipeline import SplitData
from latentspec.errors import RunError
from latentspec.spec import Spec
from latentspec.spec._evalkeys import decoder_of_field


@torch.no_grad()
def decoder_columns(spec: Spec, model, entry: str) -> np.ndarray:
    """dec(e_i) − dec(0) for each unit i of the code, flattened: (k, D)."""
    e = spec.export[entry]
    dec, _ = model.graph(list(e.outputs), list(e.inputs), training=False)
    k = spec.infos[e.inputs[0]].shape[0]
    codes = torch.cat([torch.zeros(1, k), torch.eye(k)])  # (1 + k, k)
    out = dec(codes).flatten(1).double()  # (1 + k, D)
    return (out[1:] - out[:1]).numpy()


def pca_report(spec: Spec, model, train: SplitData, test: SplitData) -> dict:
    """PCA's test MSE at k = the code's units, and the principal angles to the decoder."""
    from scipy.linalg import subspace_angles
    from sklearn.decomposition import PCA

    found = decoder_of_field(spec)
    if found is None:
        raise RunError("--pca needs a `decode` entry from one vector code to a tensor shaped like a data field")
    entry, _, field = found
    tx = train.fields[field].flatten(1).double().numpy()  # (N, D)
    vx = test.fields[field].flatten(1).double().numpy()
    cols = decoder_columns(spec, model, entry)  # (k, D)
    k = cols.shape[0]
    if k > min(tx.shape):
        raise RunError(f"--pca: a code of {k} units needs at least {k} training rows of at least {k} features")
    pca = PCA(n_components=k, svd_solver="full").fit(tx)
    test_mse = float(np.mean((pca.inverse_transform(pca.transform(vx)) - vx) ** 2))
    cosines = np.sort(np.cos(subspace_angles(cols.T, pca.components_.T)))  # ascending
    return {
        "entry": entry,
        "field": field,
        "k": k,
        "test_mse": test_mse,
        "cos_min": float(cosines[0]),
        "cos_mean": float(cosines.mean()),
        "cosines": [float(c) for c in cosines],
    }
