"""benchmarks/seeds/glo.py: the `glo` result runs end to end at a tiny size with its claims
checked; `eval --features` measures every entry that samples (GLANN against GLO + Gaussian in one
run) and declares what it writes; the inpainting measurements' own pieces."""

from __future__ import annotations

import os

import numpy as np
import pytest
from _tiny import tiny_spec

from benchmarks import reproduce
from benchmarks.seeds import derived_claim
from benchmarks.seeds.glo import hole_psnr, masks
from latentspec.spec import load_spec
from latentspec.spec._claims import check_run
from latentspec.spec._evalkeys import eval_keys, lookup, written_paths
from latentspec.train.evaluate import evaluate_run
from latentspec.train.trainer import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_glo_result_quick(tmp_path):
    result = reproduce.reproduce("glo", quick=True, out=str(tmp_path))
    assert set(result["numbers"]["laplacian_weights"]) == {"4^j", "1 each"}
    for r in result["numbers"]["laplacian_weights"].values():
        assert r["d"] == 100
        assert all(r[k] > 0 for k in ("train_mse", "test_inversion_mse", "pca_train_mse", "pca_test_mse"))
    assert result["numbers"]["better_weights"] in ([1, 4, 16], [1, 1, 1])
    checked = [c for claims in result["claims"].values() for c in claims]
    assert {c["name"] for c in checked} == {"inversion_beats_pca"}
    assert all(c["holds"] is not None for c in checked), checked
    assert os.path.isfile(tmp_path / "glo.json") and os.path.isfile(tmp_path / "glo_mnist.png")
    assert result["rows"] and all(len(row) == 3 for row in result["rows"])


def _trained(name: str, folder, rows: int = 160, epochs: int = 1) -> str:
    folder.mkdir()
    spec = load_spec(tiny_spec(os.path.join(ROOT, "specs", name), str(folder), rows=rows, epochs=epochs))
    run = str(folder / "run")
    train(spec, run, quiet=True, device="cpu")
    return run


@pytest.mark.slow
def test_eval_features_measures_each_sampling_entry(tmp_path):
    classifier = _trained("classifier_mnist.yaml", tmp_path / "cls")
    glann = _trained("glann_mnist.yaml", tmp_path / "glann")
    result = evaluate_run(glann, features=classifier, samples=32)
    sq = result["sample_quality"]
    assert set(sq["entries"]) == {"sample", "sample_gauss"}
    assert sq["entries"]["sample"]["fd"] == sq["fd"]  # the flat keys are the main entry's
    assert sq["entries"]["sample_gauss"]["fd"] != sq["fd"]  # another sampler, measured on its own
    spec = load_spec(os.path.join(glann, "spec.yaml"))
    keys, written = eval_keys(spec), written_paths(result)
    assert [p for p in written if lookup(keys, p) is None] == []
    asked = [k for k in keys if k.flag in (None, "--features FEATURE_RUN")]
    assert [k.path for k in asked if not any(k.matches(p) for p in written)] == []
    _, (claim,) = check_run(glann)
    assert claim.holds is not None and claim.target == sq["entries"]["sample_gauss"]["fd"]


def test_masks_hide_the_centre_and_half_the_pixels():
    m = masks((400, 1, 28, 28), seed=0)
    assert m["centre"][:, :, 8:20, 8:20].max() == 0 and m["centre"].sum() == 400 * (784 - 144)
    assert abs(m["random"].mean() - 0.5) < 0.01
    assert not np.array_equal(m["random"][0], m["random"][1])  # a draw per image


def test_hole_psnr_reads_only_the_hole():
    x = np.zeros((2, 1, 4, 4), np.float32)
    mask = np.ones_like(x)
    mask[:, :, :2] = 0
    filled = np.where(mask > 0, 1.0, 0.1)  # wrong everywhere outside the hole, 0.1 off inside
    assert hole_psnr(filled, x, mask) == pytest.approx(20.0)


def test_claim_records_either_direction():
    def holds(*a, **k):
        return derived_claim(*a, by="here", **k)["holds"]

    assert holds("a", "a > b", 2.0, 1.0, lower=False) is True
    assert holds("a", "a > b", 1.0, 1.0, lower=False) is False
    assert holds("a", "a < b", 1.0, 2.0) is True
    assert holds("a", "a < b", 2.0, 2.0) is False
    assert holds("a", "a < b", float("nan"), 2.0) is False
    assert "here" in derived_claim("a", "a < b", 1.0, 2.0, by="here")["derived"]
