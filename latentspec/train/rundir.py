"""Run directories that cannot be corrupted: a lock per directory, a checked `--out`, the
comparison `--resume` makes before touching anything, and the run's history.

Torch-free. The trainer calls :func:`open_run` first thing; nothing in the folder is written
before it returns.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import yaml

from latentspec.errors import RunError, write_error

LOCK = ".lock"
HISTORY = "history.jsonl"

# Paths whose change makes the checkpoint mean something else: refused on --resume.
# (`seed` picks the data split; `data.*` but the batching settings is the data itself.)
_MODEL_KEYS = ("latentspec", "seed", "latents", "nodes")
_DATA_SETTINGS = ("batch", "test_batch", "drop_last", "sampler")


# -- the output folder --------------------------------------------------------------------------


def check_out(out: str) -> None:
    """Fail in one line when ``out`` cannot be a run directory (a file, unwritable)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise RunError(f"--out {out} is a file; a run is a folder (choose another --out)")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise RunError(f"--out {out}: cannot create the run folder ({exc.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise RunError(f"--out {out}: the folder is not writable")


# -- the lock -------------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to someone else
        return True
    return True


def _read_lock(path: str) -> dict | None:
    try:
        with open(path) as f:
            info = json.load(f)
        return info if isinstance(info, dict) and isinstance(info.get("pid"), int) else None
    except (OSError, ValueError):
        return None


def _stale(info: dict | None) -> bool:
    """A lock whose holder is gone: a dead PID on this host, or an unreadable lock file."""
    if info is None:
        return True
    return info.get("host") == socket.gethostname() and not _alive(info["pid"])


def _create(tmp: str, path: str, info: dict) -> None:
    """Create ``path`` holding ``info``, failing with FileExistsError when it exists. ``link``
    makes it appear whole; file systems without hard links get an exclusive create instead."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w") as f:
            json.dump(info, f)


@contextlib.contextmanager
def run_lock(out: str, command: str = "train") -> Iterator[dict]:
    """Hold ``out/.lock`` (PID, host, command, start time) for the duration of the block.

    The lock file is created whole with ``link()``, which fails when it exists, so two
    processes can never both hold it; a lock left by a dead process is taken over.
    """
    path = os.path.join(out, LOCK)
    mine = {"pid": os.getpid(), "host": socket.gethostname(), "command": command, "since": time.time()}
    tmp = os.path.join(out, f".lock.{os.getpid()}")
    try:
        with open(tmp, "w") as f:
            json.dump(mine, f)
        for _ in range(3):
            try:
                _create(tmp, path, mine)
                break
            except FileExistsError:
                info = _read_lock(path)
                if not _stale(info):
                    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("since", 0)))
                    raise RunError(
                        f"{out} is in use: process {info['pid']} on {info.get('host')} is running "
                        f"`{info.get('command', 'train')}` into it since {since}; wait for it or choose another --out"
                    ) from None
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)  # stale: its process is gone
        else:
            raise RunError(f"{out}: cannot take the run lock {path}")
    except OSError as exc:
        raise write_error(f"the run lock in {out}", exc) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    try:
        yield mine
    finally:
        if (_read_lock(path) or {}).get("pid") == mine["pid"]:
            with contextlib.suppress(OSError):
                os.unlink(path)


def lock_holder(out: str) -> dict | None:
    """The live holder of ``out``'s lock, or None."""
    info = _read_lock(os.path.join(out, LOCK))
    return None if _stale(info) else info


# -- resume: compare the specs ------------------------------------------------------------------


def _flatten(v: Any, path: str = "$") -> dict[str, Any]:
    if isinstance(v, dict):
        out: dict[str, Any] = {}
        for k, x in v.items():
            out.update(_flatten(x, f"{path}.{k}"))
        return out or {path: {}}
    if isinstance(v, list):
        out = {}
        for i, x in enumerate(v):
            out.update(_flatten(x, f"{path}[{i}]"))
        return out or {path: []}
    return {path: v}


def spec_diff(old: dict, new: dict) -> dict[str, tuple[Any, Any]]:
    """{json path: (old, new)} for every leaf that differs (missing leaves are None)."""
    a, b = _flatten(old), _flatten(new)
    missing = object()
    out = {}
    for path in sorted(set(a) | set(b)):
        x, y = a.get(path, missing), b.get(path, missing)
        if x != y or type(x) is not type(y):
            out[path] = (None if x is missing else x, None if y is missing else y)
    return out


def _section(path: str) -> tuple[str, str]:
    parts = path[2:].replace("[", ".").split(".")
    return parts[0], parts[1] if len(parts) > 1 else ""


def is_model_or_data(path: str) -> bool:
    """Does a change at ``path`` make the checkpoint mean something else?"""
    top, second = _section(path)
    if top in _MODEL_KEYS:
        return True
    return top == "data" and second not in _DATA_SETTINGS


def _show(v: Any) -> str:
    return "(absent)" if v is None else json.dumps(v, default=str)


def format_diff(diff: dict[str, tuple[Any, Any]], limit: int = 8) -> str:
    items = [f"{p}: {_show(a)} -> {_show(b)}" for p, (a, b) in diff.items()]
    more = f"; and {len(items) - limit} more" if len(items) > limit else ""
    return "; ".join(items[:limit]) + more


def check_resume(out: str, new_text: str, force: bool) -> dict[str, tuple[Any, Any]]:
    """Compare the run's ``spec.yaml`` with the new resolved spec; raise before anything is
    written when the model or data differ, or settings differ without ``force``.
    Returns the changed settings (empty when the specs agree)."""
    path = os.path.join(out, "spec.yaml")
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as f:
            old = yaml.safe_load(f)
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RunError(f"{path}: cannot read the run's spec ({exc.__class__.__name__}); the run is damaged") from None
    new = yaml.safe_load(new_text)
    if not isinstance(old, dict):
        raise RunError(f"{path}: the run's spec is not a mapping; the run is damaged")
    diff = spec_diff(old, new)
    model = {p: d for p, d in diff.items() if is_model_or_data(p)}
    if model:
        raise RunError(
            f"--resume: the spec's model or data differ from the run in {out} ({format_diff(model)}); "
            "the checkpoint cannot continue a different model; train into a new --out"
        )
    if diff and not force:
        raise RunError(
            f"--resume: training settings differ from the run in {out} ({format_diff(diff)}); "
            "pass --force to continue with the new settings (recorded in the run's history.jsonl)"
        )
    return diff


def record(out: str, event: str, **fields: Any) -> None:
    """Append one JSON line to the run's ``history.jsonl`` (start, resume, forced changes)."""
    row = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "event": event, "pid": os.getpid(), **fields}
    try:
        with open(os.path.join(out, HISTORY), "a") as f:
            f.write(json.dumps(row, default=str, allow_nan=False) + "\n")
    except OSError as exc:
        raise write_error(f"{out}/{HISTORY}", exc) from None


def history(out: str) -> list[dict]:
    path = os.path.join(out, HISTORY)
    if not os.path.isfile(path):
        return []
    rows = []
    with open(path) as f:
        for line in f:
            with contextlib.suppress(ValueError):
                rows.append(json.loads(line))
    return rows
