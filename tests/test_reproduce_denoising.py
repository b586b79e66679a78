"""`python -m benchmarks.reproduce amortisation --quick`: the encoder-versus-optimisation pipeline
of benchmarks/seeds/denoising.py end to end at a tiny size, its claims checked by `latentspec
check`; the denoising result at a tiny size, its DAE and SDAE claims checked by `latentspec check
RUN --baseline ae=AE_RUN`; and the "at least one kind" aggregate of the DAEs' checked claims."""

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


@pytest.mark.slow
def test_quick_denoising_checks_each_run_against_the_plain_ae(tmp_path):
    result = reproduce.reproduce("denoising", quick=True, out=str(tmp_path))
    acc = result["numbers"]["probe_accuracy"]
    claims = result["claims"]
    assert set(claims) == {"sdae", "dae_masking", "dae_gaussian", "dae_salt_pepper", "dae_some_kind"}
    for name in ("sdae", *(f"dae_{k}" for k in denoising.KINDS)):
        (c,) = claims[name]  # the spec's claim, as `latentspec check` decided it (no verdict asserted)
        assert (c["name"], c["claim"]) == ("probe_ge_ae", "test.probe_accuracy ≥ ae:test.probe_accuracy")
        assert (c["value"], c["target"]) == (acc[name], acc["ae"])
        assert c["holds"] == (acc[name] >= acc["ae"]) and "checked_by" not in c
        assert (c["value_from"], c["target_from"]) == (f"RUNS/{name}", "ae=RUNS/ae")
        assert f"latentspec check RUNS/{name} --baseline ae=RUNS/ae" in result["steps"]
    assert not any(s.startswith("latentspec check RUNS/ae") for s in result["steps"])  # the AE drops the claim
    (some,) = claims["dae_some_kind"]
    assert some["holds"] == any(acc[f"dae_{k}"] >= acc["ae"] for k in denoising.KINDS)


def _probe(holds, value=0.9):
    c = {"name": "probe_ge_ae", "claim": "…", "value": value, "target": 0.9, "holds": holds}
    return [c if holds is not None else {**c, "value": None, "target": None, "missing": "needs --baseline ae=RUN"}]


def test_at_least_one_kind_aggregates_the_checked_claims():
    agg = denoising.at_least_one_kind
    some = agg({"masking": _probe(False, 0.8), "gaussian": _probe(True, 0.95), "salt_pepper": _probe(False, 0.7)})
    assert some["holds"] is True and some["value"] == 0.95 and some["doc"] == "best kind: Gaussian σ = 0.3"
    assert agg({"masking": _probe(False, 0.8), "gaussian": _probe(False, 0.85)})["holds"] is False
    unchecked = agg({"masking": _probe(False, 0.8), "gaussian": _probe(None)})
    assert unchecked["holds"] is None and "dae_gaussian: needs --baseline ae=RUN" in unchecked["missing"]


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
