"""Checkpoints: safetensors weights + JSON state, written atomically (temp + rename).

A checkpoint folder holds ``weights.safetensors`` (the model), ``optimizer.safetensors`` (the
optimizer's tensors) and ``state.json`` (step counters, RNG states, the optimizer's
non-tensor state, metrics). No pickle anywhere.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor

import torch
from safetensors.torch import load_file, save_file

from latentspec._finite import strict_json_loads
from latentspec.errors import RunError, write_error
from latentspec_runtime._atomic import atomic_open, atomic_path, sha256_file
from latentspec_runtime._atomic import write_text as atomic_write_text  # noqa: F401  (the trainer's name for it)


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, state = {}, {}
    for pid, st in sd["state"].items():
        state[str(pid)] = {}
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
                state[str(pid)][k] = {"tensor": f"{pid}.{k}"}
            else:
                state[str(pid)][k] = v
    return tensors, {"state": state, "param_groups": sd["param_groups"]}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state = {}
    for pid, st in meta["state"].items():
        state[int(pid)] = {
            k: (tensors[v["tensor"]] if isinstance(v, dict) and "tensor" in v else v) for k, v in st.items()
        }
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state(g: torch.Generator) -> str:
    return base64.b64encode(g.get_state().numpy().tobytes()).decode()


def set_rng_state(g: torch.Generator, s: str) -> None:
    import binascii

    import numpy as np

    try:
        g.set_state(torch.from_numpy(np.frombuffer(base64.b64decode(s, validate=True), dtype=np.uint8).copy()))
    except (TypeError, ValueError, RuntimeError, binascii.Error) as exc:
        raise RunError(f"the checkpoint's RNG state is corrupt ({_short(exc)})") from None


def save(folder: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, state: dict) -> None:
    """Write a checkpoint folder atomically: build it beside, then swap it in.

    ``state.json`` records the sha256 of every tensor file (``files``), checked on load. A
    failed write (full disk) removes the half-built folder and leaves the previous checkpoint.
    """
    write(folder, Snapshot.of(model, optimizer, state, copy=False))


@dataclasses.dataclass
class Snapshot:
    """What a checkpoint holds, taken from a model and optimizer at one moment: CPU tensors
    (copies with ``copy``, so training may go on while they are written) and the JSON state."""

    weights: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor] | None
    state: dict

    @classmethod
    def of(cls, model, optimizer, state: dict, *, copy: bool) -> Snapshot:
        def cpu(v: torch.Tensor) -> torch.Tensor:
            return v.detach().to("cpu", copy=True) if copy else v.detach().cpu().contiguous()

        weights = {k: cpu(v) for k, v in model.state_dict().items()}
        tensors = None
        if optimizer is not None:
            tensors, meta = _flatten_optimizer(optimizer)
            tensors = {k: cpu(v) for k, v in tensors.items()}
            state = {**state, "optimizer": meta}
        return cls(weights, tensors, json.loads(json.dumps(state, allow_nan=False)) if copy else state)


def state_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None) -> int:
    """The bytes of a checkpoint's tensors (the model's, and the optimizer's state so far)."""
    tensors = list(model.state_dict().values())
    if optimizer is not None:
        tensors += [v for st in optimizer.state_dict()["state"].values() for v in st.values() if torch.is_tensor(v)]
    return sum(t.numel() * t.element_size() for t in tensors)


def write(folder: str, snap: Snapshot) -> None:
    """Write ``snap`` as the checkpoint folder ``folder``, atomically (see :func:`save`)."""
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-ckpt-")
    try:
        with atomic_path(os.path.join(tmp, "weights.safetensors")) as path:
            save_file(snap.weights, path)
        if snap.optimizer is not None:
            with atomic_path(os.path.join(tmp, "optimizer.safetensors")) as path:
                save_file(snap.optimizer, path)
        files = {name: sha256_file(os.path.join(tmp, name)) for name in sorted(os.listdir(tmp))}
        with atomic_open(os.path.join(tmp, "state.json")) as f:
            json.dump({**snap.state, "files": files}, f, allow_nan=False)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise write_error(f"checkpoint {folder}", exc) from None
        raise
    old = folder + ".old"
    if os.path.exists(folder):
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


