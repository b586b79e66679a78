"""``benchmarks/bench_serve.py --quick``: the load test runs, stops by itself and reports every row."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from _serve_util import vae_bundle

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_serve.py"


def test_bench_serve_quick(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    bundle = vae_bundle(tmp_path / "vae.bundle")
    out = tmp_path / "bench.json"
    r = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--bundle", str(bundle), "--json", str(out)],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())["rows"]
    modes = ("python API", "serve, batching", "serve, no batching")
    assert [(row["mode"], row["clients"]) for row in rows] == [(m, c) for m in modes for c in (1, 8, 64)]
    for row in rows:
        assert row["requests"] > 0 and row["failed"] == 0, row
        assert row["p50_ms"] <= row["p99_ms"]
    assert "| serve, batching | 64 |" in r.stdout
