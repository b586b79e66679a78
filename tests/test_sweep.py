"""`latentspec sweep`: an Optuna study over spec values; resumable, shared by concurrent workers."""

from __future__ import annotations

import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import time

import pytest
import yaml
from _tinyvae import tiny_vae, write_tiny

from latentspec.cli import main
from latentspec.spec import load_spec

optuna = pytest.importorskip("optuna", reason="CI installs latentspec[sweep]")

SWEEP = """\
sweep:
  metric: test.neg_elbo
  direction: minimize
  trials: 6
  params:
    train.optimizer.lr: {loguniform: [1.0e-4, 1.0e-2]}
    latents.z.dim: {choice: [2, 4]}
    nodes.enc.hidden: {choice: [[8], [16]]}
"""
DONE = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def sweep_cmd(spec: str, out: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "latentspec", "sweep", spec, "--out", out, "--quiet", "--grace", "4", *extra]


def study(out: str, name: str = "tiny_vae"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out}/study.db")


def trials(out: str) -> list:
    if not os.path.isfile(os.path.join(out, "study.db")):
        return []
    import sqlalchemy.exc

    try:
        return study(out).get_trials(deepcopy=False)
    except KeyError:  # the database exists, the study not yet
        return []
    except sqlalchemy.exc.SQLAlchemyError:  # a worker is creating the tables right now
        return []


def check_finished(out: str, n: int = 6) -> list:
    """n finished trials, numbered without gaps, each with its own complete run directory."""
    ts = trials(out)
    done = [t for t in ts if t.state in DONE]
    assert len(done) == n
    assert not [t for t in ts if t.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)]
    assert [t.number for t in ts] == list(range(len(ts)))
    runs = [t.user_attrs["latentspec.run"] for t in done]
    assert len(set(runs)) == n  # no trial ran twice in one folder
    for t in done:
        run = os.path.join(out, "trials", t.user_attrs["latentspec.run"])
        spec = load_spec(os.path.join(run, "spec.yaml"))
        assert spec.raw["train"]["optimizer"]["lr"] == pytest.approx(t.params["train.optimizer.lr"])
        assert spec.latents["z"].dim == t.params["latents.z.dim"]
        assert spec.raw["nodes"]["enc"]["hidden"] == json.loads(t.params["nodes.enc.hidden"])
        if t.state == optuna.trial.TrialState.COMPLETE:
            with open(os.path.join(run, "eval.json")) as f:
                assert json.load(f)["test"]["neg_elbo"] == pytest.approx(t.value)
    return done


