"""`python -m benchmarks.reproduce cvae --quick`: the conditional-VAE result runs end to end at a
tiny size (classifier and CVAE trained from their specs, `eval --class-fidelity`, `latentspec
check`, both bundles exported and sampled through the runtime), so the script does not rot; and
`smart_editing --quick` (`eval --edit-fidelity`, `latentspec check`, the bundle's `edit`). Their
verdicts at this size mean nothing; only that the claims were checked and the numbers agree."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import reproduce


@pytest.mark.slow
def test_quick_cvae_runs_the_whole_pipeline(tmp_path):
    result = reproduce.reproduce("cvae", quick=True, out=str(tmp_path))
    with open(tmp_path / "cvae.json") as f:
        assert json.load(f) == result
    n = result["numbers"]
    fid = n["class_fidelity"]
    confusion = np.asarray(fid["confusion"])
    assert confusion.shape == (10, 10) and (confusion.sum(1) == confusion.sum() // 10).all()
    assert fid["samples"] == confusion.sum() == 100  # 10 per class in quick mode
    assert fid["accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum())
    assert fid["min_class_accuracy"] == pytest.approx(min(fid["per_class"].values()))
    runtime = np.asarray(n["runtime"]["confusion"])
    assert runtime.shape == (10, 10) and runtime.sum() == n["runtime"]["samples"] == 100
    assert 0.0 <= n["classifier_accuracy_on_real_test_digits"] <= 1.0
    (claim,) = result["claims"]["cvae_mnist"]
    assert claim["name"] == "samples_show_asked_class" and isinstance(claim["holds"], bool)
    assert claim["value"] == fid["accuracy"] and claim["target"] == 0.9
    for png in result["figures"]:
        with open(png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    steps = result["steps"]
    assert any(s.startswith("latentspec eval RUNS/cvae_mnist --class-fidelity RUNS/classifier_mnist") for s in steps)
    assert any(s.startswith("latentspec check RUNS/cvae_mnist") for s in steps)
    assert any(s.startswith("latentspec export RUNS/cvae_mnist") for s in steps)


@pytest.mark.slow
def test_quick_smart_editing_checks_its_claim_through_eval(tmp_path):
    result = reproduce.reproduce("smart_editing", quick=True, out=str(tmp_path))
    with open(tmp_path / "smart_editing.json") as f:
        assert json.load(f) == result
    (claim,) = result["claims"]["vae_faces"]
    assert claim["name"] == "gaze_edit_nearer_truth" and isinstance(claim["holds"], bool)
    assert "checked_by" not in claim  # `latentspec check` decided it, from eval.json
    n = result["numbers"]
    assert claim["value"] == n["mse"]["edit_means"] and claim["target"] == n["mse"]["decoded_before_edit"]
    assert n["runtime_vs_eval_max_abs"] < 1e-6  # the bundle's edit(x, d, alpha) is eval's edit
    assert all(v > 0 for v in n["eye_region_mse"].values())
    steps = result["steps"]
    assert any(s.startswith("latentspec eval RUNS/vae_faces --edit-fidelity gaze_right=gaze_x:") for s in steps)
    assert any(s.startswith("latentspec check RUNS/vae_faces") for s in steps)
    with open(result["figures"][0], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
