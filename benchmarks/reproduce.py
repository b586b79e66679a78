"""Reproduce the seed results: train the specs at full size, evaluate, check their `claims:`,
and write ``benchmarks/results/NAME.json`` and the figures.

    python -m benchmarks.reproduce NAME            # full size (≤ 10 min per result on 2 cores)
    python -m benchmarks.reproduce NAME --quick    # the same pipeline at a tiny size, in a temp dir
    python -m benchmarks.reproduce --table         # rewrite README.md's results block from the JSON
    python -m benchmarks.reproduce --table --check # exit 1 when README.md's block is not what the JSON gives

Every number comes from a run's ``eval.json`` (``latentspec eval``) and every verdict from
``latentspec check``; a result records the commands it ran, so each number can be replayed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from benchmarks._machine import machine, write_result

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
README = os.path.join(ROOT, "README.md")
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


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
        self.commands.append("latentspec " + " ".join(shown))
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

    def check(self, run: str) -> list[dict]:
        """The run's claims as `latentspec check` sees them: holds/fails and both numbers."""
        from latentspec.spec._claims import check_run

        self.commands.append(f"latentspec check {os.path.relpath(run, ROOT) if run.startswith(ROOT) else run}")
        _, checked = check_run(run)
        return [c.as_dict() for c in checked]

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


# -- item 1: eigenfaces and the linear autoencoder ---------------------------------------------

EIGEN_KS = (1, 5, 10, 20, 50)
FACES_QUICK = ["data.dataset.faces.size=160", "data.split.train=120", "data.split.test=40", "data.batch=40"]


def _component_grid(spec_run: str, path: str, n: int) -> None:
    """The decode entry's columns dec(e_i) − dec(0) as images, each stretched to [0, 1]."""
    from latentspec.run import load_run
    from latentspec.train.images import grid, save_png
    from latentspec.train.subspace import decoder_columns

    spec, model = load_run(spec_run)
    cols = decoder_columns(spec, model, "decode")[:n]  # (n, D)
    lo, hi = cols.min(1, keepdims=True), cols.max(1, keepdims=True)
    images = ((cols - lo) / (hi - lo + 1e-12)).reshape((len(cols), *spec.infos["x"].shape))
    save_png(path, grid(images, ncol=min(10, n)))


@register(
    "eigenfaces",
    "Eigenfaces; a linear AE learns the PCA subspace",
    "Turk & Pentland 1991; Baldi & Hornik 1989",
)
def eigenfaces(ctx: Context) -> dict[str, Any]:
    quick = FACES_QUICK if ctx.quick else []
    mse = {}
    for k in EIGEN_KS:
        run = ctx.train("specs/eigenfaces.yaml", f"eigenfaces_k{k}", [f"nodes.pca.dim={k}", *quick])
        mse[k] = ctx.evaluate(run)["test"]["rec"]
    grid_png = ctx.figure("eigenfaces.png")
    _component_grid(os.path.join(ctx.runs, f"eigenfaces_k{max(EIGEN_KS)}"), grid_png, 20)
    lae_sets = [*quick, "train.epochs=2"] if ctx.quick else []
    lae = ctx.train("specs/linear_ae_faces.yaml", "linear_ae_faces", lae_sets)
    ev = ctx.evaluate(lae, "--pca")
    claims = ctx.check(lae)
    lae_png = ctx.figure("linear_ae_faces.png")
    _component_grid(lae, lae_png, 10)
    with open(os.path.join(lae, "metrics.jsonl")) as f:
        epochs = [r for r in map(json.loads, f) if r["kind"] == "epoch"]
    numbers = {
        "pca_test_mse": {str(k): v for k, v in mse.items()},
        "linear_ae": {
            "k": ev["pca"]["k"],
            "test_mse": ev["test"]["rec"],
            "pca_test_mse": ev["pca"]["test_mse"],
            "mse_ratio": ev["test"]["rec"] / ev["pca"]["test_mse"],
            "cosines": ev["pca"]["cosines"],
            "epochs": len(epochs),
            "train_seconds": sum(r.get("seconds", 0.0) for r in epochs),
        },
    }
    rows = [
        ("PCA test MSE at k = " + ", ".join(map(str, EIGEN_KS)), ", ".join(f"{mse[k]:.4g}" for k in EIGEN_KS), None),
        *[(c["claim"] + (f" ({c['doc']})" if c.get("doc") else ""), _sides(c), c["holds"]) for c in claims],
    ]
    return {"numbers": numbers, "claims": {"linear_ae_faces": claims}, "figures": [grid_png, lae_png], "rows": rows}


