"""Every user-facing error is one line naming the file and field: images, .npz files, seeds,
the python-module refusal; and the last-resort handler is short and offers --debug."""

from __future__ import annotations

import argparse
import pickle

import numpy as np
import pytest
from _reliability import VAE, no_internal_error
from PIL import Image

import latentspec.cli as cli
from latentspec.cli import main

IMAGES_SPEC = """\
latentspec: 1
name: ae_images
data:
  dataset: {{images: {{path: {path}, size: [8, 8]}}}}
  split: {{train: 6, test: 2}}
  fields:
    x: {{from: images, scale: [0, 1], shape: [1, 8, 8]}}
  batch: 4
nodes:
  enc: {{module: mlp, in: x, out: h, dim: 2}}
  dec: {{module: mlp, in: h, out: x_hat, shape: [1, 8, 8]}}
objective:
  recon: {{term: mse, in: [x_hat, x]}}
train:
  optimizer: {{name: adam, lr: 1e-3}}
  epochs: 1
  samples_every: 0
"""

NPZ_SPEC = IMAGES_SPEC.replace("{{images: {{path: {path}, size: [8, 8]}}}}", "{{npz: {path}}}").replace(
    "from: images", "from: x"
)


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    no_internal_error(err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def image_folder(tmp_path, bad: str):
    root = tmp_path / "imgs"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(4):
            Image.new("L", (8, 8), 40 * i).save(root / c / f"{i}.png")
    path = root / "b" / "3.png"
    if bad == "truncated":
        path.write_bytes(path.read_bytes()[:-30])
    elif bad == "garbage":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    return root, path


@pytest.mark.parametrize("bad", ["truncated", "garbage", "bomb"])
def test_corrupt_or_oversized_images_name_the_file(tmp_path, capsys, monkeypatch, bad):
    root, _ = image_folder(tmp_path, bad)
    if bad == "bomb":
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 16)  # 64 pixels is a "bomb" under this limit
    spec = tmp_path / "s.yaml"
    spec.write_text(IMAGES_SPEC.format(path=root))
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--quiet", "--device", "cpu"]) == 1
    line = error_line(capsys)
    assert str(root / ("a/0.png" if bad == "bomb" else "b/3.png")) in line
    if bad == "bomb":
        assert "decompression-bomb limit" in line


@pytest.mark.parametrize("content", ["empty", "garbage", "pickle", "object", "truncated", "no arrays", "text"])
def test_bad_npz_files_are_one_line_without_pickle_advice(tmp_path, capsys, content):
    path = tmp_path / "d.npz"
    if content == "empty":
        path.write_bytes(b"")
    elif content == "garbage":
        path.write_bytes(bytes(range(256)) * 4)
    elif content == "pickle":
        path.write_bytes(pickle.dumps({"x": [1, 2, 3]}))
    elif content == "object":
        np.savez(path, x=np.array([{"a": 1}] * 8, dtype=object))
    elif content == "truncated":
        np.savez_compressed(path, x=np.random.default_rng(0).normal(size=(8, 1, 8, 8)))
        path.write_bytes(path.read_bytes()[:300])
    elif content == "no arrays":
        np.savez(path)
    else:
        np.savez(path, x=np.array(["a"] * 8))
    spec = tmp_path / "s.yaml"
    spec.write_text(NPZ_SPEC.format(path=path))
    code = main(["train", str(spec), "--out", str(tmp_path / "run"), "--quiet", "--device", "cpu"])
    out = capsys.readouterr()
    no_internal_error(out.err)
    assert code == 1
    lines = [line for line in out.err.splitlines() if line.strip()]
    assert len(lines) == 1 and str(path) in lines[0], out.err
    assert "allow_pickle" not in out.err and "unsafely" not in out.err


@pytest.mark.parametrize("seed", ["-1", str(2**64), "abc"])
def test_sample_seed_out_of_range_is_a_usage_error(trained_run, tmp_path, capsys, seed):
    with pytest.raises(SystemExit) as exit_:
        main(["sample", trained_run, "--seed", seed, "-o", str(tmp_path / "s.png")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--seed" in err and "Traceback" not in err


def test_the_largest_seed_samples(trained_run, tmp_path):
    assert main(["sample", trained_run, "-n", "4", "--seed", str(2**64 - 1), "-o", str(tmp_path / "s.png")]) == 0


def _options(command: str) -> set[str]:
    parser = cli._parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {o for a in sub._actions for o in a.option_strings}


def test_the_python_module_refusal_names_a_flag_of_each_command_that_compiles(tmp_path, capsys):
    with open(VAE) as f:
        text = f.read()
    mlp = "{module: mlp, in: x, out: h, hidden: [400], activation: relu}"
    assert mlp in text
    spec = tmp_path / "py.yaml"
    spec.write_text(
        text.replace(mlp, "{module: python, class: 'collections:OrderedDict', in: x, out: h, shape: [400]}")
    )
    assert main(["compile", str(spec)]) == 1
    line = error_line(capsys)
    flag = next(word.strip(",.;") for word in line.split() if word.startswith("--"))
    for command in ("compile", "train", "eval", "export", "sample"):
        assert flag in _options(command), command


def test_the_last_resort_handler_is_short_and_offers_debug(monkeypatch, capsys):
    def broken(args):
        raise ZeroDivisionError("an unforeseen bug\nwith a second line")

    monkeypatch.setitem(cli.COMMANDS, "schema", broken)
    assert main(["schema"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "internal error in `latentspec schema`" in err and "ZeroDivisionError" in err and "--debug" in err
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "schema"])


@pytest.mark.parametrize(
    "command",
    [
        ["export", "RUN", "--out", "/sys/latentspec-bundle"],
        ["sample", "RUN", "-o", "/sys/latentspec.png"],
        ["compile", VAE, "-o", "/sys/latentspec.txt"],
    ],
)
def test_outputs_that_cannot_be_written_are_one_line(trained_run, capsys, command):
    code = main([trained_run if c == "RUN" else c for c in command])
    assert code in (1, 2)
    assert "/sys/" in error_line(capsys)
