"""Experiment tracking: TensorBoard event files and MLflow runs, streamed live or back-filled."""

from __future__ import annotations

import json
import os
import sys

import pytest
from _tinyvae import write_tiny

from latentspec.cli import main
from latentspec.track import eval_scalars, row_scalars

pytest.importorskip("tensorboard", reason="CI installs latentspec[tensorboard]")


def epoch_rows(run: str) -> list[dict]:
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return [r for r in map(json.loads, f) if r["kind"] == "epoch"]


def events(logdir: str):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(logdir, size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_row_scalars_name_every_logged_value():
    row = {
        "kind": "epoch",
        "epoch": 3,
        "step": 30,
        "seconds": 2.0,
        "images_per_second": 400.0,
        "lr": [0.001, 0.01],
        "weights": {"kl": 0.5},
        "train": {"recon": 90.0, "kl": 4.0},
        "test": {"recon": 95.0},
    }
    assert row_scalars(row) == {
        "train/recon": 90.0,
        "train/kl": 4.0,
        "test/recon": 95.0,
        "lr/0": 0.001,
        "lr/1": 0.01,
        "weight/kl": 0.5,
        "images_per_second": 400.0,
        "seconds": 2.0,
        "epoch": 3.0,
    }
    assert row_scalars({"kind": "step", "step": 7, "loss": 1.5, "terms": {"recon": 1.0}}) == {
        "step/loss": 1.5,
        "step/recon": 1.0,
    }
    assert eval_scalars({"test": {"neg_elbo": 90.5, "claims": {"beats_pca": True}}, "checkpoint": "last"}) == {
        "eval/test/neg_elbo": 90.5,
        "eval/test/claims/beats_pca": 1.0,
    }


def test_tensorboard_holds_scalars_grids_spec_and_hparams(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = write_tiny(tmp_path)
    run = str(tmp_path / "run")
    sets = ["--set", "train.epochs=2", "--set", "train.samples_every=1"]
    assert main(["train", spec, "--out", run, "--quiet", "--track", "tensorboard", *sets]) == 0
    assert main(["eval", run]) == 0
    acc = events(os.path.join(run, "tensorboard"))
    rows = epoch_rows(run)
    for term in ("recon", "kl"):
        for split in ("train", "test"):
            got = [(e.step, e.value) for e in acc.Scalars(f"{split}/{term}")]
            assert got == [(r["step"], pytest.approx(r[split][term], rel=1e-6)) for r in rows]
    assert [e.value for e in acc.Scalars("lr")] == [pytest.approx(1e-3)] * 2
    assert [e.value for e in acc.Scalars("weight/kl")] == [1.0, 1.0]
    assert len(acc.Scalars("images_per_second")) == 2
    with open(os.path.join(run, "eval.json")) as f:
        neg_elbo = json.load(f)["test"]["neg_elbo"]
    assert [e.value for e in acc.Scalars("eval/test/neg_elbo")] == [pytest.approx(neg_elbo, rel=1e-6)]
    images = acc.Images("samples")
    assert [i.step for i in images] == [r["step"] for r in rows]
    assert images[0].width > 28 and images[0].height > 28
    assert "spec/text_summary" in acc.Tags()["tensors"]
    text = acc.Tensors("spec/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "tiny_vae" in text and "bernoulli_nll" in text
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(acc.PluginTagToContent("hparams"))


def test_mlflow_run_holds_params_metrics_grids_and_bundle(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="CI installs latentspec[mlflow]")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    spec = write_tiny(tmp_path)
    run, bundle = str(tmp_path / "run"), str(tmp_path / "bundle")
    sets = ["--set", "train.epochs=2", "--set", "train.samples_every=1"]
    track = ["--set", f"train.track=[{{mlflow: {{uri: '{uri}', experiment: exp1}}}}]"]
    assert main(["train", spec, "--out", run, "--quiet", *sets, *track]) == 0
    assert main(["eval", run]) == 0
    assert main(["export", run, "--out", bundle]) == 0

    with open(os.path.join(run, "track.json")) as f:
        state = json.load(f)["mlflow"]
    assert state["uri"] == uri
    client = MlflowClient(uri)
    got = client.get_run(state["run_id"])
    assert got.info.status == "FINISHED"
    assert client.get_experiment(got.info.experiment_id).name == "exp1"
    params = got.data.params
    assert params["train.optimizer.lr"] == "0.001" and params["latents.z.dim"] == "4" and params["name"] == "tiny_vae"
    rows = epoch_rows(run)
    history = client.get_metric_history(state["run_id"], "test/recon")
    assert [(m.step, m.value) for m in history] == [(r["step"], pytest.approx(r["test"]["recon"])) for r in rows]
    assert "eval/test/neg_elbo" in got.data.metrics and "lr" in got.data.metrics

    def files(path=None):
        for f in client.list_artifacts(state["run_id"], path):
            yield from files(f.path) if f.is_dir else [f.path]

    arts = set(files())
    assert {"spec.yaml", "samples/epoch-001.png", "samples/epoch-002.png", "bundle/manifest.json"} <= arts
    assert "bundle/sample.onnx" in arts


def test_backfill_replays_runs_into_both_sinks(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="CI installs latentspec[mlflow]")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    spec = write_tiny(tmp_path)
    run = str(tmp_path / "run")
    assert main(["train", spec, "--out", run, "--quiet", "--set", "train.epochs=2"]) == 0
    assert not os.path.exists(os.path.join(run, "tensorboard"))
    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    for _ in range(2):  # a second back-fill replaces the TensorBoard events instead of doubling them
        assert main(["track", run, "--to", "tensorboard", "--to", "mlflow", "--uri", uri]) == 0
    rows = epoch_rows(run)
    acc = events(os.path.join(run, "tensorboard"))
    assert [(e.step, e.value) for e in acc.Scalars("test/kl")] == [
        (r["step"], pytest.approx(r["test"]["kl"], rel=1e-6)) for r in rows
    ]
    with open(os.path.join(run, "track.json")) as f:
        state = json.load(f)["mlflow"]
    history = MlflowClient(uri).get_metric_history(state["run_id"], "train/recon")
    assert [m.value for m in history] == [pytest.approx(r["train"]["recon"]) for r in rows]


def test_tracker_names_are_checked(tmp_path, capsys):
    spec = write_tiny(tmp_path, "")
    rc = main(["validate", spec, "--set", "train.track=[tensorbord]"])
    assert rc == 1 and "$.train.track[0]" in capsys.readouterr().out
    rc = main(["train", spec, "--out", str(tmp_path / "r"), "--track", "tensorbord"])
    err = capsys.readouterr().err
    assert rc == 1 and "--track tensorbord: no such tracker (did you mean 'tensorboard'?)" in err
    rc = main(["track", str(tmp_path / "nothing"), "--to", "mlflow"])
    assert rc == 1 and "not a run directory" in capsys.readouterr().err


@pytest.mark.parametrize(("module", "extra"), [("mlflow", "mlflow"), ("tensorboard", "tensorboard")])
def test_a_missing_extra_names_its_install_command(tmp_path, monkeypatch, capsys, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # importing it raises ImportError
    spec = write_tiny(tmp_path)
    rc = main(["train", spec, "--out", str(tmp_path / "r"), "--quiet", "--track", module])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"pip install 'latentspec[{extra}]'" in err and "Traceback" not in err
    assert not os.path.exists(tmp_path / "r")  # refused before training


def test_every_registered_tracker_has_a_sink():
    from latentspec.registries import load_all
    from latentspec.track import SINKS

    load_all()
    from latentspec.components import TRACKERS

    assert set(SINKS) == set(TRACKERS.names())
