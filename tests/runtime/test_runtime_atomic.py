"""The one atomic-write helper (latentspec_runtime._atomic) that every writer uses."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from latentspec_runtime import _atomic
from latentspec_runtime._atomic import FILE_MODE, atomic_open, atomic_path, write_bytes, write_text


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_text_makes_folders_and_a_0644_file(tmp_path):
    path = tmp_path / "a" / "b" / "eval.json"
    write_text(path, "{}\n")
    assert path.read_text() == "{}\n"
    assert FILE_MODE == 0o644 and mode(path) == 0o644  # not mkstemp's 0600
    assert os.listdir(path.parent) == ["eval.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "weights.bin"
    write_bytes(path, b"old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_open(path, "wb") as f:
        f.write(b"half of the new")
        raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["weights.bin"]


def test_the_file_is_synced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(_atomic.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(_atomic.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    write_text(tmp_path / "x.txt", "x")
    assert events[:2] == ["fsync", "replace"]


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".png"])
def test_the_temporary_name_keeps_the_suffix_writers_go_by(tmp_path, suffix):
    """np.save appends .npy, np.savez .npz and PIL picks the format by the suffix."""
    path = tmp_path / f"out{suffix}"
    with atomic_path(path) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and tmp.endswith(suffix)
        if suffix == ".npy":
            np.save(tmp, np.arange(3))
        elif suffix == ".npz":
            np.savez(tmp, a=np.arange(3))
        else:
            from PIL import Image

            Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp)
    assert os.listdir(tmp_path) == [path.name]
    if suffix == ".npy":
        assert np.load(path).tolist() == [0, 1, 2]
    elif suffix == ".npz":
        with np.load(path) as z:
            assert z["a"].tolist() == [0, 1, 2]
    else:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_atomic_open_refuses_appending(tmp_path):
    with pytest.raises(ValueError, match="whole new file"), atomic_open(tmp_path / "log", "a"):
        pass
