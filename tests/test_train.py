"""Training: run directories, determinism, bit-exact resume (also after kill -9), eval, torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from latentspec.cli import main
from latentspec.spec import load_spec
from latentspec.train.trainer import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VAE = os.path.join(ROOT, "specs", "vae_mnist.yaml")
SMALL = ["data.split.train=512", "data.split.test=128", "data.batch=64", "train.samples_every=0"]


def sets(overrides) -> list[str]:
    return [arg for s in overrides for arg in ("--set", s)]


def small(*extra: str):
    return load_spec(VAE, [*SMALL, *extra])


def weights(run: str) -> dict[str, torch.Tensor]:
    return load_file(os.path.join(run, "checkpoints", "last", "weights.safetensors"))


def epoch_rows(run: str) -> list[dict]:
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return [r for r in map(json.loads, f) if r["kind"] == "epoch"]


def assert_same_weights(a: str, b: str) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def test_run_directory(tmp_path):
    run = str(tmp_path / "run")
    train(small("train.epochs=2", "train.samples_every=1"), run, quiet=True, device="cpu")
    assert sorted(os.listdir(run)) == ["checkpoints", "history.jsonl", "metrics.jsonl", "samples", "spec.yaml"]
    assert sorted(os.listdir(os.path.join(run, "checkpoints"))) == ["best", "last"]
    assert sorted(os.listdir(os.path.join(run, "checkpoints", "last"))) == [
        "optimizer.safetensors",
        "state.json",
        "weights.safetensors",
    ]
    assert sorted(os.listdir(os.path.join(run, "samples"))) == ["epoch-001.png", "epoch-002.png"]
    rows = epoch_rows(run)
    assert [r["epoch"] for r in rows] == [1, 2]
    for r in rows:
        assert set(r) >= {"kind", "stage", "epoch", "seconds", "train", "test"}
        assert set(r["train"]) == set(r["test"]) == {"recon", "kl"}
    assert rows[1]["test"]["recon"] < rows[0]["test"]["recon"]
    # the resolved spec in the run validates and reproduces the overrides
    assert load_spec(os.path.join(run, "spec.yaml")).data.split["train"] == 512


def test_same_seed_same_numbers(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    for run in (a, b):
        train(small("train.epochs=2"), run, quiet=True, device="cpu")
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("seconds", "images_per_second")} for r in rows]  # noqa: E731
    assert strip(epoch_rows(a)) == strip(epoch_rows(b))
    assert_same_weights(a, b)


def test_resume_is_bit_exact(tmp_path):
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    train(small("train.epochs=4"), full, quiet=True, device="cpu")
    train(small("train.epochs=2"), part, quiet=True, device="cpu")
    # more epochs is a changed training setting: --force (recorded in the run's history)
    train(small("train.epochs=4"), part, resume=True, force=True, quiet=True, device="cpu")
    assert_same_weights(full, part)
    opt_a = load_file(os.path.join(full, "checkpoints", "last", "optimizer.safetensors"))
    opt_b = load_file(os.path.join(part, "checkpoints", "last", "optimizer.safetensors"))
    assert all(torch.equal(opt_a[k], opt_b[k]) for k in opt_a)
    assert [r["train"] for r in epoch_rows(full)] == [r["train"] for r in epoch_rows(part)]


def test_existing_run_needs_resume(tmp_path, capsys):
    run = str(tmp_path / "run")
    args = ["train", VAE, "--out", run, "--quiet", "--device", "cpu", *sets([*SMALL, "train.epochs=1"])]
    assert main(args) == 0
    assert main(args) == 1
    assert "--resume" in capsys.readouterr().err


def test_kill_9_then_resume(tmp_path):
    ref, run = str(tmp_path / "ref"), str(tmp_path / "run")
    extra = ["train.epochs=12", "data.split.train=1024"]
    train(small(*extra), ref, quiet=True, device="cpu")
    args = [sys.executable, "-m", "latentspec", "train", VAE, "--out", run, "--quiet", "--device", "cpu"]
    args += sets([*SMALL, *extra])
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if os.path.exists(os.path.join(run, "metrics.jsonl")) and len(epoch_rows(run)) >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(epoch_rows(run))
    assert 2 <= done < 12, "the run finished before it could be killed"
    train(small(*extra), run, resume=True, quiet=True, device="cpu")
    assert [r["epoch"] for r in epoch_rows(run)] == list(range(1, 13))
    assert_same_weights(ref, run)


def test_eval_reports_vae_metrics(tmp_path, capsys):
    run = str(tmp_path / "run")
    train(small("train.epochs=3"), run, quiet=True, device="cpu")
    assert main(["eval", run, "--iwae", "50", "--probe", "y"]) == 0
    result = json.loads(capsys.readouterr().out)
    test = result["test"]
    assert set(test) >= {"recon", "kl", "neg_elbo", "iwae_nll", "active_units", "probe_accuracy"}
    assert test["iwae_nll"] < test["neg_elbo"]
    assert 0 < test["active_units"] <= 20
    assert 0.3 < test["probe_accuracy"] <= 1.0
    with open(os.path.join(run, "eval.json")) as f:
        assert json.load(f) == result


def test_sample_cli(tmp_path):
    run = str(tmp_path / "run")
    train(small("train.epochs=1"), run, quiet=True, device="cpu")
    out = tmp_path / "grid.png"
    assert main(["sample", run, "-n", "16", "--out", str(out)]) == 0
    from PIL import Image

    with Image.open(out) as im:
        assert im.size[0] > 4 * 28


def test_not_a_run_directory(tmp_path, capsys):
    assert main(["eval", str(tmp_path)]) == 1
    assert "not a run directory" in capsys.readouterr().err


def test_torchrun_two_cpu_processes(tmp_path):
    run = str(tmp_path / "ddp")
    args = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "latentspec",
        "train",
        VAE,
        "--out",
        run,
        "--quiet",
        "--device",
        "cpu",
    ]
    args += sets([*SMALL, "train.epochs=2"])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = epoch_rows(run)
    assert [r["epoch"] for r in rows] == [1, 2]  # rank 0 alone writes
    assert all(torch.isfinite(v).all() for v in weights(run).values())
    assert rows[1]["train"]["recon"] < rows[0]["train"]["recon"]


@pytest.mark.parametrize("overrides", [["data.split.train=20000"]], ids=["too-many-rows"])
def test_bad_split_is_a_clear_error(tmp_path, capsys, overrides):
    args = ["train", VAE, "--out", str(tmp_path / "r"), "--quiet"] + sets(overrides)
    assert main(args) == 1
    assert "data.split asks for" in capsys.readouterr().err
