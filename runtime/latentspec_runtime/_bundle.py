"""``Bundle``: a verified bundle folder whose entry points run in onnxruntime.

``run`` is the generic, strict call (inputs exactly as the manifest describes them); the
high-level methods (``decode``, ``sample``, ``interpolate``, ...) add what users expect on top:
single unbatched items, noise drawn from a seed, default trip counts, and the optimisation loop
of "optimize" entries. Batch-1 latency matters, so the per-call path avoids rebuilding anything
the manifest already fixed: input checks and output names are precomputed per entry.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import operator
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._groups import LatentGroup, warn_if_poor
from ._manifest import (
    RANGE_TOL,
    BundleError,
    EntrySpec,
    InputError,
    Manifest,
    TensorSpec,
    mismatch_message,
    read_manifest,
    verify_files,
)
from ._optimize import optimize

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_ITERATIONS = 2
#: The onnxruntime session options every entry gets, chosen by measurement
#: (``benchmarks/bench_runtime.py`` times the alternatives; BENCHMARKS.md has the table): full
#: graph optimisation, sequential execution with one inter-op thread (these graphs are chains;
#: a parallel executor only adds hand-offs), memory pattern and CPU arena on (reused buffers).
#: ``Bundle.session_options`` reports them with the intra-op thread count a bundle used.
SESSION_OPTIONS: dict[str, Any] = {
    "graph_optimization_level": "ORT_ENABLE_ALL",
    "execution_mode": "ORT_SEQUENTIAL",
    "inter_op_num_threads": 1,
    "enable_mem_pattern": True,
    "enable_cpu_mem_arena": True,
}
_MISSING = object()
_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise BundleError(
            "onnxruntime is not installed; install the runtime with an execution provider: "
            "pip install 'latentspec-runtime[cpu]' (or '[gpu]' for CUDA)"
        ) from None
    return onnxruntime


class _Check:
    """What one input must look like, precomputed from its TensorSpec for the per-call path."""

    __slots__ = ("dtype", "fixed", "hi", "lo", "name", "rank", "spec", "tail")

    def __init__(self, spec: TensorSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.dtype = spec.dtype
        self.rank = len(spec.shape)
        rest = spec.shape[1:]
        # tail: the common shape [batch, ints...]; fixed: a shape without names.
        self.tail = rest if spec.batched and all(isinstance(d, int) for d in rest) else None
        named = any(isinstance(d, str) for d in spec.shape)
        self.fixed = None if named else spec.shape
        self.lo = self.hi = None
        if spec.range is not None:
            self.lo, self.hi = spec.range[0] - RANGE_TOL, spec.range[1] + RANGE_TOL


class _Entry:
    """One entry point: its spec, input checks, output names and (once created) its session."""

    __slots__ = (
        "batched_in",
        "batched_out",
        "checks",
        "cuda",
        "data",
        "iterations",
        "latent",
        "mask",
        "out_names",
        "run",
        "seen",
        "session",
        "spec",
        "valued",
    )

    def __init__(self, spec: EntrySpec) -> None:
        self.spec = spec
        self.checks = tuple(_Check(t) for t in spec.inputs)
        self.out_names = [t.name for t in spec.outputs]
        self.session: Any = None
        self.run: Any = None  # the session's run(names, feed, options), once created
        self.cuda = False
        # Input signatures (name, class, shape, dtype per input) already checked, with their
        # batch size: a call with a known signature only runs the value checks (range, finite).
        self.seen: dict[tuple[Any, ...], int] = {}
        self.valued = tuple(c for c in self.checks if c.lo is not None)
        self.data = _pick_input(spec, ("image", "value", "latent"))
        self.latent = _pick_input(spec, ("latent", "value", "image"))
        self.iterations = next((t for t in spec.inputs if t.meaning == "iterations"), None)
        self.mask = next((t for t in spec.inputs if t.meaning == "mask"), None)
        self.batched_in = tuple((t.name, len(t.shape)) for t in spec.inputs if t.batched)
        # Outputs that lose their batch axis when a call was for one item ("loss": optimize).
        self.batched_out = frozenset([t.name for t in spec.outputs if t.batched] + ["loss"])


def _pick_input(spec: EntrySpec, meanings: Sequence[str]) -> TensorSpec | None:
    """The entry's main input: the first whose meaning comes first in ``meanings``."""
    for meaning in meanings:
        for t in spec.inputs:
            if t.meaning == meaning:
                return t
    return next((t for t in spec.inputs if t.meaning not in ("noise", "iterations")), None)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


