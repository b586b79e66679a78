"""Loaders for user data (npz, IDX, image folders), splits and fields; errors before training."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest

from latentspec.cli import main
from latentspec.data.pipeline import SplitData, split_rows
from latentspec.spec import load_spec, validate_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SPEC = """latentspec: 1
name: user_data
data:
  dataset: {dataset}
  split: {{train: 0.75, test: 0.25}}
  fields:
    x: {{from: images, scale: [0, 1], shape: [1, 8, 8]}}
    y: {{from: labels, classes: 3}}
  batch: 4
latents:
  z: {{dim: 2, prior: none}}
nodes:
  enc: {{module: mlp, in: x, out: z, hidden: [8], dim: 2}}
  dec: {{module: mlp, in: z, out: x_hat, hidden: [8], shape: [1, 8, 8], out_activation: sigmoid}}
objective:
  rec: {{term: mse, in: [x_hat, x]}}
"""


def images_and_labels(n=40):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 8, 8), dtype=np.uint8), (np.arange(n) % 3).astype(np.uint8)


def write_idx(path, arr, gz):
    codes = {np.dtype(np.uint8): 0x08}
    head = b"\x00\x00" + bytes([codes[arr.dtype], arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(head + arr.tobytes())


def spec_for(tmp_path, dataset: str):
    p = tmp_path / "spec.yaml"
    p.write_text(SPEC.format(dataset=dataset))
    return load_spec(str(p))


def check(spec, images, labels):
    train, test = SplitData.build(spec, "train"), SplitData.build(spec, "test")
    assert len(train) == 30 and len(test) == 10
    rows = split_rows(spec)
    assert not set(rows["train"]) & set(rows["test"])
    x = train.fields["x"].numpy()
    assert x.shape == (30, 1, 8, 8) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    np.testing.assert_allclose(x[:, 0], images[rows["train"]] / 255.0, atol=1e-6)
    assert train.fields["y"].numpy().tolist() == labels[rows["train"]].tolist()


def test_npz(tmp_path):
    images, labels = images_and_labels()
    np.savez(tmp_path / "d.npz", images=images, labels=labels)
    check(spec_for(tmp_path, "{npz: d.npz}"), images, labels)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_idx(tmp_path, gz):
    images, labels = images_and_labels()
    os.makedirs(tmp_path / "mnist")
    ext = ".gz" if gz else ""
    write_idx(tmp_path / "mnist" / f"train-images-idx3-ubyte{ext}", images, gz)
    write_idx(tmp_path / "mnist" / f"train-labels-idx1-ubyte{ext}", labels, gz)
    check(spec_for(tmp_path, "{idx: mnist}"), images, labels)


def test_image_folder(tmp_path):
    from PIL import Image

    images, labels = images_and_labels()
    for i, (im, c) in enumerate(zip(images, labels)):
        d = tmp_path / "imgs" / f"class{c}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(d / f"{i:03d}.png")
    spec = spec_for(tmp_path, "{images: imgs}")
    train = SplitData.build(spec, "train")
    assert train.fields["x"].shape == (30, 1, 8, 8)
    assert set(train.fields["y"].tolist()) == {0, 1, 2}


def test_split_is_seeded(tmp_path):
    images, labels = images_and_labels()
    np.savez(tmp_path / "d.npz", images=images, labels=labels)
    a = split_rows(spec_for(tmp_path, "{npz: d.npz}"))["train"]
    (tmp_path / "spec.yaml").write_text(
        SPEC.format(dataset="{npz: d.npz}").replace("name: user_data", "name: user_data\nseed: 7")
    )
    b = split_rows(load_spec(str(tmp_path / "spec.yaml")))["train"]
    assert sorted(a) != sorted(b)


def test_missing_file_is_located(tmp_path, capsys):
    p = tmp_path / "spec.yaml"
    p.write_text(SPEC.format(dataset="{npz: nowhere.npz}"))
    assert main(["validate", str(p)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{p}:4:12: error: $.data.dataset: dataset npz: no such file: ")


def test_wrong_shape_is_located(tmp_path):
    images, labels = images_and_labels()
    np.savez(tmp_path / "d.npz", images=images, labels=labels)
    text = SPEC.format(dataset="{npz: d.npz}").replace("shape: [1, 8, 8]}", "shape: [1, 9, 9]}", 1)
    _, diags = validate_text(text, str(tmp_path / "s.yaml"))
    (d,) = [d for d in diags if d.path == "$.data.fields.x.shape"]
    assert (d.line, d.col, d.severity) == (7, 45, "error")
    assert "has 81 values but array 'images' has shape [8, 8] (64 values)" in d.message


def test_mnist5k_is_shipped():
    spec = load_spec(os.path.join(ROOT, "specs", "vae_mnist.yaml"))
    train = SplitData.build(spec, "train")
    assert len(train) == 4000 and train.fields["x"].shape == (4000, 1, 28, 28)
    assert np.bincount(train.fields["y"].numpy(), minlength=10).min() > 300
