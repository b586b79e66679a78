"""The on-disk cache of procedural datasets: keyed by params, atomic, self-healing."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

import latentspec.data.procedural._common as common
from latentspec.data.procedural.shapes import Shapes

CFG = {"size": 300, "seed": 2, "channels": 3}


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LATENTSPEC_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def files(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.exists() else []


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTSPEC_CACHE", str(tmp_path / "a"))
    assert common.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("LATENTSPEC_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert common.cache_dir() == tmp_path / "xdg" / "latentspec"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert common.cache_dir() == tmp_path / "home" / ".cache" / "latentspec"


def test_key_is_the_resolved_params_without_the_cache_switch(cache):
    ds = Shapes()
    a = common.cache_path("shapes", ds._key(ds.resolve({"size": 5})))
    assert a == common.cache_path("shapes", ds._key(ds.resolve({"size": 5, "cache": True, "seed": 0})))
    assert a != common.cache_path("shapes", ds._key(ds.resolve({"size": 6})))
    assert a.parent == cache and a.name.startswith("shapes-") and a.suffix == ".npz"


def test_hit_returns_identical_arrays_without_rendering(cache, monkeypatch):
    ds = Shapes()
    first = ds.load(ds.resolve(CFG))
    assert len(files(cache)) == 1

    def no_render(*args, **kwargs):
        raise AssertionError("rendered again despite a cache hit")

    monkeypatch.setattr(common, "render_chunks", no_render)
    second = ds.load(ds.resolve(CFG))
    assert set(first) == set(second)
    assert all(first[k].tobytes() == second[k].tobytes() and first[k].dtype == second[k].dtype for k in first)


def test_cache_false_neither_reads_nor_writes(cache):
    ds = Shapes()
    ds.load(ds.resolve({**CFG, "cache": False}))
    assert files(cache) == []


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_arrays"])
def test_a_corrupt_file_is_ignored_and_rewritten(cache, damage):
    ds = Shapes()
    good = ds.load(ds.resolve({**CFG, "cache": False}))
    path = common.cache_path("shapes", ds._key(ds.resolve(CFG)))
    ds.load(ds.resolve(CFG))
    if damage == "garbage":
        path.write_bytes(b"not a zip file at all")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        np.savez(path, image=np.zeros((3, 1)))
    got = ds.load(ds.resolve(CFG))
    assert all(got[k].tobytes() == good[k].tobytes() for k in good)
    with np.load(path) as z:  # healed on disk too
        assert z["image"].tobytes() == good["image"].tobytes()
    assert [p.name for p in files(cache)] == [path.name]  # no temporary files left


def test_grouped_loads_are_cached_under_their_own_key(cache):
    ds = Shapes()
    cfg = ds.resolve(CFG)
    a = ds.load_grouped(cfg, ["posx"], 10)
    b = ds.load_grouped(cfg, ["posx"], 10)
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)
    ds.load(cfg)
    assert len(files(cache)) == 2


def _load_in_child(cache_dir: str, rounds: int, queue) -> None:
    import os

    os.environ["LATENTSPEC_CACHE"] = cache_dir
    ds = Shapes()
    out = [ds.load(ds.resolve(CFG))["image"].tobytes() for _ in range(rounds)]
    queue.put(out)


def test_concurrent_writers_both_end_with_valid_identical_data(cache):
    ds = Shapes()
    want = ds.load(ds.resolve({**CFG, "cache": False}))["image"].tobytes()
    path = common.cache_path("shapes", ds._key(ds.resolve(CFG)))
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_load_in_child, args=(str(cache), 3, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert all(r == want for rs in results for r in rs)
    with np.load(path) as z:
        assert z["image"].tobytes() == want
    assert [p.name for p in files(cache)] == [path.name]


def test_save_atomic_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "x.npz"
    common.save_atomic(path, {"a": np.arange(3)})

    class Boom:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        common.save_atomic(path, {"a": Boom()})  # type: ignore[dict-item]
    with np.load(path) as z:
        assert z["a"].tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]
