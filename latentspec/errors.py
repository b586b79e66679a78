"""Errors that are the user's to fix: the CLI prints them in one line, never a traceback."""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class UserError(Exception):
    """A mistake in the input (spec, data, run directory, bundle, command line)."""


class DataError(UserError):
    """Data that cannot be loaded as the spec says (missing file, wrong shape)."""


class RunError(UserError):
    """A run directory that is missing, incomplete, or does not fit the command."""


class ExportError(UserError):
    """An entry point that cannot be exported, or a bundle that failed verification."""


def write_error(what: str, exc: OSError) -> RunError:
    """A one-line RunError for a failed write (full disk, quota, permissions)."""
    why = exc.strerror or str(exc)
    hint = "; free some space and continue with --resume" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return RunError(f"cannot write {what}: {why}{hint}")
