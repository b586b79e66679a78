"""`eval --features`: the VAE's samples rank between real digits and blurred noise, in the
feature space of a classifier trained from specs/classifier_mnist.yaml (all tiny)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from _tiny import tiny_spec

from latentspec.cli import main
from latentspec.spec import load_spec
from latentspec.train.evaluate import evaluate_run
from latentspec.train.sample_quality import feature_network, quality_of, real_images
from latentspec.train.trainer import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _train(name: str, tmp_path, rows: int, epochs: int) -> str:
    folder = tmp_path / name
    folder.mkdir()
    spec = load_spec(tiny_spec(os.path.join(ROOT, "specs", f"{name}.yaml"), str(folder), rows=rows, epochs=epochs))
    run = str(folder / "run")
    train(spec, run, quiet=True, device="cpu")
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("features")
    return _train("vae_mnist", tmp, 1200, 10), _train("classifier_mnist", tmp, 1200, 3)


def _blurred_noise(n: int, shape, seed: int = 0) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    noise = np.random.default_rng(seed).uniform(size=(n, *shape)).astype(np.float32)
    return np.stack([gaussian_filter(x, sigma=(0, 1.5, 1.5)) for x in noise])


@pytest.mark.slow
def test_vae_samples_rank_between_real_digits_and_blurred_noise(runs):
    vae, clf = runs
    result = evaluate_run(vae, features=clf, samples=200)
    q = result["sample_quality"]
    assert q["features"] == {"run": clf, "tensor": "feat", "input": "x"}
    assert q["generated"] == 200 and q["real"] == 300

    spec = load_spec(os.path.join(vae, "spec.yaml"))
    test, train_images = real_images(spec, "test"), real_images(spec, "train")
    # the splits keep mnist5k's order (sorted by class): a random subset of the real digits
    train_images = train_images[np.random.default_rng(0).choice(len(train_images), 200, replace=False)]
    features, _ = feature_network(clf)
    real = quality_of(features, test, train_images)
    noise = quality_of(features, test, _blurred_noise(200, test.shape[1:]))
    assert real["fd"] < q["fd"] < noise["fd"]
    assert real["kid"] < q["kid"] < noise["kid"]
    assert abs(real["kid"]) < 3 * real["kid_std"]  # one distribution: KID ≈ 0
    assert real["recall"] > q["recall"] > noise["recall"]
    # (precision alone is fooled at this size: the tiny classifier maps blurred noise into the
    # middle of the real features, whose k-NN balls are wide with 300 points in 256 dimensions)


def test_eval_features_errors_are_one_line(runs, capsys):
    vae, clf = runs
    assert main(["eval", vae, "--features", vae]) == 1  # the VAE has no `features` entry
    assert "no `features` export entry" in capsys.readouterr().err
    assert main(["eval", vae, "--samples", "10"]) == 1
    assert "--samples needs --features" in capsys.readouterr().err
    assert main(["eval", vae, "--features", clf, "--feature-tensor", "nope"]) == 1
    assert "no tensor 'nope'" in capsys.readouterr().err


def test_eval_features_by_tensor_name(runs, capsys):
    vae, clf = runs
    assert main(["eval", vae, "--features", clf, "--feature-tensor", "logits", "--samples", "50"]) == 0
    q = json.loads(capsys.readouterr().out)["sample_quality"]
    assert q["features"]["tensor"] == "logits" and q["generated"] == 50
