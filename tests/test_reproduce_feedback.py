"""`python -m benchmarks.reproduce feedback --quick`: the feedback loop's pipeline end to end at a
tiny size: one predictor and synthesizer, three updaters continuing it, the claims checked, and
the exported bundle's `refine` in the torch-free runtime agreeing with PyTorch."""

from __future__ import annotations

import json

import pytest

from benchmarks import reproduce
from benchmarks.seeds import feedback


@pytest.mark.slow
def test_quick_feedback_runs_the_whole_pipeline(tmp_path):
    result = reproduce.reproduce("feedback", quick=True, out=str(tmp_path))
    with open(tmp_path / "feedback.json") as f:
        assert json.load(f) == result
    numbers = result["numbers"]
    per_k = numbers["joint_error"]
    assert set(per_k) == set(feedback.VARIANTS)
    for errors in per_k.values():
        assert list(errors) == ["0", "1", "2", "3"]
        assert all(v > 0 for v in errors.values())
    # the three updaters continue one run: the same predictor, so the same error before refining
    assert len({errors["0"] for errors in per_k.values()}) == 1
    # the torch-free runtime's refine gives PyTorch's numbers, iteration by iteration
    runtime = numbers["runtime_refine"]
    assert runtime["max_abs_diff_vs_pytorch"] <= feedback.TOLERANCE
    for k, v in runtime["joint_error"].items():
        assert v == pytest.approx(per_k[feedback.MAIN][k], abs=feedback.TOLERANCE)
    # no iteration: the predictor's pose, as the bundle's `predict` entry gives it
    assert runtime["predict_entry_joint_error"] == pytest.approx(runtime["joint_error"]["0"], abs=1e-6)
    claims = result["claims"]["feedback_hands"]
    assert [c["name"] for c in claims] == ["loop_20pct_after_2", "first_update_helps"]
    assert all(isinstance(c["holds"], bool) for c in claims)
    assert claims[0]["value"] == per_k[feedback.MAIN]["2"]
    assert claims[0]["target"] == pytest.approx(0.8 * per_k[feedback.MAIN]["0"])
    with open(result["figures"][0], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    steps = result["steps"]
    assert steps[0].startswith("latentspec train specs/feedback_hands.yaml --out RUNS/base")
    assert sum("--resume --force" in s for s in steps) == len(feedback.VARIANTS)
    assert any(s.startswith("latentspec check RUNS/hinge_0.6") for s in steps)
    assert any(s.startswith("latentspec export RUNS/hinge_0.6") and "--verify" in s for s in steps)
