"""Time the README's two quick-start commands on a fresh clone, as a new user would run them.

    python -m benchmarks.fresh_clone                 # clone HEAD, run command 1, then .ci/run
    python -m benchmarks.fresh_clone --skip-ci       # command 1 only

The clone gets its own virtual environment and ``../shared`` beside it (a link to this checkout's).
Command 1 is read from README.md (the fenced block after "# 1."), so what is timed is what the
README says; `.ci/run` runs command 2. Writes ``benchmarks/results/fresh_clone.json``: wall times,
the test counts pytest printed, and the quick start run's test −ELBO (``latentspec eval``), from
which ``benchmarks.report`` writes the README's quick-start line and its rows of the Measured table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks._machine import machine, write_result

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "benchmarks", "results", "fresh_clone.json")


def readme_command(text: str, number: int) -> str:
    """The shell line under ``# N.`` in the README's quick start."""
    m = re.search(rf"```bash\n# {number}\.[^\n]*\n(.+?)\n```", text, re.S)
    if not m:
        raise SystemExit(f"fresh_clone: README.md has no ```bash block starting with '# {number}.'")
    return m.group(1).strip()


def pytest_counts(output: str) -> dict[str, int]:
    """``{"passed": 1007, "skipped": 1}`` from pytest's last summary line."""
    lines = [ln for ln in output.splitlines() if re.search(r"\d+ passed", ln)]
    if not lines:
        return {}
    return {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)", lines[-1])}


def run(cmd: str, cwd: str, env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-4000:] + p.stderr[-4000:])
        raise SystemExit(f"fresh_clone: `{cmd[:80]}…` exited with {p.returncode}")
    return wall, p.stdout + p.stderr


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-ci", action="store_true", help="time command 1 only")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args(argv)
    with open(os.path.join(ROOT, "README.md")) as f:
        command1 = readme_command(f.read(), 1)
    start = machine()
    result: dict[str, Any] = {"command": "python -m benchmarks.fresh_clone", "readme_command_1": command1}
    with tempfile.TemporaryDirectory(prefix="fresh-clone-") as tmp:
        clone = os.path.join(tmp, "latentspec")
        subprocess.run(["git", "clone", "-q", ROOT, clone], check=True)
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True, check=True)
        result["commit"] = head.stdout.strip()
        os.symlink(os.path.realpath(os.path.join(ROOT, "..", "shared")), os.path.join(tmp, "shared"))
        venv = os.path.join(tmp, "venv")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")},
            "PATH": os.path.join(venv, "bin") + os.pathsep + os.environ["PATH"],
            "VIRTUAL_ENV": venv,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        wall1, _ = run(command1, clone, env)
        _, out = run("latentspec eval runs/vae", clone, env)
        with open(os.path.join(clone, "runs", "vae", "eval.json")) as f:
            ev = json.load(f)
        result["command_1"] = {"wall_seconds": round(wall1, 1), "test_neg_elbo": ev["test"]["neg_elbo"]}
        if not args.skip_ci:
            ci_env = {**env, "CI": "true", "CI_VENV": os.path.join(tmp, "ci-venv")}
            wall2, out = run(".ci/run", clone, ci_env)
            result["ci"] = {"wall_seconds": round(wall2, 1), "tests": pytest_counts(out)}
    result["machine"] = machine(start)
    write_result(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