class Writer:
    """Writes checkpoints on one background thread, in order, one epoch's at a time, so the
    files, hashes and fsyncs overlap the next epoch's training. :meth:`submit` first waits for
    the previous epoch's writes (at most one set in flight, so at most one extra copy of the
    state in memory) and raises their error, if any; :meth:`wait` does the same at the end of a
    run, before callbacks that read the files, and before an error leaves the trainer. A write cut
    off by a crash leaves the previous checkpoint, as :func:`write` does."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None
        self.seconds = 0.0  #: how long the last finished set of writes took

    def submit(self, jobs: list[tuple[str, Snapshot]]) -> None:
        self.wait()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="latentspec-checkpoint")
        self._pending = self._pool.submit(self._write, jobs)

    def _write(self, jobs: list[tuple[str, Snapshot]]) -> None:
        t0 = time.perf_counter()
        for folder, snap in jobs:
            write(folder, snap)
        self.seconds = time.perf_counter() - t0

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None


def load_state(folder: str) -> dict:
    """The checkpoint's ``state.json``, after checking the sha256 of every tensor file it lists."""
    path = os.path.join(folder, "state.json")
    if not os.path.isfile(path):
        # an interrupted swap leaves the previous checkpoint at <folder>.old
        if os.path.isfile(os.path.join(folder + ".old", "state.json")):
            os.replace(folder + ".old", folder)
        else:
            raise RunError(f"no checkpoint at {folder}")
    try:
        with open(path, "rb") as f:
            state = strict_json_loads(f.read())
    except (OSError, ValueError) as exc:  # JSONDecodeError, UnicodeDecodeError, NaN constants
        raise RunError(f"{path}: the checkpoint state is corrupt ({_short(exc)}); use the other checkpoint") from None
    if not isinstance(state, dict) or not all(isinstance(state.get(k), int) for k in ("stage", "epoch", "step")):
        raise RunError(f"{path}: the checkpoint state is corrupt (no stage/epoch/step counters)")
    verify_files(folder, state)
    return state


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__


def verify_files(folder: str, state: dict) -> None:
    """Refuse a checkpoint whose tensor files are missing, truncated or changed."""
    files = state.get("files")
    if files is None:
        return  # a checkpoint from before hashes were recorded
    if not isinstance(files, dict):
        raise RunError(f"{folder}/state.json: `files` is not a mapping; the checkpoint is corrupt")
    for name, digest in files.items():
        path = os.path.join(folder, name)
        if os.path.basename(name) != name or not os.path.isfile(path):
            raise RunError(f"{path}: missing; the checkpoint is incomplete")
        actual = sha256_file(path)
        if actual != digest:
            raise RunError(
                f"{path}: sha256 {actual[:16]}... does not match state.json's {str(digest)[:16]}...; "
                "the file is truncated or corrupted"
            )


def _load_tensors(path: str) -> dict[str, torch.Tensor]:
    if not os.path.isfile(path):
        raise RunError(f"{path}: missing; the checkpoint is incomplete")
    try:
        return load_file(path)
    except Exception as exc:  # safetensors raises its own error types for a bad header
        raise RunError(f"{path}: not a readable safetensors file ({_short(exc)})") from None


def load_weights(folder: str, model: torch.nn.Module) -> None:
    weights = _load_tensors(os.path.join(folder, "weights.safetensors"))
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise RunError(
            f"checkpoint {folder} does not fit the spec's model (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )


def load_optimizer(folder: str, optimizer: torch.optim.Optimizer, meta: dict) -> None:
    path = os.path.join(folder, "optimizer.safetensors")
    tensors = _load_tensors(path)
    try:
        optimizer.load_state_dict(_unflatten_optimizer(tensors, meta))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunError(f"{path}: the optimizer state does not fit this run ({_short(exc)})") from None
