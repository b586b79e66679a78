"""Diagnostics are values: collected, sorted and printed compiler-style."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

from latentspec.errors import did_you_mean  # noqa: F401  (re-exported: spec diagnostics suggest names)

Path = tuple  # a JSON path into the spec: ("nodes", "enc", "hidden", 0)


def json_path(path: Sequence) -> str:
    """``("nodes", "enc", 0)`` -> ``$.nodes.enc[0]``."""
    out = "$"
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


# control characters (a key holding a newline) written as escapes: a diagnostic is one line
_VISIBLE = {c: repr(chr(c))[1:-1] for c in [*range(32), *range(127, 160), 0x2028, 0x2029]}


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
        # line 0: not in a file but on the command line (``--set KEY``)
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{where}: {self.severity}: {self.path.translate(_VISIBLE)}: {self.message.translate(_VISIBLE)}"

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
