"""Bad inputs to the runtime are one clear line: strict manifests, bounded nesting, symlinks
that leave the bundle, non-finite inputs, bad .npy files and images, seeds out of range; and
the CLI's last-resort handler is reached by none of them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import latentspec_runtime._bundle as bundle_module
from latentspec_runtime import Bundle
from latentspec_runtime._manifest import BundleError, InputError, loads_strict
from latentspec_runtime.cli import main


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


# -- manifests --------------------------------------------------------------------------------


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_manifest_with_nan_is_refused(bundle_dir: Path, constant: str) -> None:
    path = bundle_dir / "manifest.json"
    path.write_text(path.read_text().replace('"neg_elbo": 12.5', f'"neg_elbo": {constant}'))
    assert constant in path.read_text()
    with pytest.raises(BundleError, match=f"{constant} is not a JSON number"):
        Bundle.load(bundle_dir, device="cpu")


def test_strict_json_rejects_nan_through_parse_constant() -> None:
    assert json.loads("[NaN]")[0] != json.loads("[NaN]")[0]  # Python's default reads NaN
    with pytest.raises(ValueError, match="NaN is not a JSON number"):
        loads_strict("[NaN]")


@pytest.mark.parametrize("depth", [100, 100_000])
def test_an_absurdly_deep_manifest_is_refused(bundle_dir: Path, depth: int) -> None:
    path = bundle_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    text = json.dumps(manifest)[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    path.write_text(text)
    with pytest.raises(BundleError, match="nested too deeply"):
        Bundle.load(bundle_dir, device="cpu")


def test_a_symlink_leaving_the_bundle_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.onnx"
    outside.write_bytes((bundle_dir / "decode.onnx").read_bytes())  # same bytes: the hash matches
    (bundle_dir / "decode.onnx").unlink()
    os.symlink(outside, bundle_dir / "decode.onnx")
    with pytest.raises(BundleError, match=r"decode.onnx: a symlink .* leaves the bundle folder"):
        Bundle.load(bundle_dir, device="cpu")


def test_a_symlink_inside_the_bundle_is_fine(bundle_dir: Path) -> None:
    os.replace(bundle_dir / "decode.onnx", bundle_dir / "decode.real")
    os.symlink("decode.real", bundle_dir / "decode.onnx")
    Bundle.load(bundle_dir, device="cpu").decode(np.zeros(4, np.float32))


# -- inputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_refused_when_asked(bundle_dir: Path, bad: float) -> None:
    z = np.zeros((3, 4), np.float32)
    z[1, 2] = bad
    assert Bundle.load(bundle_dir, device="cpu").decode(z).shape == (3, 1, 4, 4)  # the API default runs
    strict = Bundle.load(bundle_dir, device="cpu", finite=True)
    with pytest.raises(InputError, match=rf"entry 'decode': input 'z' holds {bad} at index \[1, 2\]"):
        strict.decode(z)


def test_the_cli_refuses_non_finite_inputs_by_default(bundle_dir: Path, tmp_path: Path, capsys) -> None:
    z = np.zeros((2, 4), np.float32)
    z[0, 3] = np.nan
    np.save(tmp_path / "z.npy", z)
    args = ["decode", str(bundle_dir), str(tmp_path / "z.npy"), "-o", str(tmp_path / "x.npy"), "--device", "cpu"]
    assert main(args) == 1
    assert "input 'z' holds nan at index [0, 3]" in error_line(capsys)
    assert not (tmp_path / "x.npy").exists()
    assert main([*args, "--allow-nonfinite"]) == 0


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage bytes", b"\x93NUMPY\x01\x00\x10\x00{'descr'", b"PK\x03\x04zip?", "pickle", "object", "npz"],
)
def test_bad_npy_files_are_one_line_without_pickle_advice(bundle_dir: Path, tmp_path: Path, capsys, content) -> None:
    path = tmp_path / "z.npy"
    if content == "pickle":
        import pickle

        path.write_bytes(pickle.dumps([1, 2]))
    elif content == "object":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif content == "npz":
        with open(path, "wb") as f:
            np.savez(f, z=np.zeros(4))
    else:
        path.write_bytes(content)
    assert main(["decode", str(bundle_dir), str(path), "-o", str(tmp_path / "x.npy"), "--device", "cpu"]) == 1
    line = error_line(capsys)
    assert str(path) in line and "allow_pickle" not in line and "unsafely" not in line


@pytest.mark.parametrize("kind", ["truncated", "garbage", "bomb"])
def test_corrupt_or_oversized_images_are_one_line(bundle_dir: Path, tmp_path: Path, capsys, monkeypatch, kind) -> None:
    path = tmp_path / "x.png"
    Image.new("L", (4, 4), 128).save(path)
    if kind == "truncated":
        path.write_bytes(path.read_bytes()[:-20])
    elif kind == "garbage":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    else:
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4)  # 16 pixels is a "bomb" under this limit
    assert main(["encode", str(bundle_dir), str(path), "-o", str(tmp_path / "z.npy"), "--device", "cpu"]) == 1
    line = error_line(capsys)
    assert str(path) in line
    if kind == "bomb":
        assert "decompression-bomb limit" in line


@pytest.mark.parametrize("seed", ["-1", str(2**64), "x"])
def test_seeds_out_of_range_are_usage_errors(bundle_dir: Path, tmp_path: Path, capsys, seed: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["sample", str(bundle_dir), "--seed", seed, "-o", str(tmp_path / "s.npy")])
    assert exit_.value.code == 2
    assert "--seed" in capsys.readouterr().err


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, "0"])
def test_api_seeds_out_of_range_are_input_errors(bundle: Bundle, seed) -> None:
    with pytest.raises(InputError, match="seed must be an integer"):
        bundle.sample(2, seed=seed)


def test_the_last_resort_handler_is_one_line_with_a_debug_hint(bundle_dir: Path, tmp_path: Path, capsys, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("an unforeseen bug\nsecond line")

    monkeypatch.setattr(bundle_module.Bundle, "sample", broken)
    assert main(["sample", str(bundle_dir), "-o", str(tmp_path / "s.npy"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "internal error" in err and "--debug" in err and "RuntimeError" in err
    with pytest.raises(RuntimeError):
        main(["sample", str(bundle_dir), "-o", str(tmp_path / "s.npy"), "--device", "cpu", "--debug"])
