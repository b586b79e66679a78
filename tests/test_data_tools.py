"""`latentspec data show` / `data export` and image-folder checks at validation time."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from latentspec.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _folder(root, sizes):
    for i, (w, h) in enumerate(sizes):
        d = root / f"class{i % 2}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((h, w), 40 * i, np.uint8)).save(d / f"{i:02d}.png")
    return root


def test_data_show_images_folder(tmp_path, capsys):
    folder = _folder(tmp_path / "imgs", [(8, 8)] * 6)
    out = tmp_path / "grid.png"
    assert main(["data", "show", "images", "--set", f"path={folder}", "-n", "4", "-o", str(out)]) == 0
    with Image.open(out) as im:
        assert im.size[0] > 8 and im.size[1] > 8


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data", "show", "images", "--set", "pth=x"], "dataset images has no parameter 'pth' (did you mean 'path'?)"),
        (["data", "show", "images"], "dataset images needs --set path=VALUE"),
        (["data", "show", "shapes", "--set", "seed=minus"], "--set seed: 'minus' is not of type 'integer'"),
        (["data", "show", "shapez"], "unknown dataset 'shapez' (did you mean 'shapes'?)"),
        (["data", "show", "shapes", "-n", "0"], "-n 0: the count must be at least 1"),
    ],
)
def test_data_show_errors_are_one_line(tmp_path, capsys, argv, message):
    assert main([*argv, "-o", str(tmp_path / "g.png")]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_unsupported_output_extension(tmp_path, capsys):
    assert main(["data", "show", "shapes", "-n", "2", "-o", str(tmp_path / "g.jpg")]) == 1
    assert "cannot write .jpg; use .png" in capsys.readouterr().err
    spec = os.path.join(ROOT, "specs", "vae_mnist.yaml")
    assert main(["data", "export", spec, "-o", str(tmp_path / "rows.csv")]) == 1
    assert "cannot write .csv; use .npy or .npz" in capsys.readouterr().err


def test_mixed_size_folder_is_a_validation_error(tmp_path, capsys):
    folder = _folder(tmp_path / "imgs", [(8, 8), (8, 8), (9, 8)])
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "latentspec: 1\nname: f\ndata:\n  dataset: {images: imgs}\n"
        "  fields:\n    x: {from: images, scale: [0, 1]}\nnodes:\n"
        "  enc: {module: mlp, in: x, out: h, hidden: [4]}\nobjective:\n  l: {term: l2_penalty, in: h}\n"
    )
    assert main(["validate", str(spec)]) == 1
    out = capsys.readouterr().out
    assert "spec.yaml:4:" in out and "02.png is 9x8, but" in out and "set `size: [height, width]`" in out
    assert os.path.isdir(folder)


def test_data_export_writes_what_the_runtime_reads(tmp_path, capsys):
    spec = os.path.join(ROOT, "specs", "vae_mnist.yaml")
    out = tmp_path / "rows.npz"
    assert main(["data", "export", spec, "--split", "test", "-n", "5", "-o", str(out)]) == 0
    with np.load(out) as rows:
        assert rows["x"].shape == (5, 1, 28, 28) and rows["x"].dtype == np.float32
        assert 0.0 <= rows["x"].min() and rows["x"].max() <= 1.0
        assert rows["y"].shape == (5,) and rows["y"].dtype == np.int64
    npy = tmp_path / "x.npy"
    assert main(["data", "export", spec, "-n", "3", "-o", str(npy)]) == 0
    assert np.load(npy).shape == (3, 1, 28, 28)
    assert main(["data", "export", spec, "--split", "val", "-o", str(npy)]) == 1
    assert "--split val: the spec's splits are train, test" in capsys.readouterr().err


def test_dataset_docs_are_generated():
    from latentspec.data.docs import datasets_markdown

    with open(os.path.join(ROOT, "docs", "datasets.md")) as f:
        assert f.read() == datasets_markdown(), "run `latentspec docs --datasets > docs/datasets.md`"


def test_dataset_docs_list_factors_with_ranges():
    from latentspec.data.docs import datasets_markdown

    page = datasets_markdown()
    assert "| `rotation` | scalar | float32 | factor | [0, 6.28319] |" in page  # shapes
    assert "| `gaze_x` | scalar | float32 | factor | [-1, 1] |" in page  # faces
    assert "| `class` | scalar | int64 | label | — | square, ellipse, triangle, heart |" in page
