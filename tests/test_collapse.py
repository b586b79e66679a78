"""Silent collapse is reported (latentspec/train/collapse.py), and latent-table models (GLO) get
per-epoch pictures and a held-out metric through their `invert` entry."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import yaml

from latentspec.data.pipeline import SplitData
from latentspec.run import build_term, term_weight
from latentspec.spec import load_spec
from latentspec.train.collapse import checked_terms, constant_predictors, eval_rows
from latentspec.train.heldout import ROWS
from latentspec.train.images import labelled_grid
from latentspec.train.trainer import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLO = os.path.join(ROOT, "tests", "gallery", "glo.yaml")


def rows(run: str, kind: str) -> list[dict]:
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return [r for r in map(json.loads, f) if r["kind"] == kind]


# an MLP autoencoder whose code goes through a clamp to [0, 0]: the decoder sees the same input
# for every example, so its reconstruction cannot depend on the image (a deliberate collapse)
COLLAPSING = """
latentspec: 1
name: collapsing
seed: 0
data:
  dataset: mnist5k
  split: {train: 240, test: 80}
  fields:
    x: {from: images, scale: [0, 1], shape: [1, 28, 28]}
  batch: 16
nodes:
  enc:    {module: mlp, in: x, out: h, hidden: [64], dim: 8}
  dead:   {op: clamp, in: h, out: z, min: 0.0, max: 0.0}
  dec:    {module: mlp, in: z, out: x_logits, hidden: [64], shape: [1, 28, 28]}
  x_mean: {op: sigmoid, in: x_logits}
objective:
  recon: {term: bernoulli_nll, in: [x_logits, x]}
train:
  optimizer: {name: adam, lr: 3.0e-2}
  epochs: 3
  samples_every: 0
export:
  reconstruct: {in: [x], out: [x_mean]}
"""


@pytest.mark.parametrize("eval_every", [1, 0])
def test_the_detector_fires_on_a_collapsed_run(tmp_path, capsys, monkeypatch, eval_every):
    """With a test evaluation every epoch the check reads its outputs on the check's rows (no
    forward of its own); without one it runs the model itself. Both find the collapse."""
    from latentspec.train import collapse

    forwards = []
    real = collapse.forward_rows
    monkeypatch.setattr(collapse, "forward_rows", lambda *a: forwards.append(1) or real(*a))
    run = str(tmp_path / "run")
    train(
        load_spec(COLLAPSING.replace("epochs: 3", f"epochs: 3\n  eval_every: {eval_every}"), text=True), run, quiet=True
    )
    # eval_every 0 evaluates the last epoch only: the check runs the model after epochs 1 and 2
    assert len(forwards) == (0 if eval_every else 2)
    warnings = rows(run, "warning")
    found = {(w["what"], w["term"], w["epoch"]) for w in warnings}
    assert {("constant", "recon", e) for e in (2, 3)} <= found  # from the second epoch: constant and staying so
    assert ("trivial", "recon", 3) in found  # a constant cannot beat the mean image
    trivial = next(w for w in warnings if w["what"] == "trivial")
    assert trivial["value"] >= trivial["baseline"] * 0.98 and trivial["check"] == "collapse"
    assert trivial["previous"] - trivial["value"] < 0.02 * trivial["baseline"]
    err = capsys.readouterr().err
    assert "warning: stage train, epoch 2: term 'recon':" in err and "same for every example" in err


def test_the_detector_is_silent_when_the_code_carries_the_image(tmp_path, capsys):
    """The same model with a code the decoder can read: no warning."""
    run = str(tmp_path / "run")
    healthy = COLLAPSING.replace("min: 0.0, max: 0.0", "min: -10.0, max: 10.0").replace("lr: 3.0e-2", "lr: 1.0e-3")
    healthy = healthy.replace("train: 240", "train: 600")
    train(load_spec(healthy, text=True), run, quiet=True)
    assert rows(run, "warning") == []
    assert "warning:" not in capsys.readouterr().err


def test_the_trivial_predictor_is_the_mean_fed_through_the_term():
    spec = load_spec(COLLAPSING, text=True)
    assert checked_terms(spec, spec.objective) == ["recon"]
    x = torch.tensor([[0.0, 1.0], [0.0, 0.5], [1.0, 0.5]])
    preds = constant_predictors(spec, "recon", x)
    # a Bernoulli likelihood takes logits: sigmoid(prediction) is the mean (and the median)
    assert torch.allclose(torch.sigmoid(preds["mean image"]), x.mean(0, keepdim=True), atol=1e-5)
    assert torch.allclose(torch.sigmoid(preds["median image"]), torch.tensor([[0.0, 0.5]]), atol=1e-5)


def test_labelled_grid_names_each_block_in_a_gutter():
    x = np.ones((4, 1, 8, 8), np.float32)
    plain = labelled_grid([("", x), ("", x)], ncol=4)
    sheet = labelled_grid([("input", x), ("reconstruction", x)], ncol=4)
    assert sheet.shape[0] == plain.shape[0] and sheet.shape[1] > plain.shape[1] + 40
    gutter = sheet[:, : sheet.shape[1] - plain.shape[1]]
    assert (gutter < 128).any()  # the text is drawn


def glo_on_shapes(**changes) -> str:
    """The gallery GLO recipe on `shapes` at a tiny size (600 training rows, 4 epochs of 32)."""
    with open(GLO) as f:
        raw = yaml.safe_load(f)
    raw["data"].update(
        dataset={"shapes": {"size": 700}},
        fields={"x": {"from": "image"}, "i": {"from": "index"}},
        split={"train": 600, "test": 100},
        batch=32,
    )
    raw["nodes"]["gen"]["shape"] = [1, 32, 32]
    raw["train"].update(epochs=4, samples_every=4)
    raw["export"]["invert"]["steps"] = 100
    raw["export"]["inpaint"]["inputs"]["mask"]["shape"] = [1, 32, 32]
    for path, value in changes.items():
        *parents, key = path.split(".")
        node = raw
        for p in parents:
            node = node[p]
        node[key] = value
    return yaml.safe_dump(raw, sort_keys=False)


@pytest.fixture(scope="module")
def glo_run(tmp_path_factory):
    spec = load_spec(glo_on_shapes(), text=True)
    run = str(tmp_path_factory.mktemp("glo") / "run")
    train(spec, run, quiet=True)
    return spec, run


def test_glo_gets_pictures_of_training_rows_and_test_inversions(glo_run):
    from PIL import Image

    _, run = glo_run
    image = np.asarray(Image.open(os.path.join(run, "samples", "epoch-004.png")))
    # four labelled rows: train input, train reconstruction, test input, inversion (no sampler)
    assert image.shape[0] == 4 * (32 + 2) + 2


def test_glo_has_a_held_out_metric_and_a_best_checkpoint(glo_run):
    _, run = glo_run
    epochs = rows(run, "epoch")
    assert all("invert" in r["test"] for r in epochs)
    with open(os.path.join(run, "checkpoints", "best", "state.json")) as f:
        assert json.load(f)["best"] == min(r["test"]["invert"] for r in epochs)


def invert_objective(spec, pred: torch.Tensor, x: torch.Tensor) -> float:
    """The `invert` entry's objective for predictions ``pred`` of ``x``."""
    return sum(term_weight(t, 10**9, 1e9) * float(build_term(spec, t)(pred, x)) for t in spec.export["invert"].terms)


