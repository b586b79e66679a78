"""`eval` reports neg_elbo with its two parts, which add up to it and match the objective's terms."""

from __future__ import annotations

import os

import pytest

from latentspec.spec import load_spec
from latentspec.train.evaluate import evaluate_run
from latentspec.train.trainer import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_neg_elbo_is_the_sum_of_its_parts_and_of_the_terms(tmp_path):
    spec = load_spec(
        os.path.join(ROOT, "specs", "vae_mnist.yaml"),
        ["data.split.train=256", "data.split.test=128", "data.batch=64", "train.epochs=1", "train.samples_every=0"],
    )
    run = str(tmp_path / "run")
    train(spec, run, quiet=True)
    test = evaluate_run(run)["test"]
    assert test["neg_elbo"] == pytest.approx(test["neg_elbo_recon"] + test["neg_elbo_kl"], rel=1e-6)
    assert test["neg_elbo_kl"] == pytest.approx(test["kl"], rel=1e-4)  # closed form: no draw involved
    assert test["neg_elbo_recon"] == pytest.approx(test["recon"], rel=0.05)  # differ by the posterior draw