def check_reports(out: str, done: list) -> None:
    with open(os.path.join(out, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(trials(out))
    complete = [t for t in done if t.state == optuna.trial.TrialState.COMPLETE]
    best = min(complete, key=lambda t: t.value)
    assert int(rows[0]["trial"]) == best.number and float(rows[0]["test.neg_elbo"]) == pytest.approx(best.value)
    assert rows[0]["run"] == os.path.join("trials", best.user_attrs["latentspec.run"])
    with open(os.path.join(out, "results.md")) as f:
        assert f.read().startswith("| trial | state | test.neg_elbo | train.optimizer.lr | latents.z.dim |")
    best_spec = load_spec(os.path.join(out, "best.yaml"))
    assert best_spec.latents["z"].dim == best.params["latents.z.dim"]
    with open(os.path.join(out, "best.yaml")) as f:
        assert "sweep" not in yaml.safe_load(f)
    with open(os.path.join(out, "plot.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def mid_training(out: str) -> str | None:
    """A trial folder with a checkpoint but no evaluation yet: a trial in the middle of training."""
    folder = os.path.join(out, "trials")
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        run = os.path.join(folder, name)
        if os.path.exists(os.path.join(run, "checkpoints", "last", "state.json")) and not os.path.exists(
            os.path.join(run, "eval.json")
        ):
            return name
    return None


@pytest.mark.slow
def test_a_sweep_resumes_after_a_kill(tmp_path):
    spec = write_tiny(tmp_path, SWEEP)
    out = str(tmp_path / "sweep")
    cmd = sweep_cmd(spec, out, "--set", "train.epochs=4")
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    killed = None
    while killed is None:
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline
        name = mid_training(out)
        if name is not None and name != "trial-000":
            proc.send_signal(signal.SIGKILL)  # mid-trial, no chance to clean up
            killed = name
        time.sleep(0.02)
    proc.wait()
    proc.stderr.close()
    assert sum(t.state in DONE for t in trials(out)) < 6
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    done = check_finished(out)
    check_reports(out, done)
    # the killed trial is retried with its values and continues its own folder from its checkpoint
    (failed,) = [t for t in trials(out) if t.state == optuna.trial.TrialState.FAIL]
    assert failed.user_attrs["latentspec.run"] == killed
    (retry,) = [d for d in done if d.user_attrs["latentspec.run"] == killed]
    assert retry.params == failed.params and retry.number > failed.number
    with open(os.path.join(out, "trials", killed, "history.jsonl")) as f:
        assert [json.loads(line)["event"] for line in f] == ["start", "resume"]


@pytest.mark.slow
def test_two_workers_share_one_sqlite_study(tmp_path):
    # trials long enough (ten times the tiny spec's rows, three epochs) that the first worker
    # cannot run all six before the second has started: both must run trials of the one study
    spec = str(tmp_path / "tiny.yaml")
    with open(spec, "w") as f:
        f.write(tiny_vae(rows=(480, 48), train="  optimizer: {name: adam, lr: 1.0e-3}\n  epochs: 3\n") + SWEEP)
    out = str(tmp_path / "sweep")
    first = subprocess.Popen(sweep_cmd(spec, out, "--worker"), stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not trials(out):  # the first has made the study; the second joins it
        assert first.poll() is None, first.stderr.read()
        assert time.time() < deadline
        time.sleep(0.2)
    second = subprocess.Popen(sweep_cmd(spec, out, "--worker"), stderr=subprocess.PIPE, text=True)
    for p in (first, second):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    done = check_finished(out)
    assert not [t for t in trials(out) if t.state == optuna.trial.TrialState.FAIL]
    workers = {t.user_attrs["worker"] for t in done}
    assert len(workers) == 2, workers  # both ran trials of the one study
    assert not os.path.exists(os.path.join(out, "results.csv"))  # workers leave the reports
    # the sweep itself: nothing left to run, it writes the reports
    assert main(["sweep", spec, "--out", out, "--quiet"]) == 0
    assert len(trials(out)) == 6
    check_reports(out, done)


def test_seeds_average_runs_that_differ_only_in_the_seed(tmp_path):
    spec = write_tiny(tmp_path)
    out = str(tmp_path / "sweep")
    args = ["--param", "objective.kl.weight={uniform: [0.5, 2]}", "--metric", "test.recon"]
    assert main(["sweep", spec, "--out", out, "--trials", "1", "--seeds", "2", "--quiet", *args]) == 0
    (t,) = trials(out)
    values = []
    for k in range(2):
        run = os.path.join(out, "trials", f"trial-000-seed-{k}")
        assert load_spec(os.path.join(run, "spec.yaml")).seed == k
        with open(os.path.join(run, "eval.json")) as f:
            values.append(json.load(f)["test"]["recon"])
    assert values[0] != values[1]
    assert t.value == pytest.approx(statistics.fmean(values))
    assert t.user_attrs["std"] == pytest.approx(statistics.pstdev(values))
    # the same folder with another search space is another study: refused, not mixed
    args[1] = "objective.kl.weight={uniform: [0.5, 3]}"
    assert main(["sweep", spec, "--out", out, "--trials", "1", "--seeds", "2", "--quiet", *args]) == 1


def test_search_paths_are_checked_like_set(tmp_path, capsys):
    spec = write_tiny(tmp_path)
    out = str(tmp_path / "sweep")
    rc = main(
        ["sweep", spec, "--out", out, "--metric", "test.recon", "--param", "train.optimizer.lrr={uniform: [0.1, 1]}"]
    )
    err = capsys.readouterr().err
    assert rc == 1
    assert "--param: error: $.sweep.params.train.optimizer.lrr: with train.optimizer.lrr=0.1: " in err
    assert "unknown key 'lrr' (did you mean 'lr'?)" in err
    rc = main(["sweep", spec, "--out", out, "--metric", "test.recon", "--param", "latents.z.dim=[2, 4]"])
    assert rc == 1 and "expected one of {uniform: [...]}" in capsys.readouterr().err
    rc = main(["sweep", spec, "--out", out, "--param", "latents.z.dim={choice: [2, 4]}"])
    assert rc == 1 and "a sweep needs a metric" in capsys.readouterr().err
    rc = main(["sweep", spec, "--out", out, "--metric", "test.nothing", "--param", "latents.z.dim={choice: [2]}"])
    err = capsys.readouterr().err
    assert rc == 1 and "metric test.nothing: not in the run's eval.json (it has: test.recon" in err


def test_pruning_stops_a_trial_before_its_last_epoch_only(tmp_path):
    from latentspec.spec._sweep import SweepSpec
    from latentspec.sweep._run import _Pruning

    class Trial:
        def __init__(self):
            self.reported = []

        def report(self, value, step):
            self.reported.append((step, value))

        def should_prune(self):
            return True

    spec = load_spec(write_tiny(tmp_path), ["train.epochs=2"])

    class Trainer:
        def __init__(self):
            self.spec, self.state = spec, {"stage": 0}

    cb = _Pruning(Trial(), SweepSpec({}, metric="test.neg_elbo"))
    with pytest.raises(optuna.TrialPruned):
        cb.on_epoch(Trainer(), {"epoch": 1, "test": {"recon": 5.0, "kl": 1.0}})
    cb.on_epoch(Trainer(), {"epoch": 2, "test": {"recon": 4.0, "kl": 1.0}})  # the last epoch: keep it
    assert cb.trial.reported == [(1, 6.0), (2, 5.0)]  # the test objective stands in for neg_elbo


def test_a_missing_optuna_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)
    spec = write_tiny(tmp_path)
    rc = main(["sweep", spec, "--out", str(tmp_path / "s"), "--param", "latents.z.dim={choice: [2]}"])
    err = capsys.readouterr().err
    assert rc == 1 and "pip install 'latentspec[sweep]'" in err


def test_a_diverging_trial_fails_alone_and_repeated_failures_stop_the_sweep(tmp_path, capsys):
    spec = write_tiny(tmp_path)
    out = str(tmp_path / "sweep")
    nan = ["--param", "objective.kl.weight={choice: [-1.0e+38]}", "--metric", "test.recon"]  # -inf loss
    assert main(["sweep", spec, "--out", out, "--trials", "2", *nan]) == 1
    err = capsys.readouterr().err
    assert err.count("failed: stage train, epoch 1, step 0:") == 3
    assert "latentspec: error: 3 trials in a row failed; the last: stage train" in err and "Traceback" not in err
    ts = trials(out)
    assert [t.state for t in ts] == [optuna.trial.TrialState.FAIL] * 3
    assert all("not finite" in t.user_attrs["error"] or "nan" in t.user_attrs["error"] for t in ts)


def test_the_same_spec_and_options_propose_the_same_trials(tmp_path):
    """The sampler is seeded by the spec's seed: a sweep is as reproducible as its runs."""
    spec = write_tiny(tmp_path)
    args = ["--param", "train.optimizer.lr={loguniform: [1.0e-4, 1.0e-2]}", "--metric", "test.recon", "--trials", "3"]
    proposed = []
    for name in ("a", "b"):
        out = str(tmp_path / name)
        assert main(["sweep", spec, "--out", out, "--quiet", *args]) == 0
        proposed.append([(t.params, t.value) for t in trials(out)])
    assert proposed[0] == proposed[1]
    assert len({p["train.optimizer.lr"] for p, _ in proposed[0]}) == 3


def test_a_race_creating_a_new_sqlite_study_is_retried(tmp_path, monkeypatch):
    """Workers started together on a new database race to stamp its schema version; the one
    that loses (IntegrityError) opens the storage again instead of failing."""
    import sqlalchemy.exc

    real = optuna.storages.RDBStorage
    calls = []

    class Racy(real):
        def __init__(self, *a, **k):
            calls.append(1)
            if len(calls) == 1:
                raise sqlalchemy.exc.IntegrityError(
                    "INSERT INTO alembic_version", {}, Exception("UNIQUE constraint failed")
                )
            super().__init__(*a, **k)

    monkeypatch.setattr(optuna.storages, "RDBStorage", Racy)
    spec = write_tiny(tmp_path, SWEEP.replace("trials: 6", "trials: 1"))
    assert main(["sweep", spec, "--out", str(tmp_path / "sweep"), "--quiet"]) == 0
    assert len(calls) >= 2 and len(trials(str(tmp_path / "sweep"))) == 1


def test_the_plot_takes_finished_trials_that_share_a_value(tmp_path):
    """Every finished trial drew the same choice: matplotlib's warning about the axis's zero span
    is not an error of the sweep (the tests turn warnings into errors)."""
    import types
    import warnings

    from latentspec.sweep._report import _plot

    study = optuna.create_study(direction="minimize")
    for value in (1.0, 2.0):
        study.add_trial(
            optuna.trial.create_trial(
                params={"latents.z.dim": 2},
                distributions={"latents.z.dim": optuna.distributions.CategoricalDistribution([2, 4])},
                value=value,
            )
        )
    sweep = types.SimpleNamespace(metric="test.neg_elbo", direction="minimize")
    path = str(tmp_path / "plot.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # as the sweep does
        assert _plot(study, sweep, path) == path and os.path.getsize(path) > 0
