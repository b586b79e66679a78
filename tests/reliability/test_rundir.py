"""Run directories: a lock per run, `--resume` checks the spec before touching anything, and a
bad `--out` (a file, read-only, a full disk) is one line, exit 1, with the last checkpoint kept."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import subprocess
import sys
import time

import pytest
from _reliability import ROOT, no_internal_error, train_args

from latentspec.cli import main
from latentspec.run import checkpoint as ckpt
from latentspec.train import rundir


def snapshot(run: str) -> dict[str, str]:
    """sha256 of every file of the run but its history and lock."""
    out = {}
    for folder, _, files in os.walk(run):
        for name in files:
            path = os.path.join(folder, name)
            if name not in (rundir.HISTORY, rundir.LOCK):
                with open(path, "rb") as f:
                    out[os.path.relpath(path, run)] = hashlib.sha256(f.read()).hexdigest()
    return out


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def leftovers(run: str) -> list[str]:
    return [f for _, dirs, files in os.walk(run) for f in dirs + files if f.startswith((".tmp-", ".lock."))]


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    no_internal_error(err)
    return lines[0]


def test_a_held_lock_refuses_a_second_train_naming_the_pid(run_copy, capsys):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with open(os.path.join(run_copy, rundir.LOCK), "w") as f:
            json.dump({"pid": holder.pid, "host": socket.gethostname(), "command": "train", "since": time.time()}, f)
        before = snapshot(run_copy)
        assert main([*train_args(run_copy), "--resume"]) == 1
        line = one_line(capsys.readouterr().err)
        assert f"process {holder.pid}" in line and "in use" in line
        assert snapshot(run_copy) == before
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_is_taken_over(run_copy, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with open(os.path.join(run_copy, rundir.LOCK), "w") as f:
        json.dump({"pid": dead.pid, "host": socket.gethostname(), "command": "train", "since": 0}, f)
    assert main([*train_args(run_copy), "--resume"]) == 0
    assert not os.path.exists(os.path.join(run_copy, rundir.LOCK))
    assert [r["event"] for r in rundir.history(run_copy)] == ["start", "resume"]


def test_two_concurrent_trains_leave_the_first_intact(tmp_path, capsys):
    run = str(tmp_path / "run")
    first = subprocess.Popen(
        [sys.executable, "-m", "latentspec", *train_args(run, "train.epochs=3")],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while not os.path.exists(os.path.join(run, rundir.LOCK)) and time.time() < deadline and first.poll() is None:
        time.sleep(0.02)
    assert first.poll() is None, "the first train ended before the second started"
    # the second one differs in the model: written over the first it would corrupt it
    assert main(train_args(run, "latents.z.dim=8")) == 1
    line = one_line(capsys.readouterr().err)
    assert f"process {first.pid}" in line
    assert first.wait(timeout=300) == 0, first.stderr.read().decode()
    first.stderr.close()
    assert "dim: 20" in read(os.path.join(run, "spec.yaml"))
    state = ckpt.load_state(os.path.join(run, "checkpoints", "last"))  # verifies the hashes
    assert state["epoch"] == 3
    assert main(["eval", run]) == 0


def test_resume_with_a_changed_latent_size_is_refused_and_the_run_still_works(run_copy, tmp_path, capsys):
    before = snapshot(run_copy)
    assert main([*train_args(run_copy, "latents.z.dim=8"), "--resume", "--force"]) == 1
    line = one_line(capsys.readouterr().err)
    assert "$.latents.z.dim: 20 -> 8" in line and "model or data" in line
    assert snapshot(run_copy) == before  # spec.yaml, checkpoints and metrics untouched
    assert main(["eval", run_copy]) == 0
    assert main(["export", run_copy, "--out", str(tmp_path / "b")]) == 0
    assert os.path.isfile(tmp_path / "b" / "manifest.json")


def test_changed_data_is_refused(run_copy, capsys):
    assert main([*train_args(run_copy, "data.split.train=128"), "--resume", "--force"]) == 1
    assert "$.data.split.train: 160 -> 128" in one_line(capsys.readouterr().err)


def test_changed_training_settings_need_force_and_go_in_the_history(run_copy, capsys):
    before = snapshot(run_copy)
    assert main([*train_args(run_copy, "train.epochs=2"), "--resume"]) == 1
    line = one_line(capsys.readouterr().err)
    assert "--force" in line and "$.train.epochs: 1 -> 2" in line
    assert snapshot(run_copy) == before
    assert main([*train_args(run_copy, "train.epochs=2"), "--resume", "--force"]) == 0
    forced = [r for r in rundir.history(run_copy) if r.get("forced")]
    assert forced and forced[-1]["forced"] == {"$.train.epochs": [1, 2]}
    assert "epochs: 2" in read(os.path.join(run_copy, "spec.yaml"))
    assert ckpt.load_state(os.path.join(run_copy, "checkpoints", "last"))["epoch"] == 2


@pytest.mark.parametrize("where", ["file", "read-only"])
def test_an_unusable_out_is_one_line(tmp_path, capsys, where):
    out = str(tmp_path / "afile")
    if where == "file":
        open(out, "w").close()
    else:
        out = "/proc/latentspec-no-such-place/run"  # read-only even for root
    assert main(train_args(out)) == 1
    line = one_line(capsys.readouterr().err)
    assert f"--out {out}" in line


def test_a_full_disk_leaves_no_temp_files_and_the_last_checkpoint(run_copy, capsys, monkeypatch):
    last = os.path.join(run_copy, "checkpoints", "last")
    before = snapshot(run_copy)["checkpoints/last/weights.safetensors"]

    def full(tensors, path, *a, **k):
        with open(path, "wb") as f:
            f.write(b"\0" * 100)  # half a file, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ckpt, "save_file", full)
    assert main([*train_args(run_copy, "train.epochs=2"), "--resume", "--force"]) == 1
    line = one_line(capsys.readouterr().err)
    assert "No space left on device" in line and "checkpoint" in line
    assert leftovers(run_copy) == []
    assert ckpt.load_state(last)["epoch"] == 1
    assert snapshot(run_copy)["checkpoints/last/weights.safetensors"] == before
    monkeypatch.undo()
    assert main([*train_args(run_copy, "train.epochs=2"), "--resume", "--force"]) == 0  # free space: continue


def test_rows_of_an_attempt_that_died_before_its_first_checkpoint_are_dropped(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"kind": "step", "step": 5, "loss": 1.0}\n[1]\n{"step": "x"}\n{"kind": "ep')
    assert main([*train_args(str(run)), "--resume"]) == 0
    rows = [json.loads(line) for line in read(str(run / "metrics.jsonl")).splitlines()]
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == [1]
    assert all(r.get("loss") != 1.0 for r in rows)


def test_the_lock_works_without_hard_links(tmp_path, monkeypatch):
    def no_links(*a):
        raise PermissionError(errno.EPERM, "hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    with rundir.run_lock(str(tmp_path)) as mine:
        assert rundir.lock_holder(str(tmp_path))["pid"] == mine["pid"] == os.getpid()
        with pytest.raises(rundir.RunError, match=f"process {os.getpid()}"):
            with rundir.run_lock(str(tmp_path)):
                pass
    assert rundir.lock_holder(str(tmp_path)) is None and os.listdir(tmp_path) == []
