"""`python -m benchmarks.reproduce`: the pipeline runs end to end at a tiny size (so the script
does not rot), README.md's results block is what the committed JSON gives, and `eval --pca`
(the number the linear-AE claims read) agrees with an exact PCA model measured in the same test."""

from __future__ import annotations

import itertools
import json
import os

import pytest
import yaml
from _tiny import tiny_spec

from benchmarks import reproduce
from benchmarks.seeds import eigenfaces
from latentspec.errors import RunError
from latentspec.spec import load_spec
from latentspec.spec._evalkeys import eval_keys, lookup, written_paths
from latentspec.train.evaluate import evaluate_run
from latentspec.train.trainer import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_readme_results_block_is_generated_from_the_json():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    assert reproduce.readme_with_table(text, reproduce.table()) == text, (
        "README.md's results block is stale: run `python -m benchmarks.reproduce --table`"
    )


def test_table_says_where_a_result_does_not_reproduce(tmp_path):
    row = {"title": "T", "paper": "P", "command": "python -m benchmarks.reproduce eigenfaces"}
    rows = [["a claim", "1 vs 2", False], ["a number", "3", None], ["b claim", "1 vs 2", True]]
    (tmp_path / "eigenfaces.json").write_text(json.dumps({**row, "rows": rows}))
    lines = reproduce.table(str(tmp_path)).splitlines()
    assert lines[2] == "| T | P | 1 of 2 (**not all reproduce**) | `python -m benchmarks.reproduce eigenfaces` |"
    assert "**T** (P; `python -m benchmarks.reproduce eigenfaces`)" in lines
    assert "| a claim | 1 vs 2 | **does not reproduce** |" in lines
    assert "| a number | 3 | measured |" in lines
    assert "| b claim | 1 vs 2 | holds |" in lines


def test_unknown_result_names_the_registry():
    with pytest.raises(SystemExit, match=r"no result 'nope' \(results: [a-z_, ]*eigenfaces"):
        reproduce.reproduce("nope", quick=True)


@pytest.mark.slow
def test_eval_pca_of_an_exact_pca_model(tmp_path):
    """The eigenfaces model is PCA (torch SVD): scikit-learn's PCA in `eval --pca` must find the
    same subspace (every cosine 1) and the same test MSE as the model's own objective."""
    spec = load_spec(tiny_spec(os.path.join(ROOT, "specs", "eigenfaces.yaml"), str(tmp_path)), ["nodes.pca.dim=5"])
    run = str(tmp_path / "run")
    train(spec, run, quiet=True, device="cpu")
    result = evaluate_run(run, pca=True)
    assert result["pca"]["k"] == 5
    assert result["pca"]["cos_min"] > 1 - 1e-6
    assert result["pca"]["test_mse"] == pytest.approx(result["test"]["rec"], rel=1e-4)
    keys = eval_keys(spec)
    assert [p for p in written_paths(result) if lookup(keys, p) is None] == []
    assert [k.path for k in keys if k.path.startswith("pca.")] == [
        f"pca.{n}" for n in ("k", "test_mse", "cos_min", "cos_mean", "cosines", "entry", "field")
    ]


def test_eval_pca_needs_a_decode_entry(tmp_path):
    spec = load_spec(tiny_spec(os.path.join(ROOT, "specs", "eigenfaces.yaml"), str(tmp_path), rows=40))
    assert lookup(eval_keys(spec), "pca.cos_min") is not None
    raw = yaml.safe_load((tmp_path / "eigenfaces.yaml").read_text())
    del raw["export"]["decode"]
    (tmp_path / "nodecode.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    bare = load_spec(str(tmp_path / "nodecode.yaml"), ["nodes.pca.dim=3"])
    assert lookup(eval_keys(bare), "pca.cos_min") is None
    run = str(tmp_path / "run")
    train(bare, run, quiet=True, device="cpu")
    with pytest.raises(RunError, match="--pca needs a `decode` entry"):
        evaluate_run(run, pca=True)


@pytest.mark.slow
def test_quick_eigenfaces_runs_the_whole_pipeline(tmp_path):
    result = reproduce.reproduce("eigenfaces", quick=True, out=str(tmp_path))
    with open(tmp_path / "eigenfaces.json") as f:
        assert json.load(f) == result
    mse = [result["numbers"]["pca_test_mse"][str(k)] for k in eigenfaces.EIGEN_KS]
    # nested principal subspaces: a larger k never reconstructs a test face worse
    assert all(a >= b - 1e-9 for a, b in itertools.pairwise(mse)), mse
    lae = result["numbers"]["linear_ae"]
    # two implementations of PCA at k = 10 (the eigenfaces run's SVD, eval --pca's scikit-learn)
    assert lae["pca_test_mse"] == pytest.approx(result["numbers"]["pca_test_mse"]["10"], rel=1e-4)
    claims = result["claims"]["linear_ae_faces"]
    assert [c["name"] for c in claims] == ["spans_pca_subspace", "mse_near_pca"]
    assert all(isinstance(c["holds"], bool) and c["value"] is not None for c in claims)
    assert claims[1]["value"] == lae["test_mse"]
    assert claims[1]["target"] == pytest.approx(1.02 * lae["pca_test_mse"])
    for png in result["figures"]:
        with open(png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert result["steps"][0].startswith("latentspec train specs/eigenfaces.yaml --out RUNS/eigenfaces_k1")
    assert any(s.startswith("latentspec check RUNS/linear_ae_faces") for s in result["steps"])
    assert set(result["machine"]) >= {"python", "torch", "numpy", "load_average_start", "load_average_end"}


@pytest.mark.slow
def test_vae_mnist_quick_renders_the_readme_sections(tmp_path):
    """The headline result's pipeline at a tiny size: its JSON has every number the README's
    sample-quality table reads, with the VAE's draws beside the two baselines."""
    from benchmarks import report

    result = reproduce.reproduce("vae_mnist", quick=True, out=str(tmp_path))
    n = result["numbers"]
    assert n["epochs"] == 1 and n["active_units"] <= n["latent_dim"] and 0 <= n["probe_accuracy"] <= 1
    assert list(n["sample_quality"]) == [
        "real digits (training split)",
        "VAE samples (`eval --features`)",
        "blurred uniform noise",
    ]
    table = report.sample_quality_section(result)
    assert table.startswith("  For the 1-epoch `specs/vae_mnist.yaml` run") and table.count("\n  | ") == 4
    assert report.overview_rows({"vae_mnist": result}) == []  # a quick result never reaches the README
