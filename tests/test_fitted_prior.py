"""`fit: gaussian | gmm`: a prior fitted to a latent table (GLO) or to encoder means (VAE) becomes
the `sample` entry's prior, inside the exported graph."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import yaml
from _tiny import tiny_spec
from _tinyvae import tiny_vae

from latentspec.spec import load_spec, validate_text
from latentspec.train.trainer import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GALLERY_GLO = os.path.join(ROOT, "tests", "gallery", "glo.yaml")


def glo_with_gmm(folder: str) -> str:
    """The gallery GLO at a tiny size, its codes given a 3-component GMM prior fitted after
    training, and a `sample` entry that draws from it."""
    with open(tiny_spec(GALLERY_GLO, folder, rows=128, epochs=1)) as f:
        raw = yaml.safe_load(f)
    raw["latents"]["z"].update(prior="gmm", components=3)
    raw["train"]["stages"] = [{"name": "train"}, {"name": "prior", "fit": "gmm"}]
    raw["export"] = {"sample": {"in": [], "out": ["x_hat", "z"]}, "decode": raw["export"]["decode"]}
    path = os.path.join(folder, "glo_gmm.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(raw, f, sort_keys=False)
    return path


# the sample entry draws from N(mean, cov) of the encoder means
VAE = tiny_vae(
    "vae_gauss",
    rows=(96, 32),
    batch=32,
    dim=3,
    latent=", prior: gaussian, fit_from: z_mu",
    train="  stages:\n    - {name: vae, epochs: 1}\n    - {name: prior, fit: gaussian}\n",
    export="  encode: {in: [x], out: [z_mu]}\n  sample: {in: [], out: [x_mean, z]}\n",
)


def _train(path: str, folder) -> tuple:
    from latentspec.run import load_run

    run = str(folder / "run")
    train(load_spec(path), run, quiet=True)
    return run, *load_run(run)


@pytest.fixture(scope="module")
def glo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("glo")
    return _train(glo_with_gmm(str(folder)), folder)


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vae")
    (folder / "vae.yaml").write_text(VAE)
    return _train(str(folder / "vae.yaml"), folder)


def _export(run: str, out: str) -> str:
    from latentspec.export import export_run

    export_run(run, out, verify=True)  # ONNX Runtime against eager PyTorch, or it raises
    return out


def test_gmm_prior_matches_sklearn_on_the_table_codes(glo):
    from sklearn.mixture import GaussianMixture

    _, spec, model = glo
    codes = model.module_of("z").weight.detach().double().numpy()  # (96, 32): one code per training row
    assert codes.shape == (96, 32)
    ref = GaussianMixture(3, covariance_type="full", reg_covar=1e-6, random_state=spec.seed).fit(codes)
    prior = model.prior_of("z")
    np.testing.assert_allclose(prior.weights.numpy(), ref.weights_, atol=1e-6)
    np.testing.assert_allclose(prior.means.numpy(), ref.means_, atol=1e-6)
    cov = (prior.scale_tril @ prior.scale_tril.transpose(1, 2)).double().numpy()
    np.testing.assert_allclose(cov, ref.covariances_, atol=1e-6)
    assert not np.allclose(prior.means.numpy(), 0)  # fitted, not the initial standard normal


def test_gaussian_prior_matches_numpy_on_the_encoder_means(vae):
    from latentspec.data.pipeline import SplitData

    _, spec, model = vae
    enc, _ = model.graph(["z_mu"], ["x"], training=False)
    with torch.no_grad():
        mu = enc(SplitData.build(spec, "train").fields["x"]).double().numpy()  # (96, 3)
    prior = model.prior_of("z")
    np.testing.assert_allclose(prior.mean.numpy(), mu.mean(0), atol=1e-6)
    cov = (prior.scale_tril @ prior.scale_tril.T).double().numpy()
    np.testing.assert_allclose(cov, np.cov(mu.T) + 1e-6 * np.eye(3), atol=1e-6)


def _mixture_moments(prior) -> tuple[np.ndarray, np.ndarray]:
    w, m = prior.weights.double().numpy(), prior.means.double().numpy()
    covs = (prior.scale_tril @ prior.scale_tril.transpose(1, 2)).double().numpy()
    mean = w @ m
    second = np.einsum("k,kij->ij", w, covs + np.einsum("ki,kj->kij", m, m))
    return mean, second - np.outer(mean, mean)


def test_exported_gmm_sample_entry_draws_from_the_fit(glo, tmp_path):
    from latentspec_runtime import Bundle

    run, _, model = glo
    bundle = _export(run, str(tmp_path / "bundle"))
    with open(os.path.join(bundle, "manifest.json")) as f:
        inputs = json.load(f)["entries"]["sample"]["inputs"]
    assert [(i["name"], i["distribution"], i["latent"]) for i in inputs] == [
        ("eps", "normal", "z"),
        ("u", "uniform", "z"),
    ]
    z = Bundle.load(bundle).sample(20000, seed=3)["z"].astype(np.float64)  # (20000, 32)
    mean, cov = _mixture_moments(model.prior_of("z"))
    np.testing.assert_allclose(z.mean(0), mean, atol=0.02)
    np.testing.assert_allclose(np.cov(z.T), cov, atol=0.02)
    # the graph's component choice, k = #{j: u >= c_j}, picks each component with its weight
    prior = model.prior_of("z")
    u = np.random.default_rng(0).random((20000, 1)).astype(np.float32)
    k = (u >= prior.edges.numpy()).sum(1)
    np.testing.assert_allclose(np.bincount(k, minlength=3) / 20000, prior.weights.numpy(), atol=0.02)


def test_exported_gaussian_sample_entry_draws_from_the_fit(vae, tmp_path):
    from latentspec_runtime import Bundle

    run, _, model = vae
    bundle = _export(run, str(tmp_path / "bundle"))
    z = Bundle.load(bundle).sample(20000, seed=5)["z"].astype(np.float64)  # (20000, 3)
    prior = model.prior_of("z")
    cov = (prior.scale_tril @ prior.scale_tril.T).double().numpy()
    scale = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(z.mean(0), prior.mean.numpy(), atol=0.05 * scale.max())
    np.testing.assert_allclose(np.cov(z.T), cov, atol=0.05 * cov.max())
    # the fit, not the standard normal the KL pulls towards: an untrained prior would give cov = I
    assert not np.allclose(cov, np.eye(3), atol=0.05)


# a small GLO with a gmm prior, for the located errors of its declaration
GLO = """\
latentspec: 1
name: glo_gmm
data:
  dataset: mnist5k
  split: {train: 96, test: 32}
  fields:
    x: {from: images, scale: [0, 1], shape: [1, 28, 28]}
    i: {from: index}
