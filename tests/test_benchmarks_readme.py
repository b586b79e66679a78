"""The README's measured lines come from JSON: the fresh-clone timing of the quick start and CI,
the example sweep's table, and the Measured table's rows. The scripts that make that JSON read
their commands from README.md itself, so what is timed is what the README says."""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import fresh_clone, report, sweep_example  # noqa: E402

MACHINE = {
    "cpu": "Test CPU",
    "cores": 2,
    "torch": "2.13.0",
    "onnxruntime": "1.32.0",
    "cuda": None,
    "when": "2026-01-01 00:00 UTC",
    "load_average_start": [3.25, 3.0, 2.0],
}


def readme() -> str:
    with open(os.path.join(ROOT, "README.md")) as f:
        return f.read()


def test_the_timed_commands_are_the_readmes():
    one = fresh_clone.readme_command(readme(), 1)
    assert one.startswith("pip install torch==2.13.0") and "latentspec train specs/vae_mnist.yaml" in one
    two = fresh_clone.readme_command(readme(), 2)
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        assert two in f.read()  # .ci/run runs command 2, which the fresh clone times
    argv = sweep_example.readme_sweep(readme())
    assert argv[:3] == ["latentspec", "sweep", "specs/vae_mnist.yaml"] and "--out" in argv


def test_pytest_counts_read_the_summary_line():
    out = "....\n=== warnings ===\n1007 passed, 1 skipped, 2 warnings in 401.2s (0:06:41)\n"
    assert fresh_clone.pytest_counts(out) == {"passed": 1007, "skipped": 1}
    assert fresh_clone.pytest_counts("no summary") == {}


def test_quickstart_sweep_and_measured_rows_render_from_json():
    fresh = {
        "command": "python -m benchmarks.fresh_clone",
        "command_1": {"wall_seconds": 75.4, "test_neg_elbo": 117.04},
        "ci": {"wall_seconds": 421.0, "tests": {"passed": 1007, "skipped": 1}},
        "machine": MACHINE,
    }
    line = report.quickstart_section(fresh)
    assert line.startswith("Command 1 took 1 min 15 s on a fresh clone on 2 cores (load average 3.2)")
    assert "test −ELBO of 117.0 nats" in line
    sweep = {
        "command": "python -m benchmarks.sweep_example",
        "table": "| trial | state |\n|---|---|\n| 1 | pruned after epoch 1 |",
        "pruned": 1,
        "wall_seconds": 104.0,
        "machine": MACHINE,
    }
    text = report.sweep_section(sweep)
    assert text.startswith(sweep["table"]) and "(1 min 44 s on 2 cores, load average 3.2; the 1 pruned" in text
    rows = report.overview_rows({"fresh_clone": fresh})
    assert rows[-1] == "| `bash .ci/run` on a fresh clone (venv, install, 1007 passed, 1 skipped) | 7 min 1 s |"
    # a quick (tiny) result never reaches the README
    assert report.overview_rows({"vae_mnist": {"quick": True}}) == []
