"""Every benchmark script runs in its ``--quick`` mode and writes its JSON (with the machine and
the command); ``python -m benchmarks.report`` turns the JSON into BENCHMARKS.md and README
sections; ``benchmarks/gpu.sh`` is valid bash. No timing is asserted here: numbers depend on
the machine, and belong in benchmarks/."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")


def run_quick(script: str, tmp_path, *extra: str) -> dict:
    out = tmp_path / f"{script}.json"
    r = subprocess.run(
        [sys.executable, os.path.join(BENCH, f"{script}.py"), "--quick", "--json", str(out), *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["quick"] is True
    assert result["command"].startswith(f"python benchmarks/{script}.py")
    machine = result["machine"]
    assert machine["cores"] >= 1 and machine["torch"] and len(machine["load_average_start"]) == 3
    return result


@pytest.mark.slow
def test_bench_runtime_quick(tmp_path):
    result = run_quick("bench_runtime", tmp_path)
    rows = result["rows"]
    assert {(r["entry"], r["batch"]) for r in rows} == {
        (e, b) for e in ("encode", "decode", "reconstruct") for b in (1, 16)
    }
    for r in rows:
        for who in ("runtime", "eager"):
            assert 0 < r[who]["p50_us"] <= r[who]["p99_us"], r
            assert r[who]["items_per_s"] > 0
        assert r["eager_over_runtime_p50"] == pytest.approx(r["eager"]["p50_us"] / r["runtime"]["p50_us"])
    variants = result["session_options"]["variants"]
    assert {"onnxruntime defaults", "IO binding, preallocated output", "Bundle.decode (method)"} <= set(variants)
    assert result["session_options"]["chosen"]["execution_mode"] == "ORT_SEQUENTIAL"
    (profile,) = result["ort_profile"]
    assert profile["kernel_us_per_call"] > 0 and "Gemm" in "".join(profile["kernel_us_by_op"])


@pytest.mark.slow
def test_bench_vae_quick(tmp_path):
    result = run_quick("bench_vae", tmp_path)
    assert set(result["models"]) == {"mlp_vae", "conv_vae"}
    for m in result["models"].values():
        ips = m["interleaved"]["images_per_second"]
        assert set(ips) == {"hand_written", "hand_written_fused_adam", "latentspec"}
        assert all(v > 0 for v in ips.values())
        assert m["interleaved"]["ratio_vs_hand_written"]["hand_written"] == 1.0
        ops = m["profile_top_ops"]
        assert ops and all(op["self_ms_per_step"] >= 0 and 0 <= op["share"] <= 1 for op in ops)
    conv_ops = {op["op"] for op in result["models"]["conv_vae"]["profile_top_ops"]}
    assert any("conv" in op for op in conv_ops), conv_ops


@pytest.mark.slow
def test_bench_spec_and_procedural_quick(tmp_path):
    spec = run_quick("bench_spec", tmp_path)
    assert len(spec["rows"]) == 2 and all(r["validate_s"] > 0 and r["compile_s"] > 0 for r in spec["rows"].values())
    procedural = run_quick("bench_procedural", tmp_path)
    assert procedural["size"] == 200 and procedural["rows"]["faces (cache hit)"]["load_s"] > 0


@pytest.mark.slow
def test_bench_scale_quick(tmp_path):
    sys.path.insert(0, ROOT)
    from benchmarks import report

    result = run_quick("bench_scale", tmp_path)
    rows = {(r["n"], r["mode"]): r for r in result["rows"]}
    assert set(rows) == {(n, m) for n in (1_000, 10_000) for m in ("rows", "dense")}
    assert rows[(10_000, "rows")]["optimizer"] == ["Adam", "SparseAdam"]
    assert rows[(10_000, "dense")]["optimizer"] == ["Adam"]
    for r in rows.values():
        assert r["step_ms"] > 0 and r["peak_rss_mb"] >= r["rss_after_steps_mb"] > 0 and r["checkpoint_s"] > 0
    assert rows[(10_000, "rows")]["profile_top_ops"]
    text = report.scale_section(result)
    assert "| 10,000 |" in text and "Step time from N = 1,000 to 10,000" in text


@pytest.mark.slow
def test_bench_data_quick(tmp_path):
    sys.path.insert(0, ROOT)
    from benchmarks import report

    result = run_quick("bench_data", tmp_path)
    assert [r["n"] for r in result["rows"]] == [500, 2_000]
    for r in result["rows"]:
        assert r["epoch_s"] > r["epoch_steps_s"] > 0 and r["loader_epoch_s"] > 0 and r["render_s"] > 0
        assert r["render_pool_s"] > 0 and r["render_pool_first_s"] > 0 and r["render_one_process_s"] > 0
        assert r["render_workers"] >= 1 and r["peak_rss_mb"] > 0
    assert set(result["per_item_growth_smallest_to_largest"]) == {"epoch", "loader", "render"}
    assert "| 2,000 |" in report.data_section(result)


@pytest.mark.slow
def test_bench_peers_quick(tmp_path):
    pytest.importorskip("pythae", reason="the `bench` extra (Pythae) is not installed")
    sys.path.insert(0, ROOT)
    from benchmarks import report

    result = run_quick("bench_peers", tmp_path)
    assert result["epochs"] == 1 and set(result["runs"]) == {"latentspec", "pythae"}
    for runs in result["runs"].values():
        (run,) = runs
        assert run["seconds"] > 0 and 50 < run["neg_elbo"] < 600
    o = result["overheads"]
    assert set(o["extras_s"]) == {"evaluation", "checkpoints", "collapse check", "sample picture"}
    assert all(v > 0 for v in o["extras_s"].values()) and o["steps_s"] > 0
    prof = result["profiles"]
    for who in ("latentspec", "pythae"):  # every profiled part was found in the profile
        assert prof[who]["total_s"] > 0 and all(v is not None and v > 0 for v in prof[who]["parts_s"].values())
        assert prof[who]["parts_s"]["training steps"] < prof[who]["total_s"]
    text = report.peers_section(result)
    assert "Pythae ÷ latentspec wall time" in text and "| training steps |" in text


def test_report_renders_every_section_from_json(tmp_path):
    sys.path.insert(0, ROOT)
    from benchmarks import report

    machine = {
        "cpu": "Test CPU",
        "cores": 2,
        "torch": "2.13.0",
        "onnxruntime": "1.32.0",
        "cuda": None,
        "when": "2026-01-01 00:00 UTC",
        "load_average_start": [9.5, 9.0, 8.0],
        "load_average_end": [10.0, 9.0, 8.0],
    }
    stats = {"p50_us": 20.0, "p99_us": 50.0, "items_per_s": 40000.0, "calls": 10}
    runtime = {
        "command": "python benchmarks/bench_runtime.py --threads 1",
        "quick": False,
        "machine": machine,
        "rows": [
            {
                "model": "mlp_vae",
                "entry": "decode",
                "batch": 1,
                "runtime": stats,
                "eager": {**stats, "p50_us": 70.0},
                "eager_over_runtime_p50": 3.5,
            }
        ],
        "session_options": {
            "model": "mlp_vae",
            "entry": "decode",
            "batch": 1,
            "variants": {"onnxruntime defaults": {**stats, "vs_defaults": 1.0}},
            "chosen": {"execution_mode": "ORT_SEQUENTIAL"},
        },
    }
    results = tmp_path / "results"
    results.mkdir()
    (results / "bench_runtime.json").write_text(json.dumps(runtime))
    for rel in ("README.md", "benchmarks/BENCHMARKS.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(ROOT, rel), tmp_path / rel)
    texts = report.render(str(tmp_path), str(results))
    bench = texts[str(tmp_path / "benchmarks" / "BENCHMARKS.md")]
    assert "| mlp_vae | decode | 1 | 20.0 / 50.0 | 70.0 / 50.0 | 40,000 | **3.50×** |" in bench
    assert "Test CPU (2 cores; load average 9.5 at start, 10.0 at end)" in bench
    assert "Command: `python benchmarks/bench_runtime.py --threads 1`" in bench
    assert "No results yet: run `python -m benchmarks.bench_vae`." in bench
    readme = texts[str(tmp_path / "README.md")]
    assert "| batch-1 mlp_vae `decode`, eager PyTorch ÷ `latentspec-runtime` p50 | **3.50×**" in readme
    # the sections outside the markers are kept as they were
    with open(os.path.join(ROOT, "benchmarks", "BENCHMARKS.md")) as f:
        original = f.read()
    outside = re.compile(r"<!-- generated: (\w+) -->\n.*?<!-- end: \1 -->", re.S)
    assert outside.sub("", original) == outside.sub("", bench)


def test_committed_reports_match_their_json():
    r = subprocess.run(
        [sys.executable, "-m", "benchmarks.report", "--check"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert r.returncode == 0, r.stderr


def test_gpu_script_is_valid_bash():
    r = subprocess.run(["bash", "-n", os.path.join(BENCH, "gpu.sh")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
