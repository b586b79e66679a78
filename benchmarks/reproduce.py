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
import json
import os
import sys
import tempfile
import time
from typing import Any

from benchmarks._machine import machine, write_result
from benchmarks.seeds import Context, load_all

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
README = os.path.join(ROOT, "README.md")
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
REGISTRY = load_all()


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


VERDICT = {True: "holds", False: "**does not reproduce**", None: "measured"}


def cell(text: str) -> str:
    """A Markdown table cell: a ``|`` inside (``p(x|z)``, ``|ρ|``) would end it."""
    return str(text).replace("|", "\\|")


def table(results: str = RESULTS) -> str:
    """The README's results block, from the committed ``NAME.json`` of each registered result:
    a summary line per result, then each result's claims and numbers with their verdicts."""
    found = []
    for name in sorted(REGISTRY):
        path = os.path.join(results, f"{name}.json")
        if os.path.exists(path):
            with open(path) as f:
                found.append(json.load(f))
    if not found:
        return "No result has been reproduced at full size yet (`python -m benchmarks.reproduce NAME`)."
    lines = ["| result | paper | claims that hold | command |", "|---|---|---|---|"]
    for r in found:
        verdicts = [holds for _, _, holds in r["rows"] if holds is not None]
        held = f"{sum(verdicts)} of {len(verdicts)}" if verdicts else "no claim (measured)"
        if verdicts and not all(verdicts):
            held += " (**not all reproduce**)"
        lines.append(f"| {cell(r['title'])} | {cell(r['paper'])} | {held} | `{r['command']}` |")
    for r in found:
        lines += ["", f"**{r['title']}** ({r['paper']}; `{r['command']}`)", ""]
        lines += ["| claim or number | measured | verdict |", "|---|---|---|"]
        lines += [f"| {cell(claim)} | {cell(measured)} | {VERDICT[holds]} |" for claim, measured, holds in r["rows"]]
        figures = [f"![{os.path.splitext(os.path.basename(p))[0]}]({p})" for p in r.get("figures", [])]
        if figures:
            lines += ["", *figures]
    return "\n".join(lines)


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
