"""Non-finite values never become results: data, spec values, training, export, manifests."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch
from _reliability import TINY, VAE, no_internal_error, train_args
from safetensors.torch import load_file, save_file

from latentspec._finite import NonFiniteError, check_arrays, strict_json_dumps, strict_json_loads
from latentspec.cli import main
from latentspec.run import checkpoint as ckpt
from latentspec.spec import load_spec, validate_text

NPZ_SPEC = """\
latentspec: 1
name: ae_npz
data:
  dataset: {{npz: {path}}}
  split: {{train: 48, test: 16}}
  fields:
    x: {{from: x}}
  batch: 16
nodes:
  enc: {{module: mlp, in: x, out: h, dim: 2}}
  dec: {{module: mlp, in: h, out: x_hat, dim: 4}}
objective:
  recon: {{term: mse, in: [x_hat, x]}}
train:
  optimizer: {{name: adam, lr: 1e-3}}
  epochs: 1
  samples_every: 0
"""


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    no_internal_error(err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


# -- data -------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_or_inf_in_data_is_found_at_load_naming_array_and_index(tmp_path, capsys, bad):
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    x[37, 2] = bad
    np.savez(tmp_path / "d.npz", x=x)
    spec = tmp_path / "s.yaml"
    spec.write_text(NPZ_SPEC.format(path="d.npz"))
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--quiet", "--device", "cpu"]) == 1
    line = error_line(capsys)
    assert "array 'x'" in line and "[37, 2]" in line and str(bad) in line
    assert not os.path.exists(tmp_path / "run" / "checkpoints")


def test_check_arrays_names_the_first_index():
    a = np.zeros((3, 2, 2), np.float32)
    a[2, 1, 0] = np.nan
    a[2, 1, 1] = np.inf
    with pytest.raises(NonFiniteError, match=r"array 'a' holds nan at index \[2, 1, 0\] \(2 non-finite values\)"):
        check_arrays("here", {"a": a, "labels": np.arange(3)})


# -- spec values ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [".nan", ".NaN", ".inf", "-.inf", "+.Inf"])
def test_non_finite_spec_values_are_validation_errors(value):
    with open(VAE) as f:
        text = f.read().replace("lr: 1.0e-3", f"lr: {value}")
    assert f"lr: {value}" in text
    spec, diags = validate_text(text, "vae.yaml")
    assert spec is None
    line = next(d for d in diags if "finite" in d.message)
    assert str(line).startswith("vae.yaml:") and line.path == "$.train.optimizer.lr"
    spec, diags = validate_text(text.replace(f"lr: {value}", "lr: 1e-3"), "vae.yaml", [f"train.epochs={value}"])
    assert spec is None and str(diags[0]).startswith("--set train.epochs: error: $.train.epochs:")


# -- training ---------------------------------------------------------------------------------


def test_training_stops_at_the_first_non_finite_loss_naming_term_step_epoch(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert main(train_args(run, "train.optimizer.lr=100")) == 1
    line = error_line(capsys)
    assert "term 'recon' is nan" in line and "epoch 1, step 2" in line
    assert not os.path.exists(os.path.join(run, "checkpoints"))  # no last, no best


def test_training_stops_at_a_non_finite_gradient(tmp_path):
    from latentspec.train.trainer import Trainer

    trainer = Trainer(load_spec(VAE, TINY), str(tmp_path / "run"), device="cpu", quiet=True)
    name, param = next(iter(trainer.model.named_parameters()))
    param.register_hook(lambda g: g * math.nan)  # the loss stays finite, one gradient does not
    with pytest.raises(NonFiniteError, match=rf"epoch 1, step 0: the gradient is nan \(first at parameter {name}\)"):
        trainer.run()
    assert not os.path.exists(tmp_path / "run" / "checkpoints")


def test_a_non_finite_evaluation_metric_stops_training_before_the_checkpoint(run_copy, monkeypatch, capsys):
    import latentspec.train.trainer as trainer

    before = ckpt.sha256_file(os.path.join(run_copy, "checkpoints", "last", "weights.safetensors"))
    monkeypatch.setattr(trainer, "evaluate_terms", lambda *a, **k: {"recon": math.inf, "kl": 1.0})
    assert main([*train_args(run_copy, "train.epochs=2"), "--resume", "--force"]) == 1
    line = error_line(capsys)
    assert "evaluation metric 'recon' is inf" in line and "epoch 2" in line
    last = os.path.join(run_copy, "checkpoints", "last")
    assert ckpt.load_state(last)["epoch"] == 1
    assert ckpt.sha256_file(os.path.join(last, "weights.safetensors")) == before


# -- export -----------------------------------------------------------------------------------


def test_export_refuses_non_finite_metrics(run_copy, tmp_path, capsys):
    with open(os.path.join(run_copy, "eval.json"), "w") as f:
        json.dump({"test": {"recon": math.nan}}, f)  # Python writes NaN, which is not JSON
    assert main(["export", run_copy, "--out", str(tmp_path / "b")]) == 1
    assert "metrics.test.recon is not finite" in error_line(capsys)
    assert not os.path.exists(tmp_path / "b")


def test_export_refuses_non_finite_weights(run_copy, tmp_path, capsys):
    last = os.path.join(run_copy, "checkpoints", "last")
    weights = load_file(os.path.join(last, "weights.safetensors"))
    key = sorted(weights)[0]
    weights[key][..., 0] = torch.inf
    save_file(weights, os.path.join(last, "weights.safetensors"))
    with open(os.path.join(last, "state.json")) as f:
        state = json.load(f)
    state["files"]["weights.safetensors"] = ckpt.sha256_file(os.path.join(last, "weights.safetensors"))
    with open(os.path.join(last, "state.json"), "w") as f:
        json.dump(state, f)
    assert main(["export", run_copy, "--out", str(tmp_path / "b")]) == 1
    assert f"non-finite weights ({key})" in error_line(capsys)


def test_manifests_are_strict_json():
    for text in ('{"a": NaN}', '{"a": Infinity}', '{"a": [1, -Infinity]}'):
        assert math.isnan(json.loads(text)["a"]) if "NaN" in text else True  # Python's default accepts them
        with pytest.raises(ValueError, match="not valid JSON"):
            strict_json_loads(text)
    with pytest.raises(ValueError):
        strict_json_dumps({"a": math.nan})
    assert strict_json_loads('{"a": 1.5e300}') == {"a": 1.5e300}


def test_the_exported_manifest_holds_no_nan(trained_run, tmp_path):
    from latentspec.errors import ExportError
    from latentspec.export._manifest import write_manifest

    with pytest.raises(ExportError, match=r"non-finite number at \$\.metrics\.test\.kl"):
        write_manifest(str(tmp_path), {"metrics": {"test": {"kl": math.inf}}})
    assert not os.listdir(tmp_path)
