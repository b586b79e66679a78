"""`latentspec compare`: mean ± std over runs that differ only in the seed, and learning curves."""

from __future__ import annotations

import json
import os
import statistics

import pytest
import yaml

from latentspec.cli import main
from latentspec.compare import compare, curve, load, table


def fake_run(folder, name: str, *, seed: int, lr: float, test: list[float], neg_elbo: float | None) -> str:
    """A run directory with a spec, epoch rows whose test objective is ``test``, and an eval.json."""
    run = os.path.join(str(folder), name)
    os.makedirs(run)
    raw = {"latentspec": 1, "name": "m", "seed": seed, "train": {"optimizer": {"name": "adam", "lr": lr}}}
    with open(os.path.join(run, "spec.yaml"), "w") as f:
        yaml.safe_dump(raw, f)
    with open(os.path.join(run, "metrics.jsonl"), "w") as f:
        for i, v in enumerate(test):
            f.write(json.dumps({"kind": "step", "step": 10 * i + 5, "loss": 1.0, "terms": {}}) + "\n")
            row = {"kind": "epoch", "epoch": i + 1, "step": 10 * (i + 1), "train": {"recon": v + 1}}
            f.write(json.dumps({**row, "test": {"recon": v - 1.0, "kl": 1.0}}) + "\n")
    if neg_elbo is not None:
        with open(os.path.join(run, "eval.json"), "w") as f:
            json.dump({"test": {"neg_elbo": neg_elbo, "recon": test[-1] - 1.0, "kl": 1.0}, "checkpoint": "last"}, f)
    return run


@pytest.fixture
def runs(tmp_path):
    a = [
        fake_run(tmp_path, f"a{s}", seed=s, lr=0.001, test=[10 - s, 8 - s], neg_elbo=v)
        for s, v in enumerate([90, 92, 97])
    ]
    b = [fake_run(tmp_path, f"b{s}", seed=s, lr=0.01, test=[12, 9 + s], neg_elbo=v) for s, v in enumerate([88, 89])]
    c = [fake_run(tmp_path, "c0", seed=0, lr=0.1, test=[20, 15], neg_elbo=99)]
    return a, b, c


def test_runs_that_differ_only_in_the_seed_are_one_row(runs):
    a, b, c = runs
    groups, metrics = compare([*a, *b, *c], ["test.neg_elbo"])
    assert metrics == ["test.neg_elbo"]
    assert [g.label for g in groups] == [
        "train.optimizer.lr=0.001",
        "train.optimizer.lr=0.01",
        "train.optimizer.lr=0.1",
    ]
    assert [[r.path for r in g.runs] for g in groups] == [a, b, c]
    ga, gb, gc = groups
    assert ga.mean("test.neg_elbo") == pytest.approx(93.0)
    assert ga.std("test.neg_elbo") == pytest.approx(statistics.stdev([90, 92, 97]))  # sample std, n - 1
    assert gb.mean("test.neg_elbo") == pytest.approx(88.5) and gb.std("test.neg_elbo") == pytest.approx(0.5**0.5)
    assert gc.std("test.neg_elbo") is None
    text = table(groups, metrics)
    assert text.splitlines() == [
        "| runs | n | test.neg_elbo |",
        "|---|---|---|",
        "| train.optimizer.lr=0.001 | 3 | 93 ± 3.61 |",
        "| train.optimizer.lr=0.01 | 2 | 88.5 ± 0.707 |",
        "| train.optimizer.lr=0.1 | 1 | 99 |",
    ]


def test_default_metrics_are_the_shared_test_values(runs, tmp_path):
    a, _, _ = runs
    groups, metrics = compare(a)
    assert metrics == ["test.kl", "test.neg_elbo", "test.recon"]
    assert groups[0].values["test.recon"] == [7.0, 6.0, 5.0]
    # without eval.json the last epoch row answers
    bare = fake_run(tmp_path, "bare", seed=0, lr=1.0, test=[4, 3], neg_elbo=None)
    (g,), _ = compare([bare], ["test.recon"])
    assert g.values["test.recon"] == [2.0]
    with pytest.raises(Exception, match=r"test\.neg_elbo: not a number in"):
        compare([bare], ["test.neg_elbo"])


def test_curves_are_the_per_epoch_test_values(runs):
    a, _, _ = runs
    assert curve(load(a[1]), "test.recon") == ("test.recon", [8.0, 6.0])
    assert curve(load(a[1]), None) == ("test objective", [9.0, 7.0])  # recon + kl


def test_cli_prints_the_table_and_writes_the_plot(runs, tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="CI installs latentspec[sweep]")
    a, b, _ = runs
    png = str(tmp_path / "curves.png")
    assert main(["compare", *a, *b, "--metric", "test.neg_elbo", "--plot", png]) == 0
    out = capsys.readouterr().out
    assert "| train.optimizer.lr=0.001 | 3 | 93 ± 3.61 |" in out
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert main(["compare", *a, "--format", "json", "--no-plot"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["test.neg_elbo"]["values"] == [90, 92, 97]
    assert main(["compare", str(tmp_path / "nope")]) == 1
    assert "not a run directory" in capsys.readouterr().err
