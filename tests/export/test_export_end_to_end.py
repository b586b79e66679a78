"""End to end: train the VAE briefly, export the run with --verify, deploy it with the runtime
(examples/deploy_onnxruntime.py)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "deploy_onnxruntime.py"
VAE_TINY = ["data.split.train=300", "data.split.test=100", "train.epochs=1", "train.samples_every=0"]


@pytest.mark.slow
def test_train_export_deploy(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("deploy_onnxruntime", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main(["--out", str(tmp_path), "--epochs", "1", "--train-rows", "300"]) == 0
    assert (tmp_path / "samples.png").stat().st_size > 0
    assert (tmp_path / "reconstruction.png").stat().st_size > 0
    manifest = json.loads((tmp_path / "vae.bundle" / "manifest.json").read_text())
    # the run's last test metrics travel with the bundle
    assert set(manifest["metrics"]["test"]) == {"recon", "kl"}
    assert set(manifest["verified"]) == {"encode", "decode", "sample"}
    with open(tmp_path / "run" / "spec.yaml") as f:
        assert manifest["spec"]["text"].startswith("latentspec: 1") and "train: 300" in f.read()
    assert "providers: CPUExecutionProvider" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path)) == ["reconstruction.png", "run", "samples.png", "vae.bundle"]


@pytest.mark.slow
def test_directions_travel_with_the_bundle(tmp_path):
    import numpy as np

    import latentspec_runtime
    from latentspec.export import export_run
    from latentspec.spec import load_spec
    from latentspec.train.trainer import train

    spec = load_spec(str(EXAMPLE.parents[1] / "specs" / "vae_mnist.yaml"), [*VAE_TINY])
    train(spec, str(tmp_path / "run"), quiet=True, device="cpu")
    out = tmp_path / "b"
    manifest = export_run(
        str(tmp_path / "run"), str(out), entries=["encode", "decode"], directions=["one_to_seven=y:1:7"]
    )
    d = manifest["directions"]["one_to_seven"]
    assert d["latent"] == "z" and len(d["vector"]) == 20
    bundle = latentspec_runtime.Bundle.load(out, device="cpu")
    x = np.zeros((1, 28, 28), np.float32)
    assert bundle.edit(x, "one_to_seven", 1.0).shape == (1, 28, 28)
