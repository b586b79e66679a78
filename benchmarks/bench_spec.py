"""Validation and compile time per spec (targets: validate < 0.3 s, compile < 1 s).

In-process times exclude the one-time imports; the cold CLI time of `latentspec validate`
(a fresh Python, no torch) is reported too.

    python benchmarks/bench_spec.py [--json benchmarks/results/bench_spec.json]
    python benchmarks/bench_spec.py --quick   # two specs, one repeat
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = sorted(
    glob.glob(os.path.join(ROOT, "specs", "*.yaml")) + glob.glob(os.path.join(ROOT, "tests", "gallery", "*.yaml"))
)


def best_of(fn, n: int = 3) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    from latentspec.spec import load_spec, validate_file

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two specs, one repeat")
    ap.add_argument("--json", default=os.path.join(ROOT, "benchmarks", "results", "bench_spec.json"))
    args = ap.parse_args()
    specs = SPECS[:2] if args.quick else SPECS
    repeat = 1 if args.quick else 3
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _machine import machine, write_result

    before = machine()
    validate_file(SPECS[0])  # warm: imports, schema generation
    rows = {}
    for path in specs:
        code = f"import time; t = time.perf_counter(); from latentspec.cli import main; main(['validate', {path!r}]); print(time.perf_counter() - t)"
        cold = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
        rows[os.path.relpath(path, ROOT)] = {
            "validate_s": best_of(lambda p=path: validate_file(p), repeat),
            "validate_cold_cli_s": float(cold.stdout.strip().splitlines()[-1]),
        }
    from latentspec.compiler import compile_spec

    for path in specs:
        spec = load_spec(path)
        compile_spec(spec)  # warm torch
        rows[os.path.relpath(path, ROOT)]["compile_s"] = best_of(lambda s=spec: compile_spec(s).training_graph, repeat)
    print(json.dumps(rows, indent=2))
    worst_v = max(r["validate_s"] for r in rows.values())
    worst_c = max(r["compile_s"] for r in rows.values())
    print(f"worst validate {worst_v:.3f} s (target < 0.3), worst compile {worst_c:.3f} s (target < 1)")
    write_result(
        args.json,
        {
            "benchmark": "bench_spec",
            "command": "python benchmarks/bench_spec.py " + " ".join(sys.argv[1:]),
            "quick": args.quick,
            "machine": machine(before),
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
