"""Every spec in specs/ and tests/gallery/ trains at a tiny size through all its stages, with
finite losses that go down, evaluates, and exports all its entry points with --verify."""

from __future__ import annotations

import glob
import json
import math
import os

import pytest
from _tiny import tiny_spec

from latentspec.export import export_run
from latentspec.spec import load_spec
from latentspec.train.evaluate import evaluate_run
from latentspec.train.trainer import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL = sorted(
    glob.glob(os.path.join(ROOT, "specs", "*.yaml")) + glob.glob(os.path.join(ROOT, "tests", "gallery", "*.yaml"))
)


def trained(path: str, tmp_path) -> tuple[str, list[dict]]:
    spec = load_spec(tiny_spec(path, str(tmp_path), epochs=3))
    run = str(tmp_path / "run")
    train(spec, run, quiet=True, device="cpu")
    with open(os.path.join(run, "metrics.jsonl")) as f:
        rows = [r for r in map(json.loads, f) if r["kind"] == "epoch"]
    return run, rows


@pytest.mark.slow
@pytest.mark.parametrize("path", ALL, ids=os.path.basename)
def test_spec_trains_and_losses_go_down(path, tmp_path):
    run, rows = trained(path, tmp_path)
    spec = load_spec(os.path.join(run, "spec.yaml"))
    fits = [s for s in spec.train.stages if s.fit]
    with open(os.path.join(run, "metrics.jsonl")) as f:
        fit_rows = [r for r in map(json.loads, f) if r["kind"] == "fit"]
    assert [r["stage"] for r in fit_rows] == [s.name for s in fits]
    stages = [s for s in spec.train.stages if s.epochs > 0]
    assert [r["stage"] for r in rows] == [s.name for s in stages for _ in range(s.epochs)]
    for s in stages:
        mine = [r for r in rows if r["stage"] == s.name]
        for r in mine:
            assert all(math.isfinite(v) for v in r["train"].values()), r
        weight = {
            t: term.weight if isinstance(term.weight, (int, float)) else 1.0 for t, term in spec.objective.items()
        }
        first, last = (sum(weight[t] * v for t, v in r["train"].items()) for r in (mine[0], mine[-1]))
        assert last < first, f"stage {s.name}: {first} -> {last}"
    result = evaluate_run(run)
    assert all(math.isfinite(v) for v in result["test"].values() if isinstance(v, float))
    manifest = export_run(run, str(tmp_path / "bundle"), verify=True)
    assert set(manifest["entries"]) == set(spec.export)
    assert set(manifest["verified"]) == set(spec.export)
    assert manifest["metrics"]["test"] == result["test"]
