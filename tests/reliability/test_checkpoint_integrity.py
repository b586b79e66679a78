"""Checkpoint integrity: state.json holds the sha256 of every tensor file; resume and eval
refuse a flipped bit or a truncation naming the file; a corrupt file is one line, never a traceback."""

from __future__ import annotations

import json
import os

import pytest
from _reliability import no_internal_error, train_args
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentspec.cli import main
from latentspec.errors import RunError
from latentspec.run import checkpoint as ckpt
from latentspec.run import load_run

FILES = ("weights.safetensors", "optimizer.safetensors")


def last(run: str, name: str = "") -> str:
    return os.path.join(run, "checkpoints", "last", name)


def flip_bit(path: str, offset: int, bit: int = 0) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ (1 << bit)]))


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    no_internal_error(err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_state_records_the_sha256_of_every_tensor_file(trained_run):
    with open(last(trained_run, "state.json")) as f:
        files = json.load(f)["files"]
    assert sorted(files) == sorted(FILES)
    for name, digest in files.items():
        assert ckpt.sha256_file(last(trained_run, name)) == digest


@pytest.mark.parametrize("name", FILES)
def test_a_flipped_bit_is_refused_by_resume_and_eval(run_copy, capsys, name):
    size = os.path.getsize(last(run_copy, name))
    flip_bit(last(run_copy, name), size - 3)  # in the tensor data: safetensors itself would not notice
    assert main([*train_args(run_copy), "--resume"]) == 1
    line = error_line(capsys)
    assert f"last/{name}" in line and "sha256" in line
    if name == "weights.safetensors":
        assert main(["eval", run_copy]) == 1
        assert f"last/{name}" in error_line(capsys)


@pytest.mark.parametrize("name", FILES)
def test_a_truncated_file_is_refused(run_copy, capsys, name):
    path = last(run_copy, name)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    assert main([*train_args(run_copy), "--resume"]) == 1
    assert f"last/{name}" in error_line(capsys)


@pytest.mark.parametrize(
    "text",
    ["", "{", "not json", '{"stage": 0, "epoch": 1, "step": NaN}', "[1, 2]", '{"stage": "x"}', "\xff\xfe"],
)
def test_a_corrupt_state_json_is_one_line(run_copy, capsys, text):
    with open(last(run_copy, "state.json"), "w", encoding="latin-1") as f:
        f.write(text)
    assert main(["eval", run_copy]) == 1
    assert "state.json" in error_line(capsys)


@pytest.mark.parametrize("rng", ["!!!not base64", "AAAA", 12])
def test_a_corrupt_rng_state_is_one_line(run_copy, capsys, rng):
    path = last(run_copy, "state.json")
    with open(path) as f:
        state = json.load(f)
    state["rng"] = rng
    with open(path, "w") as f:
        json.dump(state, f)
    assert main([*train_args(run_copy, "train.epochs=2"), "--resume", "--force"]) == 1
    assert "RNG state" in error_line(capsys)


def test_garbage_tensor_files_without_hashes_are_one_line(run_copy, capsys):
    """A checkpoint from before hashes were recorded: safetensors' own errors become one line."""
    path = last(run_copy, "state.json")
    with open(path) as f:
        state = json.load(f)
    del state["files"]
    with open(path, "w") as f:
        json.dump(state, f)
    with open(last(run_copy, "weights.safetensors"), "wb") as f:
        f.write(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    assert main(["eval", run_copy]) == 1
    assert "weights.safetensors" in error_line(capsys)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damage_to_a_tensor_file_is_found(trained_run, tmp_path_factory, data):
    import shutil

    run = str(tmp_path_factory.mktemp("fuzz") / "run")
    shutil.copytree(trained_run, run)
    name = data.draw(st.sampled_from(FILES))
    path = last(run, name)
    size = os.path.getsize(path)
    if data.draw(st.booleans()):
        flip_bit(path, data.draw(st.integers(0, size - 1)), data.draw(st.integers(0, 7)))
    else:
        with open(path, "r+b") as f:
            f.truncate(data.draw(st.integers(0, size - 1)))
    with pytest.raises(RunError, match=name):
        load_run(run)
        ckpt.load_state(last(run))


def test_last_records_the_best_score_and_best_holds_the_same_weights(trained_run):
    """`last` is taken after the epoch's best score is known, so a resumed run compares with it;
    `best` of that epoch is the same weights (written from one snapshot, in the background)."""
    with open(last(trained_run, "state.json")) as f:
        state = json.load(f)
    best = os.path.join(trained_run, "checkpoints", "best")
    with open(os.path.join(best, "state.json")) as f:
        best_state = json.load(f)
    assert state["best"] == best_state["best"] is not None
    if best_state["epoch"] == state["epoch"]:
        assert best_state["files"]["weights.safetensors"] == state["files"]["weights.safetensors"]
    assert "optimizer" not in best_state and "optimizer.safetensors" not in best_state["files"]


def test_the_writer_writes_snapshots_in_order_and_raises_a_failed_write(tmp_path, monkeypatch):
    import torch

    model = torch.nn.Linear(3, 2)
    writer = ckpt.Writer()
    folder = str(tmp_path / "last")
    for step in range(3):
        with torch.no_grad():
            model.weight.fill_(float(step))
        writer.submit([(folder, ckpt.Snapshot.of(model, None, {"stage": 0, "epoch": step, "step": step}, copy=True))])
        with torch.no_grad():
            model.weight.fill_(-1.0)  # training goes on: the snapshot is a copy
    writer.wait()
    assert ckpt.load_state(folder)["step"] == 2
    probe = torch.nn.Linear(3, 2)
    ckpt.load_weights(folder, probe)
    assert (probe.weight == 2.0).all()

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt, "save_file", full)
    writer.submit([(folder, ckpt.Snapshot.of(model, None, {"stage": 0, "epoch": 9, "step": 9}, copy=True))])
    with pytest.raises(RunError, match="No space left"):
        writer.close()
    assert ckpt.load_state(folder)["step"] == 2  # the previous checkpoint stays