def test_glo_recipe_learns_and_beats_the_constant_baselines(glo_run):
    """Held-out inversion of the gallery recipe against the all-black and the mean-image
    predictions of the same test rows, under the same objective, and no collapse warning."""
    spec, run = glo_run
    test = eval_rows(SplitData.build(spec, "test"), ROWS)["x"]
    mean_image = SplitData.build(spec, "train").fields["x"].mean(0, keepdim=True).expand_as(test)
    black = invert_objective(spec, torch.zeros_like(test), test)
    mean = invert_objective(spec, mean_image, test)
    inverted = rows(run, "epoch")[-1]["test"]["invert"]
    assert inverted < 0.9 * min(black, mean), (inverted, black, mean)
    assert rows(run, "warning") == []


def test_lap1_alone_collapses_to_black_and_is_reported(tmp_path):
    """The recipe before the fix (Lap1 alone, the generator at a 10x rate) ends all black, with
    its loss flat: the detector says so, and inversion is no better than the all-black image."""
    text = glo_on_shapes(**{"train.optimizer.groups.gen.lr": 1.0e-2, "train.samples_every": 0, "train.epochs": 3})
    raw = yaml.safe_load(text)
    del raw["objective"]["sq"]
    raw["objective"]["rec"]["weights"] = [1, 4, 16]  # 2^(2j), the registry default before glo.json settled it
    raw["export"]["invert"]["terms"] = ["rec"]
    spec = load_spec(yaml.safe_dump(raw, sort_keys=False), text=True)
    run = str(tmp_path / "run")
    train(spec, run, quiet=True)
    found = {(w["what"], w["term"]) for w in rows(run, "warning")}
    assert ("constant", "rec") in found and ("trivial", "rec") in found
    test = eval_rows(SplitData.build(spec, "test"), ROWS)["x"]
    black = invert_objective(spec, torch.zeros_like(test), test)
    assert rows(run, "epoch")[-1]["test"]["invert"] > 0.95 * black
