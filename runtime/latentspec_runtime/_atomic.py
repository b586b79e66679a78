"""Atomic file writes: the one helper every writer of latentspec and latentspec-runtime uses.

A file is written under a temporary name in its own folder, flushed to disk (fsync), given
mode 0644 and renamed over the target, so a reader sees the old file or the new one, never
half of one; a failed write (full disk, an exception in the writer) removes the temporary
file and leaves the old file as it was. Standard library only: the runtime's numpy-free core.

>>> write_text("out/eval.json", "{}\\n")  # doctest: +SKIP
>>> with atomic_path("grid.png") as tmp:  # a writer that wants a file name   # doctest: +SKIP
...     image.save(tmp)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any

#: The mode of every file written (rw-r--r--): mkstemp's 0600 would hide bundles from other users.
FILE_MODE = 0o644


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: str) -> None:
    """Make the rename itself durable (POSIX); folders cannot be opened for fsync everywhere."""
    with contextlib.suppress(OSError):
        _fsync_path(folder)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[str]:
    """A temporary file name beside ``path`` for a writer that takes a name (PIL, np.save,
    safetensors, torch.export, onnx). When the block ends without an exception the file is
    fsynced, made mode 0644 and renamed over ``path``; otherwise it is removed. The name keeps
    ``path``'s suffix, so writers that pick a format or append a suffix by it behave the same.
    """
    target = os.path.abspath(os.fspath(path))
    folder, base = os.path.split(target)
    os.makedirs(folder, exist_ok=True)
    stem, suffix = os.path.splitext(base)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=f".tmp{suffix}")
    os.close(fd)
    try:
        yield tmp
        _fsync_path(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """``open(path, mode)`` for writing, made atomic with :func:`atomic_path`."""
    if mode not in ("w", "wt", "wb"):
        raise ValueError(f"atomic_open writes a whole new file: mode must be 'w', 'wt' or 'wb', not {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
