"""Shared machinery of the procedural datasets: factors, anti-aliased rasterising, chunked
generation and the on-disk cache.

Determinism: an item depends only on the seed, its index and the factor ranges, never on how
many items are made or how the work is chunked, and ``render`` of an item's factors gives the
item byte for byte. Per-pixel code therefore uses only operations that IEEE 754 rounds exactly
(``+ - * /``, ``sqrt``, ``min``/``max``/``clip``, ``abs``) and no reductions, so numpy gives the
same bits whatever the batch length; trigonometry is done per item with :mod:`math`.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import hashlib
import json
import math
import multiprocessing
import multiprocessing.context
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from latentspec.components._registry import MAX_SEED, Param
from latentspec.data._base import ArrayInfo, DatasetSpec
from latentspec_runtime._atomic import atomic_open

#: Bump when any renderer changes its output, so stale cache files are not reused.
CODE_VERSION = 2
#: Items per seeded block: block b draws its factors from ``default_rng([seed, stream, b])``.
BLOCK = 1000
#: Items per rendering chunk (any value gives the same bytes; this one keeps a chunk's
#: temporaries, about 1 MB each at 64×64, small enough to be recycled by the allocator).
CHUNK = 64

RenderBatch = Callable[..., dict[str, np.ndarray]]


# ---------------------------------------------------------------------------------- factors
@dataclasses.dataclass(frozen=True)
class Factor:
    """One generating factor: continuous on ``[lo, hi]`` or categorical over ``classes``.

    ``span`` narrows a continuous factor and ``allowed`` restricts a categorical one (class
    indices); both come from the dataset's ``factors:`` parameter.
    """

    name: str
    lo: float = 0.0
    hi: float = 1.0
    classes: tuple[str, ...] | None = None
    default: float | None = None
    doc: str = ""
    span: tuple[float, float] | None = None
    allowed: tuple[int, ...] | None = None

    @property
    def categorical(self) -> bool:
        return self.classes is not None

    @property
    def range(self) -> tuple[float, float]:
        return self.span if self.span is not None else (self.lo, self.hi)

    @property
    def choices(self) -> tuple[int, ...]:
        assert self.classes is not None
        return self.allowed if self.allowed is not None else tuple(range(len(self.classes)))

    @property
    def neutral(self) -> float | int:
        """The value ``render`` uses when the factor is not given."""
        if self.categorical:
            return 0
        return self.default if self.default is not None else (self.lo + self.hi) / 2

    @property
    def fixed(self) -> bool:
        return len(self.choices) == 1 if self.categorical else self.range[0] == self.range[1]

    def draw(self, u: np.ndarray) -> np.ndarray:
        """Map uniform draws in [0, 1) to factor values (int64 classes or float32)."""
        if self.categorical:
            choices = np.asarray(self.choices, dtype=np.int64)
            k = np.minimum((u * len(choices)).astype(np.int64), len(choices) - 1)
            return choices[k]
        lo, hi = self.range
        return (lo + (hi - lo) * u).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        if self.categorical:
            assert self.classes is not None
            return {"classes": [self.classes[i] for i in self.choices], "doc": self.doc}
        return {"range": list(self.range), "domain": [self.lo, self.hi], "doc": self.doc}


def narrow(defs: Sequence[Factor], user: Mapping[str, Any] | None) -> tuple[Factor, ...]:
    """Apply a ``factors:`` mapping (name -> [lo, hi], a fixed value, or class names).

    Raises ValueError naming the factor for unknown names and values outside the domain.
    """
    user = {} if user is None else user
    if not isinstance(user, Mapping):
        raise ValueError(f"factors must be a mapping of factor name to range, got {user!r}")
    known = {f.name: f for f in defs}
    for name in user:
        if name not in known:
            raise ValueError(f"unknown factor {name!r}; the factors are: {', '.join(known)}")
    return tuple(_narrow_one(f, user[f.name]) if f.name in user else f for f in defs)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _narrow_one(f: Factor, value: Any) -> Factor:
    if f.categorical:
        assert f.classes is not None
        values = value if isinstance(value, (list, tuple)) else [value]
        if not values:
            raise ValueError(f"factor {f.name!r}: give at least one class of {list(f.classes)}")
        return dataclasses.replace(f, allowed=tuple(sorted({class_index(f, v) for v in values})))
    if _is_number(value):
        lo = hi = float(value)
    elif isinstance(value, (list, tuple)) and len(value) == 2 and all(map(_is_number, value)):
        lo, hi = float(value[0]), float(value[1])
    else:
        raise ValueError(f"factor {f.name!r}: expected a number or a range [lo, hi], got {value!r}")
    if not f.lo <= lo <= hi <= f.hi:
        raise ValueError(
            f"factor {f.name!r}: range [{lo:g}, {hi:g}] is not inside its domain [{f.lo:g}, {f.hi:g}] (or lo > hi)"
        )
    return dataclasses.replace(f, span=(lo, hi))


def class_index(f: Factor, value: Any) -> int:
    """A categorical value given as a class name or an index, as an index."""
    assert f.classes is not None
    if isinstance(value, (str, np.str_)) and str(value) in f.classes:
        return f.classes.index(str(value))
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= value < len(f.classes):
        return int(value)
    raise ValueError(f"factor {f.name!r}: unknown class {value!r}; the classes are: {', '.join(f.classes)}")


def sample(factors: Sequence[Factor], seed: int, n: int) -> dict[str, np.ndarray]:
    """Draw n items. Every factor consumes BLOCK draws per block, so item i is the same for any
    n > i and narrowing one factor leaves the others' values unchanged."""
    parts: dict[str, list[np.ndarray]] = {f.name: [] for f in factors}
    for b in range(-(-n // BLOCK)):
        rng = np.random.default_rng([seed, 0, b])
        k = min(BLOCK, n - b * BLOCK)
        for f in factors:
            parts[f.name].append(f.draw(rng.random(BLOCK)[:k]))
    return {name: np.concatenate(p) for name, p in parts.items()}


def sample_grouped(
    factors: Sequence[Factor], seed: int, n: int, vary: Sequence[str], group: int
) -> dict[str, np.ndarray]:
    """Blocks of ``group`` items in which only ``vary[b % len(vary)]`` changes (DC-IGN).

    Returns the factor arrays plus ``vary`` (int64 index into ``vary``, per item).
    """
    by_name = {f.name: f for f in factors}
    if not vary:
        raise ValueError("vary: name at least one factor to vary")
    if group < 1:
        raise ValueError(f"group must be at least 1, got {group}")
    for name in vary:
        if name not in by_name:
            raise ValueError(f"vary: unknown factor {name!r}; the factors are: {', '.join(by_name)}")
        if by_name[name].fixed:
            raise ValueError(f"vary: factor {name!r} is fixed by the factors parameter, so it cannot vary")
    n_groups = n // group
    if n_groups == 0:
        raise ValueError(f"size {n} is smaller than the group size {group}")
    out = {f.name: np.empty(n_groups * group, np.int64 if f.categorical else np.float32) for f in factors}
    which = np.repeat(np.arange(n_groups, dtype=np.int64) % len(vary), group)
    for g in range(n_groups):
        rng = np.random.default_rng([seed, 1, g])
        block = slice(g * group, (g + 1) * group)
        for f in factors:
            out[f.name][block] = f.draw(rng.random(1))
        varied = by_name[vary[g % len(vary)]]
        out[varied.name][block] = varied.draw(rng.random(group))
    out["vary"] = which
    return out


def complete(defs: Sequence[Factor], given: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Factor values for ``render_batch``: defaults filled in, class names turned into indices,
    continuous values rounded to float32 (as ``load`` stores them), all broadcast to one length."""
    by_name = {f.name: f for f in defs}
    for name in given:
        if name not in by_name:
            raise ValueError(f"unknown factor {name!r}; the factors are: {', '.join(by_name)}")
    out = {}
    for f in defs:
        v = given.get(f.name, f.neutral)
        if f.categorical:
            flat = [class_index(f, x) for x in np.ravel(np.asarray(v, dtype=object))]
            out[f.name] = np.asarray(flat, dtype=np.int64)
        else:
            out[f.name] = np.atleast_1d(np.asarray(v, dtype=np.float32)).ravel()
    n = max(len(a) for a in out.values())
    for name, a in out.items():
        if len(a) not in (1, n):
            raise ValueError(f"factor {name!r} has {len(a)} values, expected 1 or {n}")
        out[name] = np.repeat(a, n) if len(a) == 1 and n > 1 else a
    return out


def render_one(render_batch: RenderBatch, option_names: Sequence[str], kwargs: dict) -> dict[str, np.ndarray]:
    """``render(**factors, **options)`` as ``render_batch`` on a batch of one item."""
    opts = {k: kwargs.pop(k) for k in list(kwargs) if k in option_names}
    out = render_batch(kwargs, **opts)
    return {k: v[0, ...] for k, v in out.items()}


# ------------------------------------------------------------------------ per-item geometry
def cos_sin(angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin per item with libm (numpy's SIMD sin/cos may differ by batch length)."""
    a = np.asarray(angle, dtype=np.float64).ravel().tolist()
    return np.array([math.cos(x) for x in a]), np.array([math.sin(x) for x in a])


def col(v: np.ndarray | float) -> np.ndarray:
    """Per-item values (N,) or (N, C) as float32 (N, 1 or C, 1, 1), to broadcast over images."""
    a = np.atleast_1d(np.asarray(v, dtype=np.float32))
    return a.reshape(len(a), -1, 1, 1)


def hsv_to_rgb(h: np.ndarray, s: float | np.ndarray, v: float | np.ndarray) -> np.ndarray:
    """HSV in [0, 1] to RGB in [0, 1], per item: (N,) -> (N, 3) float64."""
    h = np.asarray(h, dtype=np.float64) % 1.0
    h6 = h * 6.0
    i = np.floor(h6).astype(np.int64) % 6
    f = h6 - np.floor(h6)
    s = np.broadcast_to(np.asarray(s, dtype=np.float64), h.shape)
    v = np.broadcast_to(np.asarray(v, dtype=np.float64), h.shape)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = np.stack([np.stack(c, -1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))])
    return table[i, np.arange(len(h))]


# ------------------------------------------------------------------------------ rasterising
# The distance functions work in place on their own temporaries: a fresh large temporary per
# operation costs page faults that, at these array sizes, outweigh the arithmetic.
def coverage(d: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of a pixel whose centre is at signed distance ``d`` (pixels) from
    an edge, negative inside: the area of a unit box cut by a straight edge, to first order."""
    out = np.subtract(np.float32(0.5), d)
    return np.clip(out, 0.0, 1.0, out=out)


def sd_box(x: np.ndarray, y: np.ndarray, bx: Any, by: Any) -> np.ndarray:
    """Signed distance to the axis-aligned box |x| <= bx, |y| <= by (x, y of the full shape)."""
    qx, qy = np.abs(x), np.abs(y)
    qx -= bx
    qy -= by
    inside = np.minimum(np.maximum(qx, qy), 0.0)
    np.maximum(qx, 0.0, out=qx)
    np.maximum(qy, 0.0, out=qy)
    qx *= qx
    qy *= qy
    qx += qy
    np.sqrt(qx, out=qx)
    qx += inside
    return qx


def sd_box_fast(x: np.ndarray, y: np.ndarray, bx: Any, by: Any) -> np.ndarray:
    """Signed distance to the box |x| <= bx, |y| <= by where the nearest feature is an edge
    (inside, and beside the edges); it underestimates near the outer corners, which only makes
    those corners crisp."""
    qx, qy = np.abs(x), np.abs(y)
    qx -= bx
    qy -= by
    return np.maximum(qx, qy, out=qx)


def sd_ellipse(x: np.ndarray, y: np.ndarray, rx: Any, ry: Any) -> np.ndarray:
    """Approximate signed distance to the ellipse with radii rx, ry (x, y of the full shape): the
    implicit function over its gradient's length, exact to first order at the boundary, which
    is all anti-aliasing needs."""
    irx, iry = 1.0 / rx, 1.0 / ry
    ux, uy = x * irx, y * iry
    k0 = ux * ux
    k0 += uy * uy
    np.sqrt(k0, out=k0)
    ux *= irx
    uy *= iry
    ux *= ux
    uy *= uy
    ux += uy
    np.sqrt(ux, out=ux)
    ux += np.float32(1e-6)
    d = k0 - 1.0
    d *= k0
    d /= ux
    return d


def sd_segment(x: np.ndarray, y: np.ndarray, ax: Any, ay: Any, bx: Any, by: Any) -> tuple[np.ndarray, np.ndarray]:
    """Distance to the segment a-b and the position t in [0, 1] of the nearest point. x and y
    may be a row (N, 1, 1, w) and a column (N, 1, h, 1); a and b are per item."""
    px, py = x - ax, y - ay
    dx, dy = bx - ax, by - ay
    inv = 1.0 / np.maximum(dx * dx + dy * dy, np.float32(1e-12))
    t = np.add(px * (dx * inv), py * (dy * inv))
    np.clip(t, 0.0, 1.0, out=t)
    ex, ey = dx * t, dy * t
    np.subtract(px, ex, out=ex)
    np.subtract(py, ey, out=ey)
    ex *= ex
    ey *= ey
    ex += ey
    return np.sqrt(ex, out=ex), t


def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates of a full image: x (1, 1, 1, S) and y (1, 1, S, 1)."""
    c = np.arange(size, dtype=np.float32) + np.float32(0.5)
    return c.reshape(1, 1, 1, size), c.reshape(1, 1, size, 1)


Window = tuple[int, tuple[np.ndarray, slice, np.ndarray, np.ndarray]]  # w, (item, :, y0, x0)


class Canvas:
    """A batch of images (N, C, S, S) with a margin, so that a square window around each item's
    primitive can be gathered, drawn and scattered back without bounds checks. Drawing into
    windows costs the primitive's area, not the image's."""

    def __init__(self, n: int, size: int, channels: int, margin: int) -> None:
        self.n, self.size, self.channels, self.margin = n, size, channels, margin
        self.data = np.zeros((n, channels, size + 2 * margin, size + 2 * margin), np.float32)
        self._views: dict[int, np.ndarray] = {}

    @property
    def inner(self) -> np.ndarray:
        m = self.margin
        return self.data[:, :, m : m + self.size, m : m + self.size]

    def window(self, cx: np.ndarray, cy: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray, Window]:
        """Pixel-centre coordinates x (N,1,1,w), y (N,1,w,1) of a w×w window centred near
        (cx, cy), and the key for ``get``/``put`` of its pixels (N, C, w, w)."""
        assert w <= self.margin, "the canvas margin must be at least the window size"
        lo, hi = -self.margin, self.size + self.margin - w
        x0 = np.clip(np.floor(np.asarray(cx, np.float64) - w / 2), lo, hi).astype(np.int64)
        y0 = np.clip(np.floor(np.asarray(cy, np.float64) - w / 2), lo, hi).astype(np.int64)
        r = np.arange(w, dtype=np.float32) + np.float32(0.5)
        x = x0.astype(np.float32).reshape(-1, 1, 1, 1) + r.reshape(1, 1, 1, w)
        y = y0.astype(np.float32).reshape(-1, 1, 1, 1) + r.reshape(1, 1, w, 1)
        # Every w×w window of every item, without copying; writing through it is safe because
        # the windows of one ``put`` belong to different items and never overlap.
        if w not in self._views:
            self._views[w] = sliding_window_view(self.data, (w, w), axis=(2, 3), writeable=True)
        return x, y, (w, (np.arange(self.n), slice(None), y0 + self.margin, x0 + self.margin))

    def get(self, key: Window) -> np.ndarray:
        w, index = key
        return self._views[w][index]

    def put(self, key: Window, values: np.ndarray) -> None:
        w, index = key
        self._views[w][index] = values

    def image(self) -> np.ndarray:
        return np.ascontiguousarray(self.inner)


def over(dst: np.ndarray, alpha: np.ndarray, rgb: np.ndarray) -> None:
    """Porter-Duff "over" of an opaque colour with coverage ``alpha`` (N, 1, h, w) onto an
    opaque ``dst`` (N, C, h, w), in place."""
    dst += alpha * (rgb - dst)


# ------------------------------------------------------------------------------- generation
#: Renders whose estimated time in one process (the second chunk's time × the chunks) is at
#: least this many seconds run on a process pool. Measured on a 2-core machine at load 5-6
#: (benchmarks/bench_data.py; notes in benchmarks/BENCHMARKS.md): the pool costs about 0.2 s the
#: first time in a process (the fork server starts) and 0.1 s after (forking the workers), plus
#: about 0.5 ms per MB of output to reserve the shared file. With 2 idle cores the pool saves
#: half the render, so it repays its cost from about 0.5 s; on the loaded machine, where a worker
#: finds no idle core, it lost at 0.3-1.4 s (shapes 16k 0.42×, hands 4k 0.69×, faces 4k 0.77×)
#: and won at 2.7 s (shapes 64k, 1.58×); the full benchmark at load 6 gave 0.44× at 0.22 s
#: (shapes 16k) and 1.17× at 1.2 s (64k). 1 s gives up at most a quarter second when idle.
PROCESS_MIN_SECONDS = 1.0
#: Environment variable overriding the number of worker processes (1: always in this process).
WORKERS_ENV = "LATENTSPEC_RENDER_WORKERS"
#: At most this many chunks per task handed to a worker: enough to amortise a task's messages,
#: few enough that the tasks balance over the workers.
TASK_CHUNKS = 16


def _settle_allocator() -> None:
    """Free one 24 MB block. glibc then raises its mmap and trim thresholds (its documented
    dynamic threshold), so the per-chunk temporaries are recycled instead of being returned to
    the system and page-faulted back in, which otherwise costs as much as the arithmetic.
    Harmless elsewhere."""
    block = np.ones(3_000_000)
    del block


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def render_workers(chunks: int) -> int:
    """Worker processes for a render of ``chunks`` chunks: ``$LATENTSPEC_RENDER_WORKERS`` if set,
    else one per core; never more than the chunks. ValueError naming the variable if it is not a
    positive integer."""
    text = os.environ.get(WORKERS_ENV, "").strip()
    if text:
        try:
            wanted = int(text)
        except ValueError:
            wanted = 0
        if wanted < 1:
            raise ValueError(f"${WORKERS_ENV} must be a positive integer (1: render in this process), got {text!r}")
    else:
        wanted = _cores()
    return max(1, min(wanted, chunks))


def _pool_context() -> multiprocessing.context.BaseContext | None:
    """The fork server: torch, imported by the caller, runs threads that a plain ``fork`` would
    copy mid-lock into the child (a deadlock), and ``spawn`` pays Python's start-up and the
    imports per worker where the fork server pays them once per process. None where there is no
    fork server (Windows), this process may not have children (a daemonic worker), or its
    ``__main__`` names a file that is not there (a script read from stdin): a worker re-imports
    ``__main__`` from its path and would die on start."""
    if "forkserver" not in multiprocessing.get_all_start_methods() or multiprocessing.current_process().daemon:
        return None
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if main is not None and not os.path.isfile(main):
        return None
    context = multiprocessing.get_context("forkserver")
    # The server imports numpy and the renderers once, so a worker forked from it starts in
    # milliseconds (no effect if the server already runs). '__main__' is the default entry.
    context.set_forkserver_preload(["__main__", "latentspec.data.procedural"])
    return context


def _shared_dir() -> str:
    """Where the workers' shared output file goes: /dev/shm (memory) where it exists, else the
    temporary directory (the page cache keeps it in memory too)."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


Layout = dict[str, tuple[str, tuple[int, ...], int]]  # name -> (dtype, item shape, byte offset)


def _views(mm: np.ndarray, n: int, layout: Layout) -> dict[str, np.ndarray]:
    out = {}
    for k, (dtype, shape, offset) in layout.items():
        size = n * int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        out[k] = mm[offset : offset + size].view(dtype).reshape(n, *shape)
    return out


def _render_task(
    render_batch: RenderBatch,
    factors: dict[str, np.ndarray],
    opts: dict,
    path: str,
    n: int,
    layout: Layout,
    start: int,
) -> None:
    """Worker: render the items ``start ..`` (the given factor slices) chunk by chunk, as in one
    process, into their rows of the shared file."""
    _settle_allocator()
    out = _views(np.memmap(path, np.uint8, mode="r+"), n, layout)
    m = len(next(iter(factors.values())))
    for s in range(0, m, CHUNK):
        part = render_batch({k: v[s : s + CHUNK] for k, v in factors.items()}, **opts)
        for k, v in part.items():
            out[k][start + s : start + s + len(v)] = v


def _render_pool(
    render_batch: RenderBatch,
    factors: dict[str, np.ndarray],
    opts: dict,
    first: dict[str, np.ndarray],
    n: int,
    workers: int,
    context: multiprocessing.context.BaseContext,
) -> dict[str, np.ndarray] | None:
    """``render_batch`` over tasks of whole chunks on ``workers`` processes that write into one
    shared file; the arrays returned map that file copy-on-write (no copy, and in-place changes
    stay private to this process, as for arrays of its own). None if there is no room for the
    file (the caller renders in this process)."""
    layout: Layout = {}
    total = 0
    for k, v in first.items():
        layout[k] = (v.dtype.str, v.shape[1:], total)
        total += -(-n * v[0].nbytes // 64) * 64  # 64-byte aligned
    chunks = -(-n // CHUNK)
    per_task = max(1, min(TASK_CHUNKS, chunks // (4 * workers))) * CHUNK
    try:
        fd, path = tempfile.mkstemp(prefix=f"latentspec-render-{os.getpid()}-", suffix=".bin", dir=_shared_dir())
    except OSError:
        return None
    try:
        try:
            # Reserve the memory now: a worker writing into a tmpfs that is full dies of SIGBUS.
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fd, 0, total)
            else:
                os.ftruncate(fd, total)
        except OSError:
            return None  # no room for the shared file
        finally:
            os.close(fd)
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            try:
                tasks = [
                    pool.submit(
                        _render_task,
                        render_batch,
                        {k: v[s : s + per_task] for k, v in factors.items()},
                        opts,
                        path,
                        n,
                        layout,
                        s,
                    )
                    for s in range(0, n, per_task)
                ]
                for task in as_completed(tasks):
                    task.result()
            except BrokenProcessPool as e:
                pool.shutdown(wait=True, cancel_futures=True)
                raise RuntimeError(
                    f"rendering in {workers} worker processes failed: a worker died ({e}). In a script, start "
                    f"the work under `if __name__ == '__main__':`; set {WORKERS_ENV}=1 to render in this process"
                ) from None
            except BaseException:  # a renderer's error (re-raised with the worker's traceback), Ctrl-C
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return {k: np.asarray(v) for k, v in _views(np.memmap(path, np.uint8, mode="c"), n, layout).items()}
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # the mapping outlives the name


def render_chunks(render_batch: RenderBatch, factors: dict[str, np.ndarray], opts: dict) -> dict[str, np.ndarray]:
    """``render_batch`` over chunks of items, on a process pool when the render is long enough
    to repay starting one (``PROCESS_MIN_SECONDS``), else in this process into preallocated
    arrays so the whole dataset is never held twice. The bytes are the same either way."""
    n = len(next(iter(factors.values())))
    chunks = [slice(s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]
    _settle_allocator()
    first = render_batch({k: v[chunks[0]] for k, v in factors.items()}, **opts)
    parts = [first]
    if len(chunks) > 1:
        t0 = time.perf_counter()  # the second chunk: the first pays first-call costs
        parts.append(render_batch({k: v[chunks[1]] for k, v in factors.items()}, **opts))
        estimate = (time.perf_counter() - t0) * (len(chunks) - 1)
        if estimate >= PROCESS_MIN_SECONDS:
            workers = render_workers(len(chunks))
            context = _pool_context() if workers > 1 else None
            pooled = _render_pool(render_batch, factors, opts, first, n, workers, context) if context else None
            if pooled is not None:
                return pooled
    out = {k: np.empty((n, *v.shape[1:]), v.dtype) for k, v in first.items()}
    for i, sl in enumerate(chunks):
        part = parts[i] if i < len(parts) else render_batch({k: v[sl] for k, v in factors.items()}, **opts)
        for k, v in part.items():
            out[k][sl] = v
    return out


# ------------------------------------------------------------------------------------ cache
def cache_dir() -> Path:
    """``$LATENTSPEC_CACHE``, else ``$XDG_CACHE_HOME/latentspec``, else ``~/.cache/latentspec``."""
    if os.environ.get("LATENTSPEC_CACHE"):
        return Path(os.environ["LATENTSPEC_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "latentspec"
    return Path.home() / ".cache" / "latentspec"


def _plain(value: Any) -> Any:
    """numpy values in params (from Python callers) as their JSON equivalents."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    raise TypeError(f"cannot use {value!r} of type {type(value).__name__} in dataset params")


def cache_path(name: str, params: Mapping[str, Any]) -> Path:
    """The cache file of a dataset: sha256 of the canonical JSON of (name, params, code version)."""
    text = json.dumps([name, dict(params), CODE_VERSION], sort_keys=True, separators=(",", ":"), default=_plain)
    return cache_dir() / f"{name}-{hashlib.sha256(text.encode()).hexdigest()}.npz"


def _read(path: Path, expect: Mapping[str, ArrayInfo] | None) -> dict[str, np.ndarray] | None:
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError, KeyError, TypeError, AttributeError, zipfile.BadZipFile):
        return None  # truncated or corrupt: regenerate and overwrite
    if expect is not None:
        if set(data) != set(expect) or len({len(a) for a in data.values()}) != 1:
            return None
        for k, info in expect.items():
            if data[k].shape[1:] != info.shape or data[k].dtype != np.dtype(info.dtype):
                return None
    return data


def save_atomic(path: Path, data: Mapping[str, np.ndarray]) -> None:
    """Write an .npz so that readers see the old file or the complete new one, never a part."""
    with atomic_open(path, "wb") as f:
        np.savez(f, **data)


def cached(
    name: str,
    params: Mapping[str, Any],
    make: Callable[[], dict[str, np.ndarray]],
    expect: Mapping[str, ArrayInfo] | None = None,
) -> dict[str, np.ndarray]:
    """``make()``, or its result from the cache when an intact file for these params exists."""
    path = cache_path(name, params)
    data = _read(path, expect)
    if data is None:
        data = make()
        with contextlib.suppress(OSError):  # a read-only or full cache must not break loading
            save_atomic(path, data)
    return data


# ---------------------------------------------------------------------------- base class
COMMON_PARAMS = (
    Param("size", "int", 10000, "number of items", minimum=1),
    Param(
        "seed", "int", 0, "seed of the factor draws; same seed and params => same bytes", minimum=0, maximum=MAX_SEED
    ),
    Param("factors", "mapping", {}, "per-factor range [lo, hi] or a fixed value; class names for categorical ones"),
    Param("cache", "bool", True, "cache the generated arrays under $LATENTSPEC_CACHE (or ~/.cache/latentspec)"),
)


class ProceduralDataset(DatasetSpec):
    """Base of the rendered datasets: sampling, chunked rendering, caching, grouped batches.

    A subclass declares ``factor_defs``, ``render_opts``, ``rendered_arrays`` and the
    module-level ``render_batch`` it draws with.
    """

    procedural: ClassVar[bool] = True
    description: ClassVar[str] = ""
    render_batch: ClassVar[RenderBatch]

    @abc.abstractmethod
    def factor_defs(self, cfg: dict) -> tuple[Factor, ...]:
        """The dataset's generating factors with their full domains."""

    def render_opts(self, cfg: dict) -> dict[str, Any]:
        return {"image_size": int(cfg["image_size"])}

    @abc.abstractmethod
    def rendered_arrays(self, cfg: dict) -> dict[str, ArrayInfo]:
        """The arrays ``render_batch`` draws (images, masks, joints), per item."""

    def factors(self, cfg: dict) -> tuple[Factor, ...]:
        """The factors with the ``factors:`` parameter applied (ValueError if it is invalid)."""
        return narrow(self.factor_defs(cfg), cfg.get("factors"))

    def factor_arrays(self, cfg: dict) -> dict[str, ArrayInfo]:
        out = {}
        for f in self.factors(cfg):
            if f.categorical:
                assert f.classes is not None
                out[f.name] = ArrayInfo((), "int64", "label", classes=len(f.classes), names=f.classes, doc=f.doc)
            else:
                out[f.name] = ArrayInfo((), "float32", "factor", range=f.range, doc=f.doc)
        return out

    def arrays(self, cfg: dict) -> dict[str, ArrayInfo]:
        cfg = self.resolve(cfg)
        return {**self.rendered_arrays(cfg), **self.factor_arrays(cfg)}

    def _key(self, cfg: dict) -> dict[str, Any]:
        return {k: v for k, v in cfg.items() if k != "cache"}

    def load(self, cfg: dict) -> dict[str, np.ndarray]:
        cfg = self.resolve(cfg)
        factors = self.factors(cfg)
        opts = self.render_opts(cfg)

        def make() -> dict[str, np.ndarray]:
            return render_chunks(type(self).render_batch, sample(factors, int(cfg["seed"]), int(cfg["size"])), opts)

        if not cfg.get("cache", True):
            return make()
        return cached(self.name, self._key(cfg), make, self.arrays(cfg))

    def load_grouped(self, cfg: dict, vary: list[str], group: int) -> dict[str, np.ndarray]:
        """``size`` items (rounded down to a multiple of ``group``) in blocks of ``group`` where
        only the factor ``vary[b % len(vary)]`` changes; adds ``vary`` (int64, per item). An
        empty ``vary`` means every factor that ``factors:`` leaves free, in turn."""
        cfg = self.resolve(cfg)
        factors = self.factors(cfg)
        opts = self.render_opts(cfg)
        vary = list(vary or ()) or [f.name for f in factors if not f.fixed]

        def make() -> dict[str, np.ndarray]:
            values = sample_grouped(factors, int(cfg["seed"]), int(cfg["size"]), vary, int(group))
            which = values.pop("vary")
            return {**render_chunks(type(self).render_batch, values, opts), "vary": which}

        if not cfg.get("cache", True):
            return make()
        expect = {**self.arrays(cfg), "vary": ArrayInfo((), "int64", "index")}
        key = {**self._key(cfg), "vary": vary, "group": int(group)}
        return cached(self.name + ".grouped", key, make, expect)

    # -- re-rendering, for edit fidelity (``latentspec eval --edit-fidelity``) ----------------
    #: Per factor, the name of the image region that factor changes (``region``); empty: none.
    regions: ClassVar[dict[str, str]] = {}

    def rerender(
        self, cfg: dict, factors: Mapping[str, np.ndarray], changes: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Items rendered again from their factor values (``factors``: every factor's array of
        these items, as ``load`` returns them; other arrays are ignored) with ``changes``
        ({factor: new values}) applied: the ground truth of an edit. Unchanged factors give the
        items of ``load`` byte for byte. ValueError for a change that is not a factor."""
        cfg = self.resolve(cfg)
        names = [f.name for f in self.factors(cfg)]
        for name in changes:
            if name not in names:
                raise ValueError(f"unknown factor {name!r}; the factors are: {', '.join(names)}")
        given = {name: np.asarray(factors[name]) for name in names}
        given.update({name: np.asarray(v) for name, v in changes.items()})
        return type(self).render_batch(given, **self.render_opts(cfg))

    def region(self, cfg: dict, factor: str, rendered: Sequence[Mapping[str, np.ndarray]]) -> np.ndarray | None:
        """A boolean mask (N, 1, H, W) of the pixels that ``factor`` changes in these renders of
        the same items (``rerender`` outputs, e.g. before and after a change), or None when the
        dataset marks no region for it (``regions``)."""
        return None

    def metadata(self, cfg: dict) -> dict[str, Any]:
        cfg = self.resolve(cfg)
        return {
            "description": self.description,
            "image_size": int(cfg["image_size"]),
            "factors": {f.name: f.describe() for f in self.factors(cfg)},
            "arrays": sorted(self.arrays(cfg)),
            "code_version": CODE_VERSION,
        }
