"""Execution providers (what onnxruntime really runs on) and the torch-free promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from latentspec_runtime import Bundle, BundleError, InputError

HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime-gpu and a CUDA device")


def test_cpu_providers(bundle_dir: Path) -> None:
    assert Bundle.load(bundle_dir, device="cpu").providers == ["CPUExecutionProvider"]


def test_auto_reports_what_the_session_got(bundle_dir: Path) -> None:
    bundle = Bundle.load(bundle_dir, device="auto", threads=1)
    providers = bundle.providers
    assert providers == bundle._entries["decode"].session.get_providers()
    if not HAS_CUDA:
        assert providers == ["CPUExecutionProvider"]


def test_bad_device_and_threads(bundle_dir: Path) -> None:
    with pytest.raises(InputError, match="device must be one of auto, cpu, cuda, got 'gpu'"):
        Bundle.load(bundle_dir, device="gpu")
    with pytest.raises(InputError, match="threads must be an integer >= 1, got 0"):
        Bundle.load(bundle_dir, threads=0)


def test_io_binding_path_gives_the_same_outputs(bundle_dir: Path) -> None:
    # The CUDA path runs through IO binding; onnxruntime's CPU provider supports it too.
    plain, bound = Bundle.load(bundle_dir, device="cpu"), Bundle.load(bundle_dir, device="cpu")
    for entry in ("encode", "refine", "invert"):
        bound._session(bound._entries[entry])
        bound._entries[entry].cuda = True
    x = np.random.default_rng(0).random((3, 1, 4, 4)).astype(np.float32)
    for key, value in plain.encode(x).items():
        np.testing.assert_array_equal(bound.encode(x)[key], value)
    flat = x.reshape(3, 16)
    np.testing.assert_array_equal(bound.refine(flat, 2), plain.refine(flat, 2))
    np.testing.assert_array_equal(bound.invert(flat, steps=3)["z"], plain.invert(flat, steps=3)["z"])


@pytest.mark.skipif(HAS_CUDA, reason="onnxruntime offers CUDA here")
def test_cuda_without_cuda_is_a_clear_error(bundle_dir: Path) -> None:
    with pytest.raises(BundleError) as err:
        Bundle.load(bundle_dir, device="cuda")
    message = str(err.value)
    assert message.startswith("device 'cuda' was asked for, but onnxruntime offers only")
    assert "pip install 'latentspec-runtime[gpu]'" in message


@needs_cuda
def test_cuda_parity(bundle_dir: Path) -> None:
    gpu = Bundle.load(bundle_dir, device="cuda")
    cpu = Bundle.load(bundle_dir, device="cpu")
    assert gpu.providers[0] == "CUDAExecutionProvider"
    rng = np.random.default_rng(0)
    z = rng.standard_normal((8, 4)).astype(np.float32)
    x = rng.random((8, 1, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(gpu.decode(z), cpu.decode(z), atol=1e-4)
    for key, value in gpu.encode(x).items():
        np.testing.assert_allclose(value, cpu.encode(x)[key], atol=1e-4)
    np.testing.assert_allclose(gpu.refine(x.reshape(8, 16), 4), cpu.refine(x.reshape(8, 16), 4), atol=1e-4)
    np.testing.assert_allclose(
        gpu.invert(x.reshape(8, 16), steps=20)["z"], cpu.invert(x.reshape(8, 16), steps=20)["z"], atol=1e-4
    )


def test_torch_and_latentspec_are_never_imported(
    bundle_dir: Path, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    code = (
        "import sys, numpy as np, latentspec_runtime\n"
        f"b = latentspec_runtime.Bundle.load({str(bundle_dir)!r}, device='cpu')\n"
        "b.decode(np.zeros(4, np.float32)); b.sample(2); b.invert(np.zeros(16, np.float32), steps=2)\n"
        "b.info()\n"
        "import latentspec_runtime.cli\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'latentspec')]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=subprocess_env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
