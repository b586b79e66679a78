"""The command line: round trips through files, and one-line errors with exit statuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentspec_runtime import Bundle
from latentspec_runtime.cli import main


def cli(env: dict[str, str], *args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m latentspec_runtime ARGS`` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "latentspec_runtime", *map(str, args)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_info(bundle_dir: Path, subprocess_env: dict[str, str]) -> None:
    result = cli(subprocess_env, "info", bundle_dir, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "decode  (graph, decode.onnx, opset 18)" in result.stdout
    assert "providers: CPUExecutionProvider" in result.stdout


def test_sample_to_png_and_npy(bundle_dir: Path, subprocess_env: dict[str, str], tmp_path: Path) -> None:
    result = cli(subprocess_env, "sample", bundle_dir, "-n", "4", "--seed", "2", "-o", tmp_path / "s.png")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {tmp_path / 's.png'} (x_mean [4, 1, 4, 4])"
    with Image.open(tmp_path / "s.png") as image:
        assert image.size == (10, 10) and image.mode == "L"  # a 2x2 grid of 4x4, 2 px apart
    result = cli(subprocess_env, "sample", bundle_dir, "-n", "4", "--seed", "2", "-o", tmp_path / "s.npy")
    assert result.returncode == 0, result.stderr
    expected = Bundle.load(bundle_dir).sample(4, seed=2)
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), expected)


def test_decode_from_npy(bundle_dir: Path, subprocess_env: dict[str, str], tmp_path: Path) -> None:
    z = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    result = cli(subprocess_env, "decode", bundle_dir, tmp_path / "z.npy", "-o", tmp_path / "x.npy")
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), Bundle.load(bundle_dir).decode(z))


def test_errors_are_one_line_without_traceback(
    bundle_dir: Path, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    np.save(tmp_path / "z.npy", np.zeros((3, 5), np.float32))
    result = cli(subprocess_env, "decode", bundle_dir, tmp_path / "z.npy", "-o", tmp_path / "x.npy")
    assert result.returncode == 1
    assert result.stderr == (
        "latentspec-runtime: error: entry 'decode': input 'z' has shape [3, 5], expected [batch, 4]\n"
    )
    result = cli(subprocess_env, "decode", bundle_dir, tmp_path / "z.npy", "-o", tmp_path / "x.npy", "--debug")
    assert result.returncode == 1 and "Traceback" in result.stderr and "InputError" in result.stderr


def test_usage_errors_exit_2(bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["sample", str(bundle_dir)])  # no -o
    assert exit_.value.code == 2
    assert main(["sample", str(bundle_dir), "-o", str(tmp_path / "s.txt")]) == 2
    assert capsys.readouterr().err.endswith(
        "-o " + str(tmp_path / "s.txt") + ": write .npy, .npz or an image such as .png\n"
    )


def test_tampered_bundle(bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = bytearray((bundle_dir / "sample.onnx").read_bytes())
    data[50] ^= 1
    (bundle_dir / "sample.onnx").write_bytes(bytes(data))
    assert main(["sample", str(bundle_dir), "-o", str(tmp_path / "s.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("latentspec-runtime: error: ") and "sample.onnx" in err
    assert err.count("\n") == 1


def test_encode_folder_of_pngs(bundle: Bundle, bundle_dir: Path, tmp_path: Path) -> None:
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    images = np.random.default_rng(0).integers(0, 256, (3, 4, 4), dtype=np.uint8)
    for i, image in enumerate(images):
        Image.fromarray(image).convert("RGB").save(pngs / f"{i}.png")  # RGB -> the entry's 1 channel
    assert main(["encode", str(bundle_dir), str(pngs), "-o", str(tmp_path / "z.npy")]) == 0
    expected = bundle.code(images[:, None].astype(np.float32) / 255)
    np.testing.assert_allclose(np.load(tmp_path / "z.npy"), expected, atol=1e-5)
    assert main(["encode", str(bundle_dir), str(pngs), "-o", str(tmp_path / "all.npz")]) == 0
    assert set(np.load(tmp_path / "all.npz")) == {"z_mu", "z_logvar"}
    assert main(["encode", str(bundle_dir), str(pngs), "-o", str(tmp_path / "z.png")]) == 2  # codes


def test_image_commands(bundle: Bundle, bundle_dir: Path, tmp_path: Path) -> None:
    for i in range(2):
        Image.fromarray(np.full((4, 4), 50 + 100 * i, np.uint8)).save(tmp_path / f"{i}.png")
    a, b = str(tmp_path / "0.png"), str(tmp_path / "1.png")
    out = str(tmp_path / "out.png")
    assert main(["interpolate", str(bundle_dir), a, b, "--steps", "5", "-o", out]) == 0
    with Image.open(out) as image:
        assert image.size == (5 * 6 - 2, 4)  # one row of 5
    assert main(["reconstruct", str(bundle_dir), a, b, "-o", out]) == 0
    assert main(["edit", str(bundle_dir), a, "--direction", "up", "--alpha", "2", "-o", str(tmp_path / "e.npy")]) == 0
    x = np.full((1, 4, 4), 50 / 255, np.float32)
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), bundle.edit(x, "up", 2.0), atol=1e-6)
    assert main(["swap", str(bundle_dir), a, "-o", out]) == 0


def test_refine_and_inpaint_from_npy(bundle: Bundle, bundle_dir: Path, tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((2, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "m.npy", np.ones((2, 16), np.float32))
    assert (
        main(["refine", str(bundle_dir), str(tmp_path / "x.npy"), "--iterations", "0", "-o", str(tmp_path / "p.npy")])
        == 0
    )
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), 0.5 * x)
    args = ["inpaint", str(bundle_dir), str(tmp_path / "x.npy"), "--mask", str(tmp_path / "m.npy")]
    assert main([*args, "--steps", "3", "-o", str(tmp_path / "i.npz")]) == 0
    result = np.load(tmp_path / "i.npz")
    assert set(result) == {"x_hat", "z", "loss"}
    np.testing.assert_allclose(result["z"], bundle.inpaint(x, np.ones_like(x), steps=3)["z"], atol=1e-6)
    assert (
        main(["invert", str(bundle_dir), str(tmp_path / "x.npy"), "--steps", "2", "-o", str(tmp_path / "i.npy")]) == 0
    )
    assert np.load(tmp_path / "i.npy").shape == (2, 16)  # x_hat, the first output