class Bundle:
    """A bundle folder written by ``latentspec export``, checked and ready to run.

    >>> bundle = Bundle.load("vae_mnist.bundle", device="cpu")  # doctest: +SKIP
    >>> images = bundle.sample(16, seed=0)  # (16, 1, 28, 28) in [0, 1]  # doctest: +SKIP
    >>> z = bundle.code(images[0])  # a single item: (20,)  # doctest: +SKIP
    """

    def __init__(self, root: Path, manifest: Manifest, device: str, threads: int | None) -> None:
        """Use :meth:`Bundle.load`; this constructor trusts its arguments."""
        self._root = root
        self._manifest = manifest
        self._device = device
        self._threads = threads
        self._ort = _import_onnxruntime()
        self._requested = _requested_providers(device, self._ort)
        self._providers: list[str] | None = None
        self._entries = {name: _Entry(spec) for name, spec in manifest.entries.items()}
        self._lock = threading.Lock()
        self._tasks: dict[str, _Entry] = {}
        self._filled: dict[tuple[Any, ...], dict[str, np.ndarray]] = {}  # see _fill
        self._bound = threading.local()  # per thread: {(entry, input shapes): _Bound or None}
        self.check_finite = False  # reject NaN/Inf inputs (Bundle.load(finite=True); the CLI's default)

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str = "auto",
        threads: int | None = None,
        *,
        preload: bool = False,
        finite: bool = False,
    ) -> Bundle:
        """Read ``path/manifest.json``, verify every file's sha256 and prepare the entry points.

        ``device``: "cpu", "cuda" (fails unless onnxruntime really runs on CUDA) or "auto" (CUDA
        when onnxruntime offers it, else CPU). ``threads``: onnxruntime's intra-op threads
        (default: its own choice). Sessions are created on an entry's first use, or all now
        with ``preload=True``; with device "cuda" the first one is created now to fail early.
        ``finite``: refuse inputs holding NaN or infinity (an :class:`InputError` naming the entry
        and input) instead of running the graph on them.
        """
        if device not in DEVICES:
            raise InputError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
        if threads is not None:
            _check_int("threads", threads, 1)
        root = Path(path)
        manifest = read_manifest(root)
        verify_files(root, manifest.files)
        bundle = cls(root, manifest, device, threads)
        bundle.check_finite = bool(finite)
        if preload:
            for entry in bundle._entries.values():
                bundle._session(entry)
        elif device == "cuda" and bundle._entries:
            bundle._session(next(iter(bundle._entries.values())))
        return bundle

    # -- properties --------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The bundle folder."""
        return self._root

    @property
    def name(self) -> str:
        """The model's name from the manifest."""
        return self._manifest.name

    @property
    def entries(self) -> tuple[str, ...]:
        """The entry point names, in manifest order."""
        return tuple(self._entries)

    @property
    def manifest(self) -> dict[str, Any]:
        """A copy of manifest.json as read."""
        return copy.deepcopy(self._manifest.raw)

    @property
    def device(self) -> str:
        """The device asked for: "auto", "cpu" or "cuda"."""
        return self._device

    @property
    def session_options(self) -> dict[str, Any]:
        """The onnxruntime session options this bundle's sessions get (:data:`SESSION_OPTIONS`
        and ``intra_op_num_threads``: the ``threads`` given to load, None for onnxruntime's choice)."""
        return {**SESSION_OPTIONS, "intra_op_num_threads": self._threads}

    @property
    def providers(self) -> list[str]:
        """The execution providers onnxruntime actually uses (creates a first session if needed)."""
        if self._providers is None and self._entries:
            self._session(next(iter(self._entries.values())))
        return list(self._providers or [])

    def __repr__(self) -> str:
        return (
            f"Bundle({str(self._root)!r}, name={self.name!r}, entries={list(self._entries)}, device={self._device!r})"
        )

    # -- sessions ----------------------------------------------------------------------------

    def _entry(self, name: str) -> _Entry:
        entry = self._entries.get(name)
        if entry is None:
            raise BundleError(f"this bundle has no {name!r} entry point; it has: {', '.join(self._entries)}")
        return entry

    def entry_for(self, task: str) -> str:
        """The name of the entry that does ``task`` (its manifest ``task``: encode, decode,
        sample, ...): the one named ``task`` when several do, else the only one. The methods
        :meth:`encode`, :meth:`decode`, :meth:`sample` and the others run this entry."""
        names = [n for n, e in self._entries.items() if e.spec.task == task]
        if not names:
            raise BundleError(f"this bundle has no {task!r} entry point; it has: {', '.join(self._entries)}")
        if task in names:
            return task
        if len(names) > 1:
            raise BundleError(f"entries {', '.join(names)} all do {task!r}; run one by name: bundle.run(NAME, ...)")
        return names[0]

    def _task(self, task: str) -> _Entry:
        e = self._tasks.get(task)  # the manifest is fixed: look each task up once
        if e is None:
            e = self._tasks[task] = self._entries[self.entry_for(task)]
        return e

    def has_task(self, task: str) -> bool:
        """Whether an entry does ``task`` (see :meth:`entry_for`)."""
        return any(e.spec.task == task for e in self._entries.values())

    def _session(self, entry: _Entry) -> Any:
        with self._lock:
            if entry.session is not None:
                return entry.session
            spec = entry.spec
            path = self._root / spec.file
            try:
                model = path.read_bytes()
            except OSError as err:
                raise BundleError(f"{path}: cannot read it ({err.strerror}); re-export the bundle") from None
            # Hash the very bytes the session is built from: the file may change after load().
            expected = self._manifest.files[spec.file]
            actual = hashlib.sha256(model).hexdigest()
            if actual != expected:
                raise BundleError(mismatch_message(self._root, spec.file, expected, actual))
            ort = self._ort
            options = _session_options(ort, self._threads)
            try:
                session = ort.InferenceSession(model, sess_options=options, providers=self._requested)
            except Exception as err:  # onnxruntime raises its own types; all mean "cannot load"
                raise BundleError(f"{path}: onnxruntime cannot load it: {err}") from None
            got = session.get_providers()
            if self._device == "cuda" and got[0] != CUDA:
                raise BundleError(
                    f"device 'cuda' was asked for, but onnxruntime gave {got}: install the gpu "
                    "extra (pip install 'latentspec-runtime[gpu]'; uninstall the plain "
                    "onnxruntime package, which shadows it), check the NVIDIA driver and CUDA "
                    "libraries, or use device='cpu'"
                )
            if got[0] != CUDA and CUDA in self._requested:
                self._requested = [CPU]  # "auto" fell back: do not try CUDA for every entry
            _check_graph(entry, session, path)
            entry.cuda = got[0] == CUDA
            # The session's own run() re-checks the feed's names and ownership on every call;
            # _validate has checked them already, so call the binding underneath when there is one.
            inner = getattr(session, "_sess", None)
            entry.run = inner.run if inner is not None and hasattr(inner, "run") else session.run
            entry.session = session
            self._providers = got
            return session

    def _run_session(self, entry: _Entry, names: Sequence[str], feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        session = entry.session if entry.session is not None else self._session(entry)
        try:
            if entry.cuda:
                return _run_bound(session, names, feed)
            if names is entry.out_names:
                return self._run_preallocated(entry, feed)
            return entry.run(names, feed, None)
        except Exception as err:
            raise BundleError(f"entry {entry.spec.name!r}: onnxruntime failed: {err}") from None

    def _run_preallocated(self, entry: _Entry, feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run through an IO binding whose input and output buffers were allocated for these
        input shapes (per thread: buffers are not shared between threads). The first call with
        new shapes runs plainly and learns the output shapes; outputs are returned as copies, so
        a caller's results are never overwritten by a later call."""
        slots = self._bound.__dict__
        key = (entry.spec.name, *[(k, v.shape) for k, v in feed.items()])
        slot = slots.get(key, _MISSING)
        if slot is _MISSING:
            outs = entry.run(entry.out_names, feed, None)
            if len(slots) >= 32:  # callers that vary shapes endlessly: start over, stay small
                slots.clear()
            slots[key] = _Bound.make(entry.session, feed, entry.out_names, outs)
            return outs
        if slot is None:
            return entry.run(entry.out_names, feed, None)
        try:
            return slot(feed)
        except Exception:  # e.g. an output whose shape depends on values: run plainly from now on
            slots[key] = None
            return entry.run(entry.out_names, feed, None)

    # -- generic call ------------------------------------------------------------------------

    def run(self, entry: str, inputs: Mapping[str, Any] | None = None, **kw: Any) -> dict[str, np.ndarray]:
        """Run an entry point on inputs given exactly as the manifest describes them.

        Inputs come as a mapping and/or keywords. Each is checked (name, dtype, shape, batch
        size, range) and an :class:`InputError` says what differs; float64 or integer arrays
        for float32 inputs are converted. An "optimize" entry runs its loop with the manifest's
        steps and seed 0. Returns the outputs by name.

        >>> bundle.run("decode", z=np.zeros((1, 20), np.float32))["x_mean"].shape  # doctest: +SKIP
        (1, 1, 28, 28)
        """
        e = self._entry(entry)
        if inputs is not None and inputs.__class__ is not dict and not isinstance(inputs, Mapping):
            raise InputError(
                f"entry {entry!r}: inputs go by name, as a mapping or keywords: "
                f"run({entry!r}, {{{', '.join(repr(n) + ': ...' for n in _input_names(e))}}}) or "
                f"run({entry!r}, {', '.join(n + '=...' for n in _input_names(e))})"
            )
        if kw:
            inputs = {**inputs, **kw} if inputs else kw
        elif inputs is None:
            inputs = {}
        feed, batch = self._validate(e, inputs)
        if e.spec.optimize is not None:
            return self._optimize(e, feed, batch, None, 0)
        return dict(zip(e.out_names, self._run_session(e, e.out_names, feed)))

    def _validate(self, e: _Entry, inputs: Mapping[str, Any]) -> tuple[Mapping[str, np.ndarray], int | None]:
        """Check ``inputs`` against the entry; return the feed (converted where allowed) and batch.

        Names, dtypes and shapes are checked once per signature: a call whose inputs have the
        classes, shapes and dtypes of an earlier call that passed unconverted only gets the
        checks that depend on values (range; finiteness with ``check_finite``).
        """
        try:
            key = tuple([(k, v.__class__, v.shape, v.dtype) for k, v in inputs.items()])
        except AttributeError:  # a list or scalar: the full path converts it
            key = None
        if key is not None:
            batch = e.seen.get(key)
            if batch is not None:
                finite = self.check_finite
                for c in e.checks if finite else e.valued:  # in the full path's order
                    a = inputs[c.name]
                    if finite and a.dtype.kind == "f" and a.size and not np.isfinite(a).all():
                        raise _nonfinite_error(e.spec.name, c.name, a)
                    if c.lo is not None and a.size and not (a.min() >= c.lo and a.max() <= c.hi):
                        raise _range_error(e.spec.name, c.spec, a)
                return inputs, batch if batch >= 0 else None
        feed = inputs
        batch, batch_from = -1, ""
        named: dict[str, tuple[int, str]] | None = None  # sizes of named dims, when there are any
        for c in e.checks:
            a = inputs.get(c.name, _MISSING)
            if a is _MISSING:
                if _unknown_names(e, inputs):  # a misspelt name explains the missing one
                    raise _unknown_error(e, inputs)
                raise InputError(
                    f"entry {e.spec.name!r}: missing input {c.name!r} ({c.spec.describe()}); "
                    f"it takes: {', '.join(_input_names(e))}"
                )
            if a.__class__ is not np.ndarray or a.dtype is not c.dtype:
                b = _coerce(e.spec.name, c, a)
                if b is not a:
                    if feed is inputs:
                        feed = dict(inputs)
                    feed[c.name] = a = b
            shape = a.shape
            if c.tail is not None:
                if len(shape) != c.rank or shape[1:] != c.tail:
                    raise _shape_error(e.spec.name, c.spec, shape)
                if batch != shape[0]:
                    if batch >= 0:
                        raise _dim_error(e.spec.name, c.spec, "batch", shape[0], (batch, batch_from))
                    batch, batch_from = shape[0], c.name
            elif c.fixed is not None:
                if shape != c.fixed:
                    raise _shape_error(e.spec.name, c.spec, shape)
            else:
                named = {} if named is None else named
                if batch >= 0:
                    named["batch"] = (batch, batch_from)
                _match_named(e.spec.name, c.spec, shape, named)
                batch, batch_from = named.get("batch", (-1, ""))
            if self.check_finite and a.dtype.kind == "f" and a.size and not np.isfinite(a).all():
                raise _nonfinite_error(e.spec.name, c.name, a)
            if c.lo is not None and a.size:
                lo, hi = a.min(), a.max()
                if not (lo >= c.lo and hi <= c.hi):
                    raise _range_error(e.spec.name, c.spec, a)
        if len(inputs) != len(e.checks):  # all checked inputs were found: the rest are unknown
            raise _unknown_error(e, inputs)
        if key is not None and feed is inputs and all(k[1] is np.ndarray for k in key):
            if len(e.seen) >= 64:  # callers that vary shapes endlessly: start over, stay small
                e.seen.clear()
            e.seen[key] = batch
        return feed, batch if batch >= 0 else None

    def _optimize(
        self, e: _Entry, feed: Mapping[str, np.ndarray], batch: int | None, steps: int | None, seed: int
    ) -> dict[str, np.ndarray]:
        opt = e.spec.optimize
        assert opt is not None
        if batch is None:
            raise InputError(f"entry {e.spec.name!r}: no batched input tells the batch size")
        steps = opt.steps if steps is None else _check_int("steps", steps, 0)
        data = dict(feed)

        def step(z: np.ndarray, names: Sequence[str]) -> list[np.ndarray]:
            data[opt.variable] = z
            return self._run_session(e, names, data)

        return optimize(step, opt, batch, e.out_names, steps=steps, seed=seed)

    # -- high-level calls --------------------------------------------------------------------

    def _call(
        self,
        entry: str | _Entry,
        given: dict[str, Any],
        *,
        seed: int = 0,
        n: int | None = None,
        steps: int | None = None,
        iterations: int | None = None,
    ) -> tuple[dict[str, np.ndarray], bool]:
        """Run an entry the friendly way; return its outputs and whether the call was one item.

        ``given`` must be a fresh dict: it is modified.

        A batched input given without its batch axis makes the call a single item (added here,
        removed from the outputs); with ``n`` or a batched main input, unbatched inputs are
        broadcast over the batch. Noise inputs not given are drawn from ``seed``, in input
        order; an iterations input not given gets its default.
        """
        e = entry if isinstance(entry, _Entry) else self._entry(entry)
        spec = e.spec
        _check_seed(seed)
        arrays = given  # a dict the caller built for this call: converted in place
        for k, v in arrays.items():
            if v.__class__ is not np.ndarray:
                if _is_text(v):
                    v = _class_indices(e, k, v)
                arrays[k] = _as_array(spec.name, k, v)
        short = []  # batched inputs given without their batch axis
        batch = n
        for name, rank in e.batched_in:
            a = arrays.get(name)
            if a is None:
                continue
            if a.ndim == rank - 1:
                short.append(name)
            elif batch is None and a.ndim:
                batch = a.shape[0]
        single = bool(short) and batch is None
        if single:
            batch = 1
            for k in short:
                arrays[k] = arrays[k][None]
        elif short and batch is not None:
            for k in short:
                arrays[k] = np.broadcast_to(arrays[k], (batch, *arrays[k].shape))
        if iterations is not None and e.iterations is None:
            raise InputError(f"entry {spec.name!r} has no iterations input; it takes: {', '.join(_input_names(e))}")
        if len(arrays) != len(e.checks):
            self._fill(e, arrays, batch, seed, iterations)
        feed, fed_batch = self._validate(e, arrays)
        if spec.optimize is not None:
            out = self._optimize(e, feed, fed_batch, steps, seed)
        else:
            out = dict(zip(e.out_names, self._run_session(e, e.out_names, feed)))
        if single:
            out = {k: v[0] if k in e.batched_out else v for k, v in out.items()}
        return out, single

    def _fill(
        self, e: _Entry, arrays: dict[str, np.ndarray], batch: int | None, seed: int, iterations: int | None
    ) -> None:
        """Add the inputs a high-level call may leave out: noise (drawn) and iterations (default).

        What is filled depends only on the entry, the given names, seed, batch and iterations,
        so small fillings are kept (read-only) and reused: drawing from a fresh generator costs
        more than a batch-1 graph run."""
        spec = e.spec
        key = (spec.name, int(seed), batch, iterations, *arrays)
        known = self._filled.get(key)
        if known is not None:
            arrays.update(known)
            return
        if _unknown_names(e, arrays):
            raise _unknown_error(e, arrays)
        given = set(arrays)
        rng = None
        for t in spec.inputs:
            if t.name in arrays:
                continue
            if t.meaning == "noise":
                if batch is None and t.batched:
                    raise InputError(
                        f"entry {spec.name!r}: cannot tell the batch size to draw noise {t.name!r}; give a batched input"
                    )
                rng = rng if rng is not None else np.random.default_rng(seed)
                arrays[t.name] = _draw(rng, t, batch or 0)
            elif t.meaning == "iterations":
                k = (
                    iterations
                    if iterations is not None
                    else (t.default if t.default is not None else DEFAULT_ITERATIONS)
                )
                arrays[t.name] = np.asarray(k, dtype=np.int64)
            else:
                raise InputError(
                    f"entry {spec.name!r} also needs input {t.name!r} ({t.describe()}); pass it "
                    f"by name (e.g. {t.name}=...) or call bundle.run({spec.name!r}, ...)"
                )
        filled = {k: v for k, v in arrays.items() if k not in given}
        if sum(v.nbytes for v in filled.values()) <= 1 << 20:
            for v in filled.values():
                v.flags.writeable = False
            if len(self._filled) >= 64:
                self._filled.clear()
            self._filled[key] = filled

    def _data_input(self, task: str) -> _Entry:
        e = self._task(task)
        if e.data is None:
            raise BundleError(f"entry {e.spec.name!r} has no data input; use bundle.run({e.spec.name!r}, ...)")
        return e

    def encode(self, x: Any, *, seed: int = 0, **inputs: Any) -> dict[str, np.ndarray]:
        """All outputs of the ``encode`` entry for ``x`` (one item or a batch)."""
        e = self._data_input("encode")
        return self._call(e, {e.data.name: x, **inputs}, seed=seed)[0]

    def _code(self, x: Any, seed: int, inputs: Mapping[str, Any]) -> tuple[np.ndarray, bool]:
        e = self._data_input("encode")
        name = e.spec.code
        if name is None:
            if len(e.spec.outputs) != 1:
                raise BundleError(
                    "the encode entry does not say which output is the code (its 'code' field is "
                    f"null) and has several: {', '.join(e.out_names)}; use encode() and pick one"
                )
            name = e.out_names[0]
        out, single = self._call(e, {e.data.name: x, **inputs}, seed=seed)
        return out[name], single

    def code(self, x: Any, *, seed: int = 0, **inputs: Any) -> np.ndarray:
        """The code of ``x``: the encode entry's ``code`` output (e.g. ``z_mu`` of a VAE)."""
        return self._code(x, seed, inputs)[0]

    def _decode(self, z: np.ndarray, seed: int, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        e = self._task("decode")
        if e.latent is None:
            raise BundleError(f"the decode entry has no latent input; use bundle.run({e.spec.name!r}, ...)")
        return self._call(e, {e.latent.name: z, **inputs}, seed=seed)[0]

    def decode(self, z: Any, *, seed: int = 0, **inputs: Any) -> np.ndarray | dict[str, np.ndarray]:
        """Decode latent codes ``z``: the decode entry's output (a dict if it has several)."""
        return _one_or_all(self._decode(z, seed, inputs))

    def sample(self, n: int, seed: int = 0, **inputs: Any) -> np.ndarray | dict[str, np.ndarray]:
        """``n`` samples from the ``sample`` entry, its noise drawn with ``default_rng(seed)``.

        Inputs other than noise (e.g. a class label) are given by name; an unbatched value is
        used for all ``n``. A label whose manifest input lists ``classes`` also takes a class
        name: ``bundle.sample(16, seed=0, y=7)``, ``bundle.sample(16, c="heart")``.
        """
        n = _check_int("n", n, 1)
        return _one_or_all(self._call(self._task("sample"), inputs, seed=seed, n=n)[0])

    def reconstruct(self, x: Any, *, seed: int = 0, **inputs: Any) -> np.ndarray | dict[str, np.ndarray]:
        """The ``reconstruct`` entry's output for ``x``, or ``decode(code(x))`` without one."""
        if self.has_task("reconstruct"):
            e = self._data_input("reconstruct")
            return _one_or_all(self._call(e, {e.data.name: x, **inputs}, seed=seed)[0])
        z, _ = self._code(x, seed, inputs)
        return _one_or_all(self._decode(z, seed, {}))

    def interpolate(
        self, a: Any, b: Any, steps: int = 8, method: str = "lerp", *, seed: int = 0
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Decode ``steps`` codes from ``code(a)`` to ``code(b)`` (both ends included).

        ``method``: "lerp" (straight line) or "slerp" (great circle, for normal priors).
        Shape (steps, ...) for single items, (B, steps, ...) for batches.
        """
        steps = _check_int("steps", steps, 2)
        if method not in ("lerp", "slerp"):
            raise InputError(f"method must be 'lerp' or 'slerp', got {method!r}")
        za, single_a = self._code(a, seed, {})
        zb, single_b = self._code(b, seed, {})
        if single_a != single_b or za.shape != zb.shape:
            raise InputError(
                f"a and b must both be single items or batches of one size; their codes have "
                f"shapes {_shape_text(za.shape)} and {_shape_text(zb.shape)}"
            )
        if single_a:
            za, zb = za[None], zb[None]
        size = za.shape[0]
        z = _interpolate(za.reshape(size, -1), zb.reshape(size, -1), steps, method)  # (B, S, D)
        out = self._decode(z.reshape(size * steps, *za.shape[1:]), seed, {})
        out = {k: v.reshape(size, steps, *v.shape[1:]) for k, v in out.items()}
        if single_a:
            out = {k: v[0] for k, v in out.items()}
        return _one_or_all(out)

    def _edit_latent(self) -> str | None:
        """The latent edits move: the one decode's latent input takes, else the only latent
        with groups."""
        if self.has_task("decode"):
            latent = self._task("decode").latent
            if latent is not None and latent.latent:
                return latent.latent
        grouped = list(self._manifest.groups)
        return grouped[0] if len(grouped) == 1 else None

    @property
    def latent_groups(self) -> dict[str, LatentGroup]:
        """The named groups of code units of the latent that edits move (the decode entry's),
        by name: each with its ``units``, its ``factor`` and ``calibration`` (R², fit, range) when
        the export calibrated it. Edit with ``edit(x, NAME=amount)``."""
        return dict(self._manifest.groups.get(self._edit_latent() or "", {}))

    @property
    def factors(self) -> dict[str, LatentGroup]:
        """The calibrated groups (:attr:`latent_groups` with a ``calibration``), by factor name:
        ``edit(x, yaw=2.0)`` moves the code so that the fit's yaw rises by 2 (yaw's own units)."""
        return {g.factor: g for g in self.latent_groups.values() if g.calibration is not None and g.factor}

    def _group(self, name: str) -> LatentGroup:
        groups = self.latent_groups
        found = groups.get(name)
        if found is None:
            found = next((g for g in groups.values() if g.factor == name), None)
        if found is None:
            close = difflib.get_close_matches(name, list(groups), 1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(groups) or "none (the spec's latent declares no `groups`)"
            raise InputError(f"no latent group {name!r} in this bundle{hint}; its groups: {known}")
        return found

    def factor_values(self, z: Any) -> dict[str, np.ndarray]:
        """Each calibrated factor as its fit predicts it from codes ``z`` ((D,) or (B, D))."""
        z = _as_array("factor_values", "z", z)
        factors = self.factors
        for g in factors.values():
            if z.ndim not in (1, 2) or (g.dim is not None and z.shape[-1] != g.dim):
                raise InputError(
                    f"factor_values: codes are (D,) or (B, D) with D = {g.dim} (latent {g.latent!r}); "
                    f"got shape {_shape_text(z.shape)}"
                )
        return {name: g.predict(z) for name, g in factors.items()}

    def edit_code(
        self,
        z: Any,
        direction: str | Any | None = None,
        alpha: float = 1.0,
        *,
        units: str = "factor",
        factors: Mapping[str, float] | None = None,
        **amounts: float,
    ) -> np.ndarray:
        """The codes ``z`` ((D,) or (B, D)) moved by ``alpha`` along ``direction`` (a name in
        the manifest or a vector) and by each ``GROUP=amount`` (or ``factors={GROUP: amount}``).

        ``units="factor"``: an amount is in the group's factor's own units; the code moves along
        ``w / ‖w‖²`` on the group's units, so the export's fit ``factor ≈ b + w·z[units]``
        rises by exactly that amount (a :class:`CalibrationWarning` when the fit's R² < 0.5).
        ``units="code"``: the code moves by that length along ``w / ‖w‖`` (or the group's unit
        when it has no calibration). :attr:`latent_groups` lists the groups.
        """
        z = _as_array("edit", "z", z)
        z = z.astype(np.float32) if z.dtype != np.float32 else z.copy()
        if z.ndim not in (1, 2):
            raise InputError(f"a code is (D,) or a batch (B, D); got shape {_shape_text(z.shape)}")
        edits = {**(factors or {}), **amounts}
        if direction is None and not edits:
            groups = ", ".join(self.latent_groups) or "none"
            raise InputError(f"edit: give a direction or amounts by group name (groups: {groups})")
        dim = z.shape[-1]
        if direction is not None:
            z = z + np.float32(alpha) * self._direction(direction, dim)
        if edits and units not in ("factor", "code"):
            raise InputError(f"units must be 'factor' or 'code', got {units!r}")
        for name, amount in edits.items():
            group = self._group(name)
            if isinstance(amount, bool) or not isinstance(amount, (int, float, np.integer, np.floating)):
                raise InputError(f"edit: the amount for {name!r} must be a number, got {amount!r}")
            if not np.isfinite(amount):
                raise InputError(f"edit: the amount for {name!r} must be finite, got {amount!r}")
            d = group.direction(units)
            if d.size != dim:
                raise InputError(f"group {name!r} is in a code of {d.size} units; this code has {dim}")
            if units == "factor":
                warn_if_poor(group)
            z = z + np.float32(amount) * d
        return z

    def _direction(self, direction: str | Any, dim: int) -> np.ndarray:
        if isinstance(direction, str):
            found = self._manifest.directions.get(direction)
            if found is None:
                known = ", ".join(self._manifest.directions) or "none"
                close = difflib.get_close_matches(direction, list(self._manifest.directions), 1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise InputError(f"no direction {direction!r} in this bundle{hint}; it has: {known}")
            latent = self._task("decode").latent if self.has_task("decode") else None
            if found.latent and latent is not None and latent.latent and found.latent != latent.latent:
                raise InputError(
                    f"direction {direction!r} lives in latent {found.latent!r}, but decode takes "
                    f"latent {latent.latent!r}"
                )
            d = found.vector
        else:
            d = _as_array("edit", "direction", direction).astype(np.float32)
        if d.size != dim:
            raise InputError(f"the direction has {d.size} numbers but a code has {dim}")
        return d.reshape(dim)

    def edit(
        self,
        x: Any,
        direction: str | Any | None = None,
        alpha: float = 1.0,
        *,
        seed: int = 0,
        units: str = "factor",
        factors: Mapping[str, float] | None = None,
        **amounts: float,
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Decode ``code(x)`` moved by :meth:`edit_code`: ``alpha`` along ``direction`` (a name in
        the manifest or a vector) and/or by group, e.g. ``edit(x, yaw=2.0)`` (yaw's units) or
        ``edit(x, yaw=0.5, units="code")``."""
        z, single = self._code(x, seed, {})
        flat = z.reshape(-1) if single else z.reshape(len(z), -1)
        moved = self.edit_code(flat, direction, alpha, units=units, factors=factors, **amounts)
        return _one_or_all(self._decode(moved.reshape(z.shape), seed, {}))

    def refine(
        self, x: Any, iterations: int | None = None, *, seed: int = 0, **inputs: Any
    ) -> np.ndarray | dict[str, np.ndarray]:
        """The ``refine`` entry for ``x``, its loop run ``iterations`` times.

        Default: the manifest's ``default`` for the iterations input, else 2.
        """
        if iterations is not None:
            iterations = _check_int("iterations", iterations, 0)
        e = self._data_input("refine")
        return _one_or_all(self._call(e, {e.data.name: x, **inputs}, seed=seed, iterations=iterations)[0])

    def invert(self, x: Any, steps: int | None = None, seed: int = 0, **inputs: Any) -> dict[str, np.ndarray]:
        """Optimise a code for ``x`` (the ``invert`` entry); outputs plus the final ``loss``.

        ``steps`` defaults to the manifest's; ``seed`` drives the random starts.
        """
        e = self._data_input("invert")
        return self._call(e, {e.data.name: x, **inputs}, seed=seed, steps=steps)[0]

    def inpaint(
        self, x: Any, mask: Any, steps: int | None = None, seed: int = 0, **inputs: Any
    ) -> dict[str, np.ndarray]:
        """Fill the unknown pixels of ``x`` (``mask`` 1 = known, 0 = unknown); outputs plus ``loss``."""
        e = self._data_input("inpaint")
        if e.mask is None:
            raise BundleError(f"the inpaint entry has no mask input; use bundle.run({e.spec.name!r}, ...)")
        given = {e.data.name: x, e.mask.name: mask, **inputs}
        return self._call(e, given, seed=seed, steps=steps)[0]

    def swap(self, x: Any, *, seed: int = 0, **inputs: Any) -> np.ndarray | dict[str, np.ndarray]:
        """The ``swap`` entry for ``x`` (e.g. encode with one model's encoder, decode with the other's)."""
        e = self._data_input("swap")
        return _one_or_all(self._call(e, {e.data.name: x, **inputs}, seed=seed)[0])

    def generate(self, *, seed: int = 0, n: int | None = None, **inputs: Any) -> np.ndarray | dict[str, np.ndarray]:
        """The ``generate`` entry on named inputs; noise not given is drawn from ``seed``."""
        return _one_or_all(self._call(self._task("generate"), inputs, seed=seed, n=n)[0])

    # -- description -------------------------------------------------------------------------

    def info(self) -> str:
        """A human-readable summary: versions, entry points with signatures, latents, metrics."""
        m = self._manifest
        raw = m.raw
        lines = [f"{m.name}  ({self._root})"]
        head = f"format {raw['format']} {m.format_version}"
        if m.latentspec_version:
            head += f", exported by latentspec {m.latentspec_version}"
        spec = raw.get("spec")
        if isinstance(spec, dict) and isinstance(spec.get("sha256"), str):
            head += f", spec sha256 {spec['sha256'][:12]}"
        lines.append(head)
        latents = raw.get("latents") or {}
        if isinstance(latents, dict) and latents:
            lines.append("latents:")
            for name, about in latents.items():
                if isinstance(about, dict) and "groups" in about:  # listed below, one per line
                    about = {k: v for k, v in about.items() if k != "groups"}
                lines.append(f"  {name}: {_flat(about)}")
        lines.append("entries:")
        for e in self._entries.values():
            s = e.spec
            about = f"{s.kind}, {s.file}" + (f", opset {s.opset}" if s.opset is not None else "")
            if s.task is not None and s.task != s.name:
                about = f"{s.task}; {about}"
            if s.optimize is not None:
                o = s.optimize
                starts = f"{o.starts} start{'s' if o.starts > 1 else ''}"
                about += (
                    f"; {o.optimizer} on {o.variable!r} (dim {o.dim}), {o.steps} steps, lr {o.lr:g}, "
                    f"project {o.project}, init {o.init.kind}, {starts}"
                )
            lines.append(f"  {s.name}  ({about})")
            width = max((len(t.name) for t in (*s.inputs, *s.outputs)), default=0)
            for role, tensors in (("in ", s.inputs), ("out", s.outputs)):
                for t in tensors:
                    mark = "  <- code" if t.name == s.code else ""
                    lines.append(f"    {role} {t.name:<{width}}  {t.describe()}{mark}")
        for latent, groups in m.groups.items():
            lines.append(f"groups of latent {latent}:")
            for g in groups.values():
                lines.append(f"  {g.describe()}")
        if m.directions:
            lines.append("directions:")
            for name, d in m.directions.items():
                made = f", {d.source}" if d.source else ""
                step = f", one step = +1 {d.units} unit" if d.units else ""
                lines.append(f"  {name}  (latent {d.latent}, {d.vector.size} numbers{made}{step})")
        metrics = raw.get("metrics") or {}
        if isinstance(metrics, dict) and metrics:
            lines.append("metrics:")
            for split, values in metrics.items():
                lines.append(f"  {split}: {_flat(values)}")
        claims = raw.get("claims") or []
        if isinstance(claims, list) and claims:
            lines.append("claims:")
            lines += [f"  {_claim_line(c)}" for c in claims if isinstance(c, dict)]
        lines.append(f"providers: {', '.join(self.providers)} (device {self._device})")
        return "\n".join(lines)


def _claim_line(c: dict[str, Any]) -> str:
    """``holds  name: claim  (value vs target)``, a manifest claim as `latentspec check` prints it
    (a claim on a baseline run: ``value from RUN vs target from NAME=RUN``)."""
    holds = c.get("holds")
    status = "holds" if holds is True else "FAILS" if holds is False else "unchecked"
    head = f"{status:9}  {c.get('name', '?')}: {c.get('claim', '?')}"
    value, target = c.get("value"), c.get("target")
    if isinstance(value, (int, float)) and isinstance(target, (int, float)) and holds is not None:
        a, b = f"{value:.6g}", f"{target:.6g}"
        a += f" from {c['value_from']}" if isinstance(c.get("value_from"), str) else ""
        b += f" from {c['target_from']}" if isinstance(c.get("target_from"), str) else ""
        return f"{head}  ({a} vs {b})"
    return f"{head}  ({c.get('missing') or 'not checked'})"


def _session_options(ort: Any, threads: int | None) -> Any:
    """onnxruntime SessionOptions from :data:`SESSION_OPTIONS` and the intra-op thread count."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, SESSION_OPTIONS["graph_optimization_level"])
    options.execution_mode = getattr(ort.ExecutionMode, SESSION_OPTIONS["execution_mode"])
    options.inter_op_num_threads = SESSION_OPTIONS["inter_op_num_threads"]
    options.enable_mem_pattern = SESSION_OPTIONS["enable_mem_pattern"]
    options.enable_cpu_mem_arena = SESSION_OPTIONS["enable_cpu_mem_arena"]
    if threads is not None:
        options.intra_op_num_threads = threads
    return options


def _check_int(name: str, value: Any, low: int) -> int:
    """``value`` as an int if it is an integer >= ``low``, else an InputError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _input_names(e: _Entry) -> list[str]:
    """The entry's input names, for messages."""
    return [c.name for c in e.checks]


def _unknown_names(e: _Entry, inputs: Mapping[str, Any]) -> list[str]:
    known = _input_names(e)
    return [k for k in inputs if k not in known]


def _unknown_error(e: _Entry, inputs: Mapping[str, Any]) -> InputError:
    known = _input_names(e)
    unknown = _unknown_names(e, inputs)
    text = ", ".join(
        repr(k) + "".join(f" (did you mean {h!r}?)" for h in difflib.get_close_matches(k, known, 1)) for k in unknown
    )
    return InputError(
        f"entry {e.spec.name!r}: unknown input{'s' if len(unknown) > 1 else ''} {text}; it takes: {', '.join(known)}"
    )


def _requested_providers(device: str, ort: Any) -> list[str]:
    if device == "cpu":
        return [CPU]
    available = ort.get_available_providers()
    if device == "cuda":
        if CUDA not in available:
            raise BundleError(
                f"device 'cuda' was asked for, but onnxruntime offers only {available}: install "
                "the gpu extra (pip install 'latentspec-runtime[gpu]'; uninstall the plain "
                "onnxruntime package, which shadows it) and check the NVIDIA driver, or use "
                "device='cpu'"
            )
        return [CUDA, CPU]
    return [CUDA, CPU] if CUDA in available else [CPU]


def _check_graph(entry: _Entry, session: Any, path: Path) -> None:
    """Refuse an ONNX file whose inputs/outputs are not those the manifest promises."""
    spec = entry.spec
    expected = {t.name: t.dtype.name for t in spec.inputs}
    needed = list(entry.out_names)
    if spec.optimize is not None:
        opt = spec.optimize
        expected[opt.variable] = "float32"
        needed = [opt.loss, opt.gradient, *opt.graph_outputs]
    got = {i.name: _ORT_DTYPES.get(i.type, i.type) for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    problems = []
    if set(got) != set(expected):
        problems.append(f"its inputs are {sorted(got)}, the manifest says {sorted(expected)}")
    else:
        problems += [f"input {k!r} is {got[k]}, the manifest says {v}" for k, v in expected.items() if got[k] != v]
    missing = [n for n in needed if n not in outputs]
    if missing:
        problems.append(f"it lacks the output(s) {missing} (it has {sorted(outputs)})")
    if problems:
        raise BundleError(
            f"{path}: the ONNX graph does not match entry {spec.name!r} of the manifest: "
            f"{'; '.join(problems)}; re-export the bundle"
        )


class _Bound:
    """An onnxruntime IO binding over preallocated input and output buffers of fixed shapes: a
    call copies the inputs in, runs, and copies the outputs out (cheaper at small batches than
    the session's run(), which allocates and wraps every output; BENCHMARKS.md)."""

    __slots__ = ("binding", "inputs", "native", "outputs", "run")

    def __init__(self, session: Any, feed: Mapping[str, np.ndarray], names: Sequence[str], outs: Sequence[Any]) -> None:
        self.binding = session.io_binding()
        self.inputs = [(k, np.empty(v.shape, v.dtype)) for k, v in feed.items()]
        self.outputs = [np.empty(o.shape, o.dtype) for o in outs]
        for k, buf in self.inputs:
            self.binding.bind_cpu_input(k, buf)
        for name, buf in zip(names, self.outputs):
            self.binding.bind_output(name, "cpu", 0, buf.dtype, buf.shape, buf.ctypes.data)
        self.native = self.binding._iobinding
        self.run = session._sess.run_with_iobinding

    @classmethod
    def make(
        cls, session: Any, feed: Mapping[str, np.ndarray], names: Sequence[str], outs: Sequence[Any]
    ) -> _Bound | None:
        """A binding for these inputs and outputs, or None where one does not apply (outputs
        that are not plain arrays, an onnxruntime without the native binding)."""
        if not all(isinstance(o, np.ndarray) and o.dtype.kind in "biuf" for o in outs):
            return None
        if not hasattr(getattr(session, "_sess", None), "run_with_iobinding"):
            return None
        try:
            bound = cls(session, feed, names, outs)
        except Exception:
            return None
        return bound if hasattr(bound.native, "bind_input") else None

    def __call__(self, feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        for k, buf in self.inputs:
            np.copyto(buf, feed[k], casting="no")
        self.run(self.native, None)
        return [o.copy() for o in self.outputs]


def _run_bound(session: Any, names: Sequence[str], feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Run with IO binding (CUDA): inputs bound from host memory, outputs copied back to it."""
    binding = session.io_binding()
    for name, value in feed.items():
        binding.bind_cpu_input(name, np.ascontiguousarray(value))
    for name in names:
        binding.bind_output(name, "cpu")
    session.run_with_iobinding(binding)
    return binding.copy_outputs_to_cpu()


def _is_text(value: Any) -> bool:
    """A class name, or a list of them."""
    if isinstance(value, str):
        return True
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, str) for v in value)


def _class_indices(e: _Entry, name: str, value: str | Sequence[str]) -> Any:
    """Class names of a label input as their indices (the manifest's ``classes``)."""
    spec = next((c.spec for c in e.checks if c.name == name), None)
    names = spec.classes if spec is not None else None
    if not names:
        what = "takes class indices" if spec is not None and spec.meaning == "label" else "is not a named class label"
        raise InputError(f"entry {e.spec.name!r}: input {name!r} {what}, not names like {value!r}"[:300])
    index = {c: i for i, c in enumerate(names)}
    out = []
    for v in [value] if isinstance(value, str) else value:
        if v not in index:
            close = difflib.get_close_matches(v, list(names), 1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(
                f"entry {e.spec.name!r}: input {name!r}: unknown class {v!r}{hint}; classes: {', '.join(names)}"
            )
        out.append(index[v])
    return out[0] if isinstance(value, str) else out


def _as_array(entry: str, name: str, value: Any) -> np.ndarray:
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as err:
        raise InputError(f"entry {entry!r}: input {name!r} is not an array: {err}") from None


def _coerce(entry: str, c: _Check, value: Any) -> np.ndarray:
    """``value`` as an array of the input's dtype where that loses nothing that matters."""
    a = value if isinstance(value, np.ndarray) else _as_array(entry, c.name, value)
    want, kind = c.dtype, a.dtype.kind
    if a.dtype == want:
        return a
    if want.kind == "f" and kind in "biuf":
        with np.errstate(over="ignore"):
            b = a.astype(want)
        if kind == "f" and a.size and np.isinf(b).any() and not np.isinf(a[np.isinf(b)]).all():
            # a float64 beyond float32's range would silently become infinity
            raise InputError(f"entry {entry!r}: input {c.name!r} has values outside the range of {want.name}")
        return b
    if want.kind in "iu" and kind in "biu":
        info = np.iinfo(want)
        if a.size and kind != "b" and (a.min() < info.min or a.max() > info.max):
            raise InputError(f"entry {entry!r}: input {c.name!r} has values outside the range of {want.name}")
        return a.astype(want)
    if want.kind == "b" and kind == "b":
        return a.astype(want)
    hint = ""
    if want.kind in "iu" and kind == "f":
        hint = f"; whole numbers can be converted with .astype(np.{want.name})"
    raise InputError(
        f"entry {entry!r}: input {c.name!r} must be {want.name} ({c.spec.meaning}), got {a.dtype.name}{hint}"
    )


def _shape_error(entry: str, spec: TensorSpec, shape: tuple[int, ...]) -> InputError:
    hint = ""
    if spec.batched and len(shape) == len(spec.shape) - 1:
        hint = "; a single item? add the batch axis (x[None]) or use the high-level methods"
    return InputError(
        f"entry {entry!r}: input {spec.name!r} has shape {_shape_text(shape)}, expected {spec.shape_text}{hint}"
    )


def _dim_error(entry: str, spec: TensorSpec, dim: str, size: int, seen: tuple[int, str]) -> InputError:
    what = "batch size" if dim == "batch" else f"dimension {dim!r}"
    return InputError(
        f"entry {entry!r}: input {spec.name!r} has {what} {size} but input {seen[1]!r} has "
        f"{seen[0]}; inputs must agree on it"
    )


def _match_named(entry: str, spec: TensorSpec, shape: tuple[int, ...], dims: dict[str, tuple[int, str]]) -> None:
    """Match a shape with named dims: ints must be equal, each name one size across inputs."""
    if len(shape) != len(spec.shape):
        raise _shape_error(entry, spec, shape)
    for want, size in zip(spec.shape, shape):
        if isinstance(want, int):
            if want != size:
                raise _shape_error(entry, spec, shape)
        else:
            seen = dims.setdefault(want, (size, spec.name))
            if seen[0] != size:
                raise _dim_error(entry, spec, want, size, seen)


def _check_seed(seed: Any) -> None:
    try:
        value = operator.index(seed)
    except TypeError:
        raise InputError(f"seed must be an integer, got {seed!r}") from None
    if not 0 <= value < 2**64:
        raise InputError(f"seed must be an integer from 0 to 2**64-1, got {value}")


def _nonfinite_error(entry: str, name: str, a: np.ndarray) -> InputError:
    flat = int(np.argmax(~np.isfinite(a.reshape(-1))))
    index = tuple(int(i) for i in np.unravel_index(flat, a.shape))
    return InputError(
        f"entry {entry!r}: input {name!r} holds {a.reshape(-1)[flat]} at index {list(index)}; "
        "inputs must be finite numbers"
    )


def _range_error(entry: str, spec: TensorSpec, a: np.ndarray) -> InputError:
    assert spec.range is not None
    lo, hi = spec.range
    found = "NaN" if np.isnan(a).any() else f"values in [{a.min():g}, {a.max():g}]"
    return InputError(
        f"entry {entry!r}: input {spec.name!r} ({spec.meaning}) must lie in [{lo:g}, {hi:g}]; found {found}"
    )


def _draw(rng: np.random.Generator, spec: TensorSpec, batch: int) -> np.ndarray:
    """Noise for ``spec``: N(0, 1) or U(0, 1), drawn in float64 and cast (as the exporter does)."""
    shape = tuple(batch if d == "batch" else d for d in spec.shape)
    if not all(isinstance(d, int) for d in shape):
        raise InputError(f"cannot draw noise {spec.name!r} of shape {spec.shape_text}: give it by name")
    values = rng.standard_normal(shape) if spec.distribution == "normal" else rng.random(shape)
    return values.astype(spec.dtype)


def _interpolate(a: np.ndarray, b: np.ndarray, steps: int, method: str) -> np.ndarray:
    """(B, D) endpoints -> (B, steps, D) float32 points, ends exactly ``a`` and ``b``."""
    a = a.astype(np.float32)[:, None]  # (B, 1, D)
    b = b.astype(np.float32)[:, None]
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[None, :, None]  # (1, S, 1)
    if method == "lerp":
        return (1 - t) * a + t * b
    norm_a = a / np.maximum(np.linalg.norm(a, axis=2, keepdims=True), 1e-12)
    norm_b = b / np.maximum(np.linalg.norm(b, axis=2, keepdims=True), 1e-12)
    omega = np.arccos(np.clip(np.sum(norm_a * norm_b, axis=2, keepdims=True), -1.0, 1.0))  # (B, 1, 1)
    sin_omega = np.sin(omega)
    # Nearly parallel codes: the great circle is the straight line.
    flat = sin_omega < 1e-6
    safe = np.where(flat, 1.0, sin_omega)
    wa = np.where(flat, 1 - t, np.sin((1 - t) * omega) / safe)
    wb = np.where(flat, t, np.sin(t * omega) / safe)
    return (wa * a + wb * b).astype(np.float32)


def _one_or_all(out: dict[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
    return next(iter(out.values())) if len(out) == 1 else out


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_flat(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
