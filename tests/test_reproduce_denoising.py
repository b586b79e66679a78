"""`python -m benchmarks.reproduce amortisation --quick`: the encoder-versus-optimisation pipeline
of benchmarks/seeds/denoising.py end to end at a tiny size, its claims checked by `latentspec
check`; and the comparison of two runs that the denoising result derives itself."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks import reproduce
from benchmarks.seeds import denoising


@pytest.mark.slow
def test_quick_amortisation_runs_the_whole_pipeline(tmp_path):
    result = reproduce.reproduce("amortisation", quick=True, out=str(tmp_path))
    with open(tmp_path / "amortisation.json") as f:
        assert json.load(f) == result
    numbers = result["numbers"]
    gap = numbers["amortisation"]
    assert (gap["variable"], gap["encoder"], gap["reconstruction"], gap["steps"]) == ("z", "z", "x_mean", 10)
    for mode in ("encode", "optimize", "encode_optimize"):
        assert set(gap[mode]) == {"loss", "mse", "ms_per_example"}
    # the step curve runs eval's optimisation: its ends are eval's numbers
    curve = numbers["loss_after_steps"]
    assert list(curve["zero"]) == list(curve["encoder"]) == ["0", "2", "10"]
    assert curve["encoder"]["0"] == pytest.approx(gap["encode"]["loss"], rel=1e-5)
    assert curve["zero"]["10"] == pytest.approx(gap["optimize"]["loss"], rel=1e-4)
    assert curve["encoder"]["10"] == pytest.approx(gap["encode_optimize"]["loss"], rel=1e-4)
    assert 0 < numbers["mean_image_mse"] < 1
    claims = result["claims"]["ae_mnist"]
    assert [c["name"] for c in claims] == ["encoder_code_improvable", "warm_start_at_least_cold"]
    assert all(isinstance(c["holds"], bool) for c in claims)
    assert claims[0]["value"] == gap["encode_optimize"]["loss"] and claims[0]["target"] == gap["encode"]["loss"]
    steps = result["steps"]
    assert steps[0].startswith("latentspec train specs/ae_mnist.yaml --out RUNS/ae_mnist")
    assert steps[1] == "latentspec eval RUNS/ae_mnist" and steps[2] == "latentspec check RUNS/ae_mnist"


def test_a_claim_across_two_runs_holds_when_the_first_is_not_smaller():
    c = denoising._derived_claim("x", "a ≥ b", 0.9, 0.9, "doc")
    assert c["holds"] is True and (c["value"], c["target"]) == (0.9, 0.9)
    assert denoising._derived_claim("x", "a ≥ b", 0.89, 0.9, "doc")["holds"] is False
    assert "eval.json" in c["checked_by"]


@pytest.mark.parametrize("kind", sorted(denoising.KINDS))
def test_test_digits_are_corrupted_as_in_training(kind):
    x = torch.rand(64, 784, generator=torch.Generator().manual_seed(0))
    level = denoising.KINDS[kind]
    noisy = denoising._corrupted(x, kind, level, seed=3)
    assert torch.equal(noisy, denoising._corrupted(x, kind, level, seed=3))
    changed = (noisy != x).double().mean().item()
    if kind == "gaussian":
        assert (noisy - x).std().item() == pytest.approx(level, rel=0.05)
    else:  # a fraction ν of the pixels replaced (by 0, or by 0 or 1)
        assert changed == pytest.approx(level, abs=0.02)
        assert set(noisy[noisy != x].unique().tolist()) <= {0.0, 1.0}
