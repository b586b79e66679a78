"""`eval --disentanglement`, the amortisation gap report, and `viz` on tiny runs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import yaml
from _tiny import tiny_spec
from PIL import Image

from latentspec.cli import main
from latentspec.spec import load_spec
from latentspec.train.evaluate import evaluate_run
from latentspec.train.trainer import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _train(path: str, folder, rows: int, epochs: int, edit=None) -> str:
    folder.mkdir(exist_ok=True)
    small = tiny_spec(os.path.join(ROOT, path), str(folder), rows=rows, epochs=epochs)
    if edit is not None:
        with open(small) as f:
            raw = yaml.safe_load(f)
        edit(raw)
        with open(small, "w") as f:
            yaml.safe_dump(raw, f, sort_keys=False)
    run = str(folder / "run")
    train(load_spec(small), run, quiet=True, device="cpu")
    return run


@pytest.fixture(scope="module")
def dcign(tmp_path_factory):
    return _train("tests/gallery/dcign.yaml", tmp_path_factory.mktemp("dcign"), 400, 2)


@pytest.fixture(scope="module")
def vae2d(tmp_path_factory):
    def two_d(raw):
        raw["latents"]["z"]["dim"] = 2

    return _train("specs/vae_mnist.yaml", tmp_path_factory.mktemp("vae2d"), 300, 2, two_d)


@pytest.mark.slow
def test_disentanglement_report_on_shapes(dcign):
    r = evaluate_run(dcign, disentanglement=True)["disentanglement"]
    assert list(r["factors"]) == ["class", "scale", "rotation", "posx", "posy", "hue"]
    assert r["units"] == 32 and r["examples"] == 100
    for value in (r["mig"], r["sap"], r["factorvae"]["score"], *r["dci"].values()):
        assert 0.0 <= value <= 1.0
    for f in r["factors"].values():
        assert 0 <= f["best_unit"] < 32 and 0.0 <= f["spearman"] <= 1.0
    with open(os.path.join(dcign, "eval.json")) as f:
        assert json.load(f)["disentanglement"] == r


def test_disentanglement_needs_factors(vae2d, capsys):
    assert main(["eval", vae2d, "--disentanglement"]) == 1
    assert "needs a dataset with ground-truth factors" in capsys.readouterr().err


@pytest.mark.slow
def test_amortisation_gap(tmp_path):
    run = _train("specs/ae_mnist.yaml", tmp_path / "ae", 400, 2)
    gap = evaluate_run(run)["amortisation"]["invert"]
    assert (gap["variable"], gap["encoder"], gap["reconstruction"]) == ("z", "z", "x_mean")
    assert gap["examples"] == 100 and gap["steps"] == 10
    for mode in ("encode", "optimize", "encode_optimize"):
        assert set(gap[mode]) == {"loss", "mse", "ms_per_example"}
    # optimising from the encoder's code improves on the encoder alone
    assert gap["encode_optimize"]["loss"] < gap["encode"]["loss"]


def _image(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.float64)


def _not_blank(a: np.ndarray) -> bool:
    return a.std() > 5.0 and len(np.unique(a)) > 8


@pytest.mark.slow
def test_viz_of_a_2d_vae(vae2d, tmp_path):
    out = str(tmp_path / "viz")
    assert main(["viz", vae2d, "--out", out]) == 0
    names = sorted(os.listdir(out))
    assert names == ["curves.png", "interpolation.png", "manifold.png", "scatter.png", "traversal-units.png"]
    units = _image(os.path.join(out, "traversal-units.png"))
    assert units.shape[0] == 2 + 2 * 30  # two units, one 28-pixel row each, 2-pixel padding
    assert units.shape[1] > 9 * 30  # nine steps and a label margin
    manifold = _image(os.path.join(out, "manifold.png"))
    assert manifold.shape == (2 + 15 * 30, 2 + 15 * 30)
    strips = _image(os.path.join(out, "interpolation.png"))
    assert strips.shape == (2 + 6 * 30, 2 + 10 * 30)  # six pairs, two real ends and eight steps
    curves = _image(os.path.join(out, "curves.png"))
    assert curves.shape[0] >= 200 and curves.shape[1] >= 600
    scatter = _image(os.path.join(out, "scatter.png"))  # the test codes coloured by digit
    assert scatter.shape[0] >= 300 and scatter.shape[1] >= 300
    for a in (units, manifold, strips, curves, scatter):
        assert _not_blank(a)
    # the traversal's columns differ: moving a unit changes the picture
    first, last = units[2:30, -30:-2], units[2:30, -30 * 9 : -30 * 8 - 2]
    assert np.abs(first - last).mean() > 1.0


@pytest.mark.slow
def test_viz_draws_a_row_per_latent_group(dcign, tmp_path):
    out = str(tmp_path / "viz")
    assert main(["viz", dcign, "--out", out]) == 0
    groups = _image(os.path.join(out, "traversal-groups.png"))
    assert groups.shape[0] == 2 + 4 * 34  # rotation, scale, posx and the rest; 32-pixel images
    assert _not_blank(groups)


def test_viz_needs_a_run(tmp_path, capsys):
    assert main(["viz", str(tmp_path)]) == 1
    assert "not a run directory" in capsys.readouterr().err


def test_learning_curves_of_a_staged_run(tmp_path):
    from latentspec.train.viz import learning_curves

    rows = [{"kind": "fit", "stage": "pca", "step": 0, "test": {"rec": 3.0}}]
    rows += [
        {"kind": "epoch", "stage": s, "epoch": e, "step": 10 * i, "train": {t: 1.0 / i}, "test": {t: 1.2 / i}}
        for i, (s, t, e) in enumerate([("a", "rec", 1), ("a", "rec", 2), ("b", "hinge", 1), ("b", "hinge", 2)], 1)
    ]
    rows.append({"kind": "step", "stage": "b", "step": 41, "loss": 0.1, "terms": {"hinge": 0.1}})
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n{cut off")
    learning_curves(str(tmp_path), str(tmp_path / "curves.png"))
    curves = _image(str(tmp_path / "curves.png"))
    assert curves.shape == (300, 840)  # two panels side by side, 4.2 × 3 inches each at 100 dpi
    assert _not_blank(curves)


def test_learning_curves_need_epoch_rows(tmp_path):
    from latentspec.errors import RunError
    from latentspec.train.viz import learning_curves

    (tmp_path / "metrics.jsonl").write_text('{"kind": "step", "step": 1, "loss": 1.0}\n')
    with pytest.raises(RunError, match="no epoch rows"):
        learning_curves(str(tmp_path), str(tmp_path / "curves.png"))
