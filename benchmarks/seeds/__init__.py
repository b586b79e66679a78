"""The seed results that `python -m benchmarks.reproduce` knows: one module per group of results
in this package, each registering its results with :func:`register`. :func:`load_all` imports them
all, so a new module is picked up without an edit elsewhere.

A result's function gets a :class:`Context` (where to put runs and figures, whether ``--quick``)
and returns ``{"numbers", "claims", "figures", "rows"}``: ``rows`` are the README table's lines,
``(claim or number, measured, holds)`` with ``holds`` None for a plain measurement.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import json
import math
import os
import pkgutil
import shlex
from collections.abc import Callable
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass
class Context:
    """Where a result writes its runs, JSON and figures, and the commands it ran."""

    runs: str  # run directories
    out: str  # NAME.json and the figures
    quick: bool
    commands: list[str] = dataclasses.field(default_factory=list)

    def cli(self, *argv: str) -> None:
        """Run one `latentspec` command in-process (its stdout swallowed), recording it."""
        from latentspec.cli import main

        shown = [os.path.relpath(a, ROOT) if os.path.isabs(a) and a.startswith(ROOT) else a for a in argv]
        self.commands.append("latentspec " + shlex.join(shown))  # replayable in a shell
        with contextlib.redirect_stdout(io.StringIO()):
            rc = main(list(argv))
        if rc != 0:
            raise RuntimeError(f"`latentspec {' '.join(argv)}` exited with {rc}")

    def train(self, spec: str, name: str, sets: list[str]) -> str:
        run = os.path.join(self.runs, name)
        argv = ["train", os.path.join(ROOT, spec), "--out", run, "--quiet", "--device", "cpu"]
        for s in sets:
            argv += ["--set", s]
        self.cli(*argv)
        return run

    def evaluate(self, run: str, *flags: str) -> dict:
        self.cli("eval", run, *flags)
        with open(os.path.join(run, "eval.json")) as f:
            return json.load(f)

    def check(self, run: str, baselines: dict[str, str] | None = None) -> list[dict]:
        """The run's claims as `latentspec check RUN [--baseline NAME=OTHER_RUN ...]` sees them:
        holds/fails and both numbers (and, for a claim on a baseline, the run each came from).
        Like the command, it writes ``RUN/claims.json``."""
        from latentspec.spec._claims import check_with_baselines, write_record

        def shown(path: str) -> str:
            return os.path.relpath(path, ROOT) if path.startswith(ROOT) else path

        flags = "".join(f" --baseline {name}={shown(other)}" for name, other in (baselines or {}).items())
        self.commands.append(f"latentspec check {shown(run)}{flags}")
        spec, checked, used = check_with_baselines(run, baselines or {})
        if checked:
            write_record(run, spec, checked, used)
        out = [c.as_dict() for c in checked]
        for c in out:  # the runs live in a temp folder: RUNS/NAME, as in the result's `steps`
            for key in ("value_from", "target_from"):
                if isinstance(c.get(key), str):
                    c[key] = c[key].replace(self.runs, "RUNS")
        return out

    def figure(self, name: str) -> str:
        return os.path.join(self.out, name)


@dataclasses.dataclass(frozen=True)
class Result:
    """One entry of the registry: what it reproduces, and how."""

    name: str
    title: str
    paper: str
    run: Callable[[Context], dict[str, Any]]  # -> {"numbers", "claims", "figures", "rows"}


REGISTRY: dict[str, Result] = {}


def register(name: str, title: str, paper: str):
    def deco(fn: Callable[[Context], dict[str, Any]]):
        REGISTRY[name] = Result(name, title, paper, fn)
        return fn

    return deco


def load_all() -> dict[str, Result]:
    """Import every module of this package (each registers its results); the registry."""
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    return REGISTRY


def sides(c: dict) -> str:
    """A checked claim's two numbers as the README shows them, or why it was not checked."""
    if c["holds"] is None:
        return c.get("missing") or "not checked"

    def whose(source: str | None) -> str:  # a number from a baseline run: "vae's 116.8"
        name = next((n for n in c.get("baselines") or () if (source or "").startswith(f"{n}=")), None)
        return f"{name}'s " if name else ""

    return f"{whose(c.get('value_from'))}{c['value']:.4g} vs {whose(c.get('target_from'))}{c['target']:.4g}"


def derived_claim(
    name: str, text: str, value: float, target: float, *, by: str, lower: bool = True, doc: str | None = None
) -> dict[str, Any]:
    """A verdict a result's module decides from numbers `latentspec eval` does not measure (a
    rendered ground truth), in `latentspec check`'s record format; ``derived`` names the module.
    Holds when ``value < target`` (``lower``) or ``value > target``, both finite."""
    finite = math.isfinite(value) and math.isfinite(target)
    out = {
        "name": name,
        "claim": text,
        "value": float(value),
        "target": float(target),
        "holds": bool(finite and (value < target if lower else value > target)),
        "derived": f"decided in {by} from the measured numbers, not by `latentspec check`",
    }
    if doc:
        out["doc"] = doc
    return out


def claim_rows(claims: list[dict]) -> list[tuple[str, str, bool | None]]:
    """README rows for a run's checked claims."""
    return [(c["claim"] + (f" ({c['doc']})" if c.get("doc") else ""), sides(c), c["holds"]) for c in claims]


def epoch_rows(run: str) -> list[dict]:
    """The run's per-epoch rows of ``metrics.jsonl``."""
    from latentspec._jsonl import read_rows

    return [r for r in read_rows(os.path.join(run, "metrics.jsonl")) if r.get("kind") == "epoch"]
