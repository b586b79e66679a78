"""`benchmarks/reliability.py --quick` runs and reports 0 tracebacks and 0 silent results."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from _reliability import ROOT


def test_reliability_benchmark_quick(tmp_path):
    report = tmp_path / "reliability.json"
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "reliability.py"), "--quick", "--json", str(report)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "tracebacks: 0, silent results: 0" in out
    for figure in ("spec mutations tried:", "kill points survived:", "bad inputs handled:"):
        assert figure in out
    handled = out.split("bad inputs handled: ")[1].split()
    assert handled[0] == handled[2] and int(handled[2]) >= 50
    data = json.loads(report.read_text())
    assert data["quick"] is True and data["command"].startswith("python benchmarks/reliability.py")
    assert data["tracebacks"] == data["silent"] == 0 and data["handled"] == data["bad_inputs"]
    assert data["machine"]["cores"] >= 1
