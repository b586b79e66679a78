"""Rendering procedural datasets on a process pool: the same bytes as one process, the threshold
that keeps small renders in this process, and worker failures as errors, not hangs."""

from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest

import latentspec.data.procedural  # noqa: F401  (registers the procedural datasets)
import latentspec.data.procedural._common as common
from latentspec.components._kinds import DATASETS
from latentspec.data.procedural import shapes

PROCEDURAL = sorted(name for name, cls in DATASETS.items() if getattr(cls, "procedural", False))
# Small images keep the renders fast; 333 items: 6 chunks, the last one partial.
SMALL = {"shapes": {"image_size": 16, "channels": 3}, "hands": {"image_size": 16}, "faces": {"image_size": 16}}


@pytest.fixture
def pool_calls(monkeypatch) -> list[int]:
    """Every render crosses the threshold; records the workers of each pool render."""
    calls: list[int] = []
    render_pool = common._render_pool

    def spy(*args, **kwargs):
        calls.append(args[5])
        return render_pool(*args, **kwargs)

    monkeypatch.setattr(common, "PROCESS_MIN_SECONDS", 0.0)
    monkeypatch.setattr(common, "_render_pool", spy)
    return calls


def test_every_procedural_dataset_is_covered():
    assert {"shapes", "hands", "faces"} <= set(PROCEDURAL)
    assert set(PROCEDURAL) <= set(SMALL), "add the new dataset's small config to SMALL"


@pytest.mark.parametrize("name", PROCEDURAL)
def test_pool_renders_the_same_bytes_as_one_process(name, pool_calls, monkeypatch):
    ds = DATASETS[name]()
    cfg = ds.resolve({"size": 333, "seed": 5, "cache": False, **SMALL[name]})
    monkeypatch.setenv(common.WORKERS_ENV, "1")
    one = ds.load(cfg)
    assert pool_calls == []
    monkeypatch.setenv(common.WORKERS_ENV, "3")
    pooled = ds.load(cfg)
    assert pool_calls == [3]
    assert set(pooled) == set(one)
    for k in one:
        assert pooled[k].dtype == one[k].dtype and pooled[k].shape == one[k].shape, k
        assert pooled[k].tobytes() == one[k].tobytes(), k


def test_pool_renders_the_same_grouped_bytes(pool_calls, monkeypatch):
    ds = shapes.Shapes()
    cfg = ds.resolve({"size": 200, "cache": False, "image_size": 16})
    monkeypatch.setenv(common.WORKERS_ENV, "1")
    one = ds.load_grouped(cfg, ["rotation"], 10)
    monkeypatch.setenv(common.WORKERS_ENV, "2")
    pooled = ds.load_grouped(cfg, ["rotation"], 10)
    assert pool_calls == [2]
    assert all(pooled[k].tobytes() == one[k].tobytes() for k in one)


def test_pooled_arrays_are_private_and_writable(pool_calls, monkeypatch):
    monkeypatch.setenv(common.WORKERS_ENV, "2")
    ds = shapes.Shapes()
    cfg = ds.resolve({"size": 300, "cache": False, "image_size": 8})
    a = ds.load(cfg)
    assert pool_calls == [2] and type(a["image"]) is np.ndarray
    a["image"] += 1.0  # copy-on-write: the next render is unaffected
    b = ds.load(cfg)
    assert np.array_equal(a["image"], b["image"] + 1.0)


def test_small_renders_stay_in_this_process(monkeypatch):
    calls = []
    monkeypatch.setattr(common, "_render_pool", lambda *a, **k: calls.append(1))
    monkeypatch.delenv(common.WORKERS_ENV, raising=False)
    ds = shapes.Shapes()
    out = ds.load(ds.resolve({"size": 500, "cache": False}))
    assert calls == [] and len(out["image"]) == 500


def test_workers_follow_the_environment_and_the_chunks(monkeypatch):
    monkeypatch.setenv(common.WORKERS_ENV, "6")
    assert common.render_workers(100) == 6
    assert common.render_workers(4) == 4
    monkeypatch.delenv(common.WORKERS_ENV)
    assert common.render_workers(10_000) == common._cores()
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(common.WORKERS_ENV, bad)
        with pytest.raises(ValueError, match=rf"\$LATENTSPEC_RENDER_WORKERS must be a positive integer.*{bad!r}"):
            common.render_workers(10)


def _fails_in_workers(factors: dict, image_size: int, parent: int, how: str) -> dict[str, np.ndarray]:
    if os.getpid() != parent:
        if how == "exit":
            os._exit(3)
        raise ArithmeticError("renderer broke in a worker")
    return shapes.render_batch(factors, image_size=image_size)


@pytest.mark.parametrize("how", ["raise", "exit"])
def test_a_failing_worker_is_an_error_not_a_hang(how, pool_calls, monkeypatch):
    monkeypatch.setenv(common.WORKERS_ENV, "2")
    factors = common.sample(shapes.FACTORS, 0, 400)
    opts = {"image_size": 8, "parent": os.getpid(), "how": how}
    if how == "raise":
        with pytest.raises(ArithmeticError, match="renderer broke in a worker"):
            common.render_chunks(_fails_in_workers, factors, opts)
    else:
        with pytest.raises(RuntimeError, match=r"worker processes failed: a worker died.*LATENTSPEC_RENDER_WORKERS=1"):
            common.render_chunks(_fails_in_workers, factors, opts)
    assert pool_calls == [2]
    assert multiprocessing.active_children() == []  # no worker left behind
    assert not [p for p in os.listdir(common._shared_dir()) if p.startswith(f"latentspec-render-{os.getpid()}-")]


def test_no_room_for_the_shared_file_renders_in_this_process(pool_calls, monkeypatch, tmp_path):
    monkeypatch.setenv(common.WORKERS_ENV, "2")
    monkeypatch.setattr(common, "_shared_dir", lambda: str(tmp_path / "missing"))
    ds = shapes.Shapes()
    cfg = ds.resolve({"size": 300, "cache": False, "image_size": 8})
    out = ds.load(cfg)
    assert pool_calls == [2] and multiprocessing.active_children() == []
    monkeypatch.setenv(common.WORKERS_ENV, "1")
    assert out["image"].tobytes() == ds.load(cfg)["image"].tobytes()


def test_no_pool_when_main_is_not_a_file(monkeypatch):
    """A script read from stdin (``python - < script.py``): a worker would re-import ``__main__``
    from '<stdin>' and die, so the render stays in this process."""
    import sys
    import types

    from latentspec.data.procedural import _common

    main = types.ModuleType("__main__")
    main.__file__ = "<stdin>"
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert _common._pool_context() is None
