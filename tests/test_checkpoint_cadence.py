"""How often `last` is written (`train.checkpoint_every`; 0 = auto, by the cost of writing), and
that a best epoch not written at once reaches `best` with the next `last`."""

from __future__ import annotations

import json
import os

import pytest
import torch
from _tinyvae import tiny_vae

from latentspec.run import checkpoint as ckpt
from latentspec.run import load_run
from latentspec.spec import load_spec
from latentspec.train import trainer as trainer_mod
from latentspec.train.trainer import train

EPOCHS = 5


def spec_text(every: int) -> str:
    body = f"  optimizer: {{name: adam, lr: 3.0e-3}}\n  epochs: {EPOCHS}\n  checkpoint_every: {every}\n"
    return tiny_vae(train=body)


def written(monkeypatch) -> list[tuple[str, int]]:
    """(last|best, epoch) of every checkpoint written, in order."""
    seen: list[tuple[str, int]] = []
    real = ckpt.write

    def record(folder, snap):
        seen.append((os.path.basename(folder), snap.state["epoch"]))
        return real(folder, snap)

    monkeypatch.setattr(ckpt, "write", record)
    return seen


def test_every_n_epochs_and_always_the_last(tmp_path, monkeypatch):
    seen = written(monkeypatch)
    train(load_spec(spec_text(2), text=True), str(tmp_path / "run"), quiet=True)
    assert [e for kind, e in seen if kind == "last"] == [2, 4, 5]


def test_auto_writes_the_first_and_last_epoch_when_writing_costs_more_than_training(tmp_path, monkeypatch):
    """A factor so large that no epoch is due: the first epoch (nothing written yet) and the
    stage's last are written; a best epoch in between comes out in `best` all the same."""
    monkeypatch.setattr(trainer_mod, "AUTO_CHECKPOINT_FACTOR", 1e9)
    seen = written(monkeypatch)
    run = str(tmp_path / "run")
    train(load_spec(spec_text(0), text=True), run, quiet=True)
    assert [e for kind, e in seen if kind == "last"] == [1, EPOCHS]
    with open(os.path.join(run, "metrics.jsonl")) as f:
        rows = [r for r in map(json.loads, f) if r["kind"] == "epoch"]
    scores = {r["epoch"]: sum(r["test"].values()) for r in rows}
    best_epoch = min(scores, key=scores.get)
    state = ckpt.load_state(os.path.join(run, "checkpoints", "best"))
    assert state["epoch"] == best_epoch and state["best"] == pytest.approx(scores[best_epoch])
    assert ckpt.load_state(os.path.join(run, "checkpoints", "last"))["best"] == pytest.approx(scores[best_epoch])


def test_auto_writes_every_epoch_when_writing_is_cheap(tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_mod, "AUTO_CHECKPOINT_FACTOR", 0.0)
    seen = written(monkeypatch)
    train(load_spec(spec_text(0), text=True), str(tmp_path / "run"), quiet=True)
    assert [e for kind, e in seen if kind == "last"] == list(range(1, EPOCHS + 1))


def test_a_best_epoch_kept_in_memory_is_its_own_weights(tmp_path, monkeypatch):
    """Test scores that are best at epoch 3 of 5, with only epochs 1 and 5 written: `best` holds
    epoch 3's weights (a copy, not the weights training went on to change)."""
    from latentspec.train.trainer import Callback, Trainer

    monkeypatch.setattr(trainer_mod, "AUTO_CHECKPOINT_FACTOR", 1e9)
    scores = iter([5.0, 3.0, 1.0, 2.0, 4.0])
    monkeypatch.setattr(Trainer, "evaluate", lambda self, stage, data: {"recon": next(scores)})
    weights: dict[int, dict] = {}

    class Keep(Callback):
        def on_epoch(self, trainer, row):
            weights[row["epoch"]] = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}

    run = str(tmp_path / "run")
    train(load_spec(spec_text(0), text=True), run, quiet=True, callbacks=[Keep()])
    state = ckpt.load_state(os.path.join(run, "checkpoints", "best"))
    assert state["epoch"] == 3 and state["best"] == 1.0
    _, best = load_run(run, which="best")
    saved = best.state_dict()
    assert all(torch.equal(saved[k], v) for k, v in weights[3].items())
    assert any(not torch.equal(saved[k], v) for k, v in weights[EPOCHS].items())
