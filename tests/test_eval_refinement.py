"""`latentspec eval` on a `refine` entry: the terms on its loop's output after 0, 1, …, default + 1
iterations (``refinement.<term>.<K>``), declared for claims, and equal to what the predictor and
the training graph's own loop give."""

from __future__ import annotations

import os

import pytest
import torch
from _tiny import tiny_spec

from latentspec.data.pipeline import SplitData
from latentspec.run import load_run
from latentspec.spec import load_spec
from latentspec.spec._evalkeys import eval_keys, lookup, refinement_of, written_paths
from latentspec.train.evaluate import evaluate_run
from latentspec.train.trainer import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "specs", "feedback_hands.yaml")


def test_declared_for_the_feedback_spec():
    spec = load_spec(SPEC)
    r = refinement_of(spec)
    assert (r.entry, r.output, r.terms, r.iterations) == ("refine", "p_refined", ("joint_error",), (0, 1, 2, 3))
    keys = eval_keys(spec)
    assert lookup(keys, "refinement.joint_error.3").numeric
    assert lookup(keys, "refinement.joint_error.4") is None
    # the entry's default trip count sets how far the report goes
    assert refinement_of(load_spec(SPEC, ["export.refine.iterations=4"])).iterations == (0, 1, 2, 3, 4, 5)


def test_not_declared_without_a_term_on_the_loop_output():
    spec = load_spec(SPEC, ["objective.joint_error.in=[p0, p]", "claims=[]"])
    assert refinement_of(spec) is None
    assert not any(k.path.startswith("refinement.") for k in eval_keys(spec))


@pytest.mark.slow
def test_per_iteration_error_of_a_trained_loop(tmp_path):
    spec = load_spec(tiny_spec(SPEC, str(tmp_path), rows=64, epochs=1))
    run = str(tmp_path / "run")
    train(spec, run, quiet=True, device="cpu")
    result = evaluate_run(run)
    keys = eval_keys(spec)
    assert [p for p in written_paths(result) if lookup(keys, p) is None] == []
    assert [k.path for k in keys if k.path.startswith("refinement.")] == [
        "refinement.entry",
        *(f"refinement.joint_error.{k}" for k in range(4)),
    ]
    per_k = result["refinement"]["joint_error"]
    # K = the spec's steps: the training graph's Python loop (test.joint_error) and the exported
    # graph's while_loop agree
    assert per_k["2"] == pytest.approx(result["test"]["joint_error"], rel=1e-5)
    # K = 0: the loop's start, the predictor's pose; mean Euclidean joint distance in pixels
    spec, model = load_run(run)
    test = SplitData.build(spec, "test")
    gm, _ = model.entry("predict")
    with torch.no_grad():
        p0 = gm(test.fields["x"]).reshape(len(test), 21, 2)
    p = test.fields["p"].reshape(len(test), 21, 2)
    assert per_k["0"] == pytest.approx(float(32 * (p0 - p).norm(dim=2).mean()), rel=1e-5)
    assert len(set(per_k.values())) == 4  # each iteration moves the pose
