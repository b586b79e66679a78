"""The trainer's speed-ups keep training what it was: fused Adam by default, and a conv model's
resume stays bit-exact with it."""

from __future__ import annotations

import json
import os

import torch
from safetensors.torch import load_file

from latentspec.spec import load_spec
from latentspec.train.trainer import Trainer, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONV = os.path.join(ROOT, "specs", "conv_vae_mnist.yaml")
SMALL = ["data.split.train=192", "data.split.test=64", "data.batch=64", "train.samples_every=0"]


def _epochs(run: str) -> list[dict]:
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return [r for r in map(json.loads, f) if r["kind"] == "epoch"]


def test_the_trainer_builds_a_fused_optimizer(tmp_path):
    trainer = Trainer(load_spec(CONV, SMALL), str(tmp_path / "run"), device="cpu", quiet=True)
    _, _, optimizer, _ = trainer.begin_stage(trainer.spec.train.stages[0])
    assert optimizer.defaults["fused"] is True


def test_conv_resume_is_bit_exact(tmp_path):
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    train(load_spec(CONV, [*SMALL, "train.epochs=2"]), full, quiet=True, device="cpu")
    train(load_spec(CONV, [*SMALL, "train.epochs=1"]), part, quiet=True, device="cpu")
    train(load_spec(CONV, [*SMALL, "train.epochs=2"]), part, resume=True, force=True, quiet=True, device="cpu")
    for name in ("weights", "optimizer"):
        a = load_file(os.path.join(full, "checkpoints", "last", f"{name}.safetensors"))
        b = load_file(os.path.join(part, "checkpoints", "last", f"{name}.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert [r["train"] for r in _epochs(full)] == [r["train"] for r in _epochs(part)]
    rows = _epochs(full)
    assert rows[-1]["train"]["recon"] < rows[0]["train"]["recon"]
