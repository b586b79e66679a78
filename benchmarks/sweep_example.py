"""Run the README's example sweep and record its table.

    python -m benchmarks.sweep_example

The command is read from README.md (the fenced block that starts with ``latentspec sweep``), run
with its ``--out`` folder moved into a temporary directory, and the sweep's own ``results.md``
table is written with the wall time and the machine to ``benchmarks/results/sweep_example.json``;
``benchmarks.report`` puts it under the command in the README.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

from benchmarks._machine import machine, write_result

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "benchmarks", "results", "sweep_example.json")


def readme_sweep(text: str) -> list[str]:
    """The README's example sweep command as argv."""
    m = re.search(r"```bash\n(latentspec sweep .+?)\n```", text, re.S)
    if not m:
        raise SystemExit("sweep_example: README.md has no ```bash block starting with `latentspec sweep`")
    return shlex.split(m.group(1).replace("\\\n", " "))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args(argv)
    with open(os.path.join(ROOT, "README.md")) as f:
        cmd = readme_sweep(f.read())
    start = machine()
    with tempfile.TemporaryDirectory(prefix="sweep-example-") as tmp:
        i = cmd.index("--out")
        run = [*cmd[: i + 1], os.path.join(tmp, "sweep"), *cmd[i + 2 :]]
        t0 = time.perf_counter()
        subprocess.run(run, cwd=ROOT, check=True, capture_output=True)
        wall = time.perf_counter() - t0
        with open(os.path.join(tmp, "sweep", "results.md")) as f:
            table = f.read().strip()
    result = {
        "command": "python -m benchmarks.sweep_example",
        "sweep": " ".join(shlex.quote(a) for a in cmd),
        "wall_seconds": round(wall, 1),
        "table": table,
        "pruned": sum(1 for line in table.splitlines() if "| pruned" in line),
        "machine": machine(start),
    }
    write_result(args.out, result)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
