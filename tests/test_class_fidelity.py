"""`latentspec eval RUN --class-fidelity CLASSIFIER_RUN`: conditional samples per asked class,
classified by a spec-trained classifier; its keys are declared (claims can read them), its bad
uses are one-line errors. Also `--direction NAME=FIELD:LO..HI:LO..HI` (group means over ranges
of a continuous factor, the smart-editing direction)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from _tiny import tiny_spec

from latentspec.cli import main
from latentspec.errors import RunError
from latentspec.run.directions import _select, parse_direction
from latentspec.spec import load_spec, validate_text
from latentspec.spec._evalkeys import eval_keys, lookup, written_paths
from latentspec.train.evaluate import evaluate_run
from latentspec.train.trainer import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = os.path.join(ROOT, "specs")


def _train(name: str, folder) -> str:
    spec = load_spec(tiny_spec(os.path.join(SPECS, f"{name}.yaml"), str(folder), rows=96, epochs=1))
    run = str(folder / name)
    train(spec, run, quiet=True, device="cpu")
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fidelity")
    return _train("cvae_mnist", folder), _train("classifier_mnist", folder)


@pytest.mark.slow
def test_class_fidelity_keys_are_declared_and_consistent(runs):
    cvae, clf = runs
    result = evaluate_run(cvae, class_fidelity=clf, samples=30)
    spec = load_spec(os.path.join(cvae, "spec.yaml"))
    keys = eval_keys(spec)
    written = [p for p in written_paths(result) if p.startswith("class_fidelity.")]
    assert written and all(lookup(keys, p) is not None for p in written)
    declared = [k for k in keys if k.path.startswith("class_fidelity.")]
    assert declared and all(any(k.matches(p) for p in written) for k in declared)
    fid = result["class_fidelity"]
    confusion = np.asarray(fid["confusion"])
    assert confusion.shape == (10, 10) and (confusion.sum(1) == 3).all() and fid["samples"] == 30
    assert fid["accuracy"] == pytest.approx(np.trace(confusion) / 30)
    assert fid["per_class"]["7"] == pytest.approx(confusion[7, 7] / 3)
    assert fid["classifier"]["entry"] == "classify" and fid["field"] == "y"
    assert 0.0 <= fid["real_accuracy"] <= 1.0
    # the same seed draws the same samples: the numbers are reproducible
    assert evaluate_run(cvae, class_fidelity=clf, samples=30)["class_fidelity"]["confusion"] == fid["confusion"]
    assert main(["check", cvae]) in (0, 1)  # the spec's claim reads class_fidelity.accuracy: checked


@pytest.mark.slow
def test_class_fidelity_bad_uses_are_one_line_errors(runs, capsys):
    cvae, clf = runs
    with pytest.raises(RunError, match="no `predict` export entry"):
        evaluate_run(cvae, class_fidelity=cvae)  # the CVAE is no classifier
    with pytest.raises(
        RunError, match=r"needs a sampling entry that takes one class label .*; the run has no sampling"
    ):
        evaluate_run(clf, class_fidelity=clf)  # the classifier does not sample
    with pytest.raises(RunError, match="fewer than one sample per class"):
        evaluate_run(cvae, class_fidelity=clf, samples=5)
    assert main(["eval", cvae, "--samples", "10"]) != 0
    err = capsys.readouterr().err
    assert "--samples needs --features FEATURE_RUN or --class-fidelity CLASSIFIER_RUN" in err
    assert "Traceback" not in err


def test_a_class_fidelity_claim_on_an_unconditional_model_is_a_located_error():
    with open(os.path.join(SPECS, "vae_mnist.yaml")) as f:
        text = f.read()
    text += "claims:\n  - {metric: class_fidelity.accuracy, ge: 0.9}\n"
    spec, diags = validate_text(text, "vae.yaml")
    assert spec is None
    (msg,) = [str(d) for d in diags if d.severity == "error"]
    assert "`latentspec eval` writes no metric 'class_fidelity.accuracy' for this spec" in msg
    assert "`eval --class-fidelity` needs a sampling entry that takes one class label" in msg


def test_direction_groups_may_be_ranges_of_a_continuous_field():
    r = parse_direction("gaze_right=gaze_x:-1..-0.5:0.5..1")
    assert (r.kind, r.field, r.a, r.b) == ("means", "gaze_x", "-1..-0.5", "0.5..1")
    values = np.array([-1.0, -0.7, -0.2, 0.5, 0.9], np.float32)
    assert _select(values, "gaze_x", r.a).tolist() == [True, True, False, False, False]
    assert _select(values, "gaze_x", r.b).tolist() == [False, False, False, True, True]
    assert _select(np.array([1, 7, 7]), "y", "7").tolist() == [False, True, True]
    with pytest.raises(RunError, match=r"'a\.\.b' is not a value \(or a range LO\.\.HI\) of field 'gaze_x'"):
        _select(values, "gaze_x", "a..b")