def _sides(c: dict) -> str:
    if c["holds"] is None:
        return c.get("missing") or "not checked"
    return f"{c['value']:.4g} vs {c['target']:.4g}"


# -- driver -------------------------------------------------------------------------------------


def reproduce(name: str, quick: bool = False, out: str | None = None) -> dict[str, Any]:
    """Run result ``name``; write ``NAME.json`` and its figures into ``out`` (default:
    benchmarks/results, or a temp dir with ``quick``). Returns the JSON object."""
    if name not in REGISTRY:
        raise SystemExit(f"reproduce: no result '{name}' (results: {', '.join(sorted(REGISTRY))})")
    import torch

    r = REGISTRY[name]
    out = out or (tempfile.mkdtemp(prefix=f"reproduce-{name}-") if quick else RESULTS)
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix=f"runs-{name}-", dir=out if quick else None) as runs:
        ctx = Context(runs=runs, out=out, quick=quick)
        start, t0 = machine(), time.perf_counter()
        got = r.run(ctx)
        wall = time.perf_counter() - t0
    result = {
        "name": name,
        "title": r.title,
        "paper": r.paper,
        "command": f"python -m benchmarks.reproduce {name}" + (" --quick" if quick else ""),
        "quick": quick,
        "seed": 0,
        "wall_seconds": round(wall, 1),
        "machine": machine(start),
        "steps": [c.replace(ctx.runs, "RUNS") for c in ctx.commands],
        "numbers": got["numbers"],
        "claims": got["claims"],
        "figures": [os.path.relpath(p, ROOT) if not quick else p for p in got["figures"]],
        "rows": [list(row) for row in got["rows"]],
    }
    write_result(os.path.join(out, f"{name}.json"), result)
    return result


def table(results: str = RESULTS) -> str:
    """The README's results block, from the committed ``NAME.json`` of each registered result."""
    lines = [
        "| result | paper | claim | measured | verdict | command |",
        "|---|---|---|---|---|---|",
    ]
    found, figures = 0, []
    for name in sorted(REGISTRY):
        path = os.path.join(results, f"{name}.json")
        if not os.path.exists(path):
            continue
        found += 1
        with open(path) as f:
            r = json.load(f)
        figures += [f"![{os.path.splitext(os.path.basename(p))[0]}]({p})" for p in r.get("figures", [])]
        for claim, measured, holds in r["rows"]:
            verdict = {True: "holds", False: "**does not reproduce**", None: "measured"}[holds]
            lines.append(f"| {r['title']} | {r['paper']} | {claim} | {measured} | {verdict} | `{r['command']}` |")
    if not found:
        return "No result has been reproduced at full size yet (`python -m benchmarks.reproduce NAME`)."
    return "\n".join(lines + ([""] + figures if figures else []))


def readme_with_table(text: str, block: str) -> str:
    if BEGIN not in text or END not in text:
        raise SystemExit(f"README.md has no {BEGIN} … {END} block")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{block}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.reproduce", description=__doc__.splitlines()[0])
    p.add_argument("name", nargs="?", help=f"the result ({', '.join(sorted(REGISTRY))})")
    p.add_argument("--quick", action="store_true", help="a tiny size, into a temp dir (for the tests)")
    p.add_argument("--out", help="write NAME.json and the figures here")
    p.add_argument("--table", action="store_true", help="rewrite README.md's results block from the JSON")
    p.add_argument("--check", action="store_true", help="with --table: only check README.md is up to date")
    args = p.parse_args(argv)
    if args.table:
        with open(README) as f:
            text = f.read()
        new = readme_with_table(text, table())
        if args.check:
            if new != text:
                print(
                    "README.md's results block is stale: run `python -m benchmarks.reproduce --table`", file=sys.stderr
                )
                return 1
            return 0
        if new != text:
            from latentspec_runtime._atomic import write_text

            write_text(README, new)
        return 0
    if not args.name:
        p.error("give a result NAME, or --table")
    result = reproduce(args.name, quick=args.quick, out=args.out)
    print(json.dumps({k: result[k] for k in ("name", "numbers", "claims", "wall_seconds")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
