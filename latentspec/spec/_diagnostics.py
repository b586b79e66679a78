"""Diagnostics are values: collected, sorted and printed compiler-style."""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Iterable, Sequence

Path = tuple  # a JSON path into the spec: ("nodes", "enc", "hidden", 0)


def json_path(path: Sequence) -> str:
    """``("nodes", "enc", 0)`` -> ``$.nodes.enc[0]``."""
    out = "$"
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclasses.dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem in a spec, at ``file:line:col`` (1-based) and a JSON path."""

    line: int
    col: int
    severity: str  # "error" | "warning"
    path: str
    message: str
    file: str = dataclasses.field(default="<spec>", compare=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.severity}: {self.path}: {self.message}"

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "severity": self.severity,
            "path": self.path,
            "message": self.message,
        }


def format_diagnostics(diags: Sequence[Diagnostic], fmt: str = "text") -> str:
    if fmt == "json":
        return json.dumps([d.as_dict() for d in diags], indent=2)
    return "\n".join(str(d) for d in diags)


class SpecError(Exception):
    """A spec that failed validation; carries every diagnostic."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics)
        super().__init__(format_diagnostics(self.diagnostics))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]