latents:
  z: {dim: 4, table: {index: i}, project: unit_l2, prior: gmm, components: 3}
nodes:
  gen:   {module: mlp, in: z, out: x_logits, hidden: [16], shape: [1, 28, 28]}
  x_hat: {op: sigmoid, in: x_logits}
objective:
  rec: {term: bernoulli_nll, in: [x_logits, x]}
train:
  stages:
    - {name: codes, epochs: 1}
    - {name: prior, fit: gmm}
export:
  sample: {in: [], out: [x_hat]}
"""


def test_the_small_glo_is_valid():
    assert validate_text(GLO, "s.yaml")[0] is not None


def _errors(text: str) -> list[str]:
    spec, diags = validate_text(text, "s.yaml")
    assert spec is None
    return [str(d) for d in diags]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    - {name: prior, fit: gmm}\n", "", "nothing fits the gmm prior of 'z'"),
        ("fit: gmm}", "fit: gaussian}", "nothing fits the gmm prior of 'z'"),
        (
            "fit: gmm}",
            "fit: gmm, trainable: [gen]}",
            "`fit: gmm` fits the prior of latents with `prior: gmm`; no latent named 'gen'",
        ),
        ("fit: gmm}", "fit: gmm, epochs: 3}", "a `fit: gmm` stage fits a prior and trains nothing"),
        ("prior: gmm, components: 3}", "prior: gaussian}", "no latent has `prior: gmm` for this stage to fit"),
        ("components: 3}", "components: 3, fit_from: x_hatt}", "no tensor named 'x_hatt' (did you mean 'x_hat'?)"),
        (
            "components: 3}",
            "components: 3, fit_from: x}",
            "'x' has shape [1, 28, 28] per example; the prior of 'z' needs [4]",
        ),
        ("prior: gmm, components: 3}", "components: 3}", "`components` belongs to a fitted prior (gaussian, gmm)"),
    ],
)
def test_fitted_prior_errors_are_located(old, new, message):
    assert old in GLO
    errors = _errors(GLO.replace(old, new))
    assert any(message in e and e.startswith("s.yaml:") for e in errors), errors
