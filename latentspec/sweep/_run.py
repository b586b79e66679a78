"""The study: storage, sampler and pruner, and the loop that claims and runs trials."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import shutil
import socket
import statistics
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from latentspec._extras import require
from latentspec._finite import NonFiniteError
from latentspec.errors import UserError
from latentspec.spec import SpecError, check_document, load_file
from latentspec.spec._sweep import Dist, SweepSpec, check_sweep, parse_param, trial_document
from latentspec.train.trainer import Callback

# a sqlite study's storage is opened this many times before an error counts (see _storage)
STORAGE_ATTEMPTS = 5


class SweepError(UserError):
    """A sweep that cannot run as asked (metric, storage, study)."""


@dataclasses.dataclass
class SweepOptions:
    """Command-line choices; None keeps the spec's `sweep:` value."""

    params: Sequence[str] = ()  # --param PATH={dist: [...]}
    sets: Sequence[str] = ()  # --set KEY=VALUE, applied to every trial
    metric: str | None = None
    direction: str | None = None
    trials: int | None = None
    seeds: int | None = None
    sampler: str | None = None
    storage: str | None = None
    study: str | None = None
    worker: bool = False
    device: str = "cpu"
    grace: int = 30  # seconds without a heartbeat after which a trial's worker counts as dead
    track: Sequence[str] = ()
    quiet: bool = False


def lookup(result: dict, path: str) -> Any:
    """The value at dotted ``path`` of ``eval.json``'s content (KeyError names what there is)."""
    cur: Any = result
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            from latentspec.track import flatten

            have = ", ".join(k for k, v in flatten(result).items() if isinstance(v, (int, float)))
            raise SweepError(f"metric {path}: not in the run's eval.json (it has: {have})")
        cur = cur[part]
    return cur


def _load(spec_path: str, opts: SweepOptions):
    """The spec document (with --set) and the checked sweep (with --param and options)."""
    doc = load_file(spec_path)
    from latentspec.spec import apply_overrides

    apply_overrides(doc, list(opts.sets))
    spec, diags = check_document(doc)
    if spec is None:
        raise SpecError(diags)
    extra = dict(parse_param(p) for p in opts.params)
    sweep, diags = check_sweep(doc, extra)
    if sweep is None:
        raise SpecError(diags)
    chosen = {
        k: v
        for k, v in dict(
            metric=opts.metric, direction=opts.direction, trials=opts.trials, seeds=opts.seeds, sampler=opts.sampler
        ).items()
        if v is not None
    }
    sweep = dataclasses.replace(sweep, **chosen)
    if not sweep.metric:
        raise SweepError(
            "a sweep needs a metric: `sweep: {metric: PATH}` in the spec or --metric PATH (a path into eval.json, e.g. test.neg_elbo)"
        )
    return doc, spec, sweep


def _suggest(trial, path: str, d: Dist) -> Any:
    if d.kind == "uniform":
        return trial.suggest_float(path, d.args[0], d.args[1])
    if d.kind == "loguniform":
        return trial.suggest_float(path, d.args[0], d.args[1], log=True)
    if d.kind == "int":
        return trial.suggest_int(path, d.args[0], d.args[1])
    if all(v is None or isinstance(v, (bool, int, float, str)) for v in d.args):
        return trial.suggest_categorical(path, list(d.args))
    # lists and mappings (e.g. hidden layer sizes) are chosen as their JSON text
    return json.loads(trial.suggest_categorical(path, [json.dumps(v) for v in d.args]))


class _Pruning(Callback):
    """Reports the per-epoch test value to the trial; stops the run when the pruner says so."""

    def __init__(self, trial, sweep: SweepSpec) -> None:
        self.trial = trial
        self.sweep = sweep
        self.epochs = 0

    def value(self, row: dict) -> float | None:
        test = row.get("test") or {}
        split, _, key = self.sweep.metric.partition(".")
        if split == "test" and key in test:
            return float(test[key])
        # else the test objective (the sum of the terms), which falls as a minimised metric does
        return float(sum(test.values())) if test and self.sweep.direction == "minimize" else None

    def on_epoch(self, trainer, row: dict) -> None:
        import optuna

        self.epochs += 1
        value = self.value(row)
        if value is None or not math.isfinite(value):
            return
        self.trial.report(value, self.epochs)
        stages = trainer.spec.train.stages
        stage = stages[trainer.state["stage"]]
        final = trainer.state["stage"] == len(stages) - 1 and stage.steps is None and int(row["epoch"]) >= stage.epochs
        if not final and self.trial.should_prune():  # after the final epoch only the evaluation is left to save
            raise optuna.TrialPruned(f"epoch {self.epochs}: test value {value:.6g} is worse than the median")


class Sweep:
    def __init__(self, spec_path: str, out: str, opts: SweepOptions) -> None:
        self.optuna = require("optuna", "sweep", "latentspec sweep")
        self.spec_path = spec_path
        self.out = out
        self.opts = opts
        self.doc, self.spec, self.sweep = _load(spec_path, opts)
        self.storage_url = opts.storage or f"sqlite:///{os.path.abspath(os.path.join(out, 'study.db'))}"
        self.local = opts.storage is None
        self.study_name = opts.study or self.spec.name
        self._lock = None
        self.current: int | None = None
        try:
            os.makedirs(out, exist_ok=True)
        except OSError as exc:
            raise SweepError(f"--out {out}: cannot create the sweep folder ({exc.strerror})") from None

    # -- files and locks -------------------------------------------------------------------------
    def acquire(self) -> None:
        """Serialises claiming trials among the processes that share the SQLite study in the
        sweep folder: from counting the trials until the claimed trial exists. A shared database
        is claimed without it (near the end a worker may start one trial beyond --trials)."""
        if self.local and self._lock is None:
            import fcntl

            self._lock = open(os.path.join(self.out, ".lock"), "a")
            fcntl.flock(self._lock, fcntl.LOCK_EX)

    def release(self) -> None:
        if self._lock is not None:
            import fcntl

            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def _fingerprint(self) -> str:
        space = {p: [d.kind, list(d.args)] for p, d in self.sweep.params.items()}
        text = json.dumps(
            {
                "spec": {k: v for k, v in self.doc.data.items() if k != "sweep"},  # trials may grow
                "space": space,
                "metric": self.sweep.metric,
                "direction": self.sweep.direction,
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _storage(self, grace: int, kwargs: dict[str, Any]):
        """The RDB storage. Workers started together on a new database race to create its tables
        (one gets an IntegrityError stamping the schema version): such an error is retried a few
        times before it counts as a failure to open the storage."""
        import sqlalchemy.exc

        attempts = STORAGE_ATTEMPTS if self.storage_url.startswith("sqlite:") else 1
        for attempt in range(1, attempts + 1):
            try:
                return self.optuna.storages.RDBStorage(
                    self.storage_url,
                    heartbeat_interval=max(1, grace // 4),
                    grace_period=grace,
                    heartbeat_stale_trial_callback=self.optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
                    **kwargs,
                )
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
                if attempt == attempts:
                    raise
                time.sleep(0.5 * attempt)

    def open_study(self):
        optuna = self.optuna
        os.makedirs(self.out, exist_ok=True)
        kwargs: dict[str, Any] = {}
        if self.storage_url.startswith("sqlite:"):
            kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}
        else:
            kwargs["engine_kwargs"] = {"pool_pre_ping": True}
        grace = max(2, int(self.opts.grace))
        try:
            storage = self._storage(grace, kwargs)
        except ImportError as exc:
            raise SweepError(
                f"--storage {_redact(self.storage_url)}: the database driver is not installed ({exc.name}); "
                "for PostgreSQL: pip install psycopg2-binary, for MySQL: pip install pymysql (URL mysql+pymysql://...)"
            ) from None
        except Exception as exc:  # SQLAlchemy's connection errors: a bad URL, host or password
            raise SweepError(f"--storage {_redact(self.storage_url)}: cannot open the study storage: {exc}") from None
        # Seeded by the spec's seed, so the same spec and options propose the same trials; each
        # extra --worker process draws from its own stream (else workers would propose alike).
        seed = (int(self.doc.data.get("seed", 0)) + (os.getpid() if self.opts.worker else 0)) % 2**32
        sampler = (
            optuna.samplers.TPESampler(n_startup_trials=min(10, max(2, self.sweep.trials // 3)), seed=seed)
            if self.sweep.sampler == "tpe"
            else optuna.samplers.RandomSampler(seed=seed)
        )
        pruner = (
            optuna.pruners.MedianPruner(n_startup_trials=max(2, min(5, self.sweep.trials // 4)), n_warmup_steps=1)
            if self.sweep.pruner == "median"
            else optuna.pruners.NopPruner()
        )
        study = optuna.create_study(
            storage=storage,
            study_name=self.study_name,
            direction=self.sweep.direction,
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,
        )
        mark = self._fingerprint()
        have = study.user_attrs.get("latentspec")
        if have is None:
            study.set_user_attr(
                "latentspec",
                {"fingerprint": mark, "metric": self.sweep.metric, "seeds": self.sweep.seeds, "spec": self.spec_path},
            )
        elif have.get("fingerprint") != mark or have.get("seeds") != self.sweep.seeds:
            raise SweepError(
                f"study '{self.study_name}' in {_redact(self.storage_url)} was made from another spec, search space, "
                "metric or --seeds; pass --study NAME for a new study (or the same spec and options to continue it)"
            )
        return study

    # -- the trial ---------------------------------------------------------------------------------
    def run_name(self, trial) -> str:
        # a retried trial (its worker died) continues the run folders of the trial it retries
        name = trial.user_attrs.get("latentspec.run")
        if name is None:
            name = f"trial-{trial.number:03d}"
            trial.set_user_attr("latentspec.run", name)
        return name

    def objective(self, trial) -> float:
        self.release()  # the trial exists: other workers may claim theirs
        try:
            return self._objective(trial)
        except TRIAL_ERRORS as exc:
            trial.set_user_attr("error", str(exc))
            raise

    def _objective(self, trial) -> float:
        from latentspec.track import after_eval, tracked_train
        from latentspec.train.evaluate import evaluate_run

        self.current = trial.number
        values = {path: _suggest(trial, path, d) for path, d in self.sweep.params.items()}
        name = self.run_name(trial)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        scores, runs = [], []
        for k in range(self.sweep.seeds):
            run = os.path.join(self.out, "trials", name if self.sweep.seeds == 1 else f"{name}-seed-{k}")
            seed = {"seed": int(self.doc.data.get("seed", 0)) + k} if self.sweep.seeds > 1 else {}
            spec, diags = check_document(trial_document(self.doc, {**values, **seed}))
            if spec is None:
                raise _TrialSpecError("; ".join(str(d) for d in diags if d.severity == "error"))
            last = os.path.join(run, "checkpoints", "last")
            resume = os.path.exists(last) or os.path.exists(last + ".old")
            if not resume and os.path.isdir(run):  # a retried trial killed before its first checkpoint
                shutil.rmtree(run)
            callbacks = [_Pruning(trial, self.sweep)] if k == 0 else []
            tracked_train(
                spec,
                run,
                track=self.opts.track,
                callbacks=callbacks,
                resume=resume,
                device=self.opts.device,
                quiet=True,
            )
            result = evaluate_run(run, iwae=self.sweep.iwae, probe=self.sweep.probe, device=self.opts.device)
            after_eval(run, result)
            value = lookup(result, self.sweep.metric)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SweepError(f"metric {self.sweep.metric}: {value!r} is not a number")
            scores.append(float(value))
            runs.append(os.path.relpath(run, self.out))
        trial.set_user_attr("runs", runs)
        trial.set_user_attr("values", scores)
        trial.set_user_attr("std", statistics.pstdev(scores) if len(scores) > 1 else 0.0)
        return statistics.fmean(scores)

    # -- the loop ------------------------------------------------------------------------------------
    def _claim(self, study) -> bool | None:
        """True: run a trial (a waiting one, e.g. the retry of a trial whose worker died, or a
        new one); False: the study has its trials; None: the rest are running, wait for them."""
        from optuna.trial import TrialState

        states = [t.state for t in study.get_trials(deepcopy=False)]
        done = sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states)
        if done >= self.sweep.trials:
            return False
        if TrialState.WAITING in states:
            return True
        return True if done + states.count(TrialState.RUNNING) < self.sweep.trials else None

    def log(self, msg: str) -> None:
        if not self.opts.quiet:
            print(msg, file=sys.stderr, flush=True)

    def run(self) -> Any:
        optuna = self.optuna
        # failed trials are reported in one line each (Optuna's warning carries a traceback)
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        with self.lock():
            study = self.open_study()
        self.log(
            f"study '{self.study_name}' in {_redact(self.storage_url)}: {self.sweep.trials} trials, "
            f"{self.sweep.direction} {self.sweep.metric}"
            + (f", {self.sweep.seeds} seeds each" if self.sweep.seeds > 1 else "")
        )
        failures = 0
        while True:
            self.acquire()
            try:
                claim = self._claim(study)
                if claim is None:
                    self.release()
                    optuna.storages.fail_stale_trials(study)  # a dead worker's trial is retried
                    time.sleep(max(1, self.opts.grace // 4))
                    continue
                if claim is False:
                    break
                self.current = None
                # the objective releases the lock once the trial exists (popped or created)
                study.optimize(self.objective, n_trials=1, catch=TRIAL_ERRORS)
            finally:
                self.release()
            if self.current is not None:
                t = study.get_trials(deepcopy=False)[self.current]
                self.log(_describe(t))
                failures = failures + 1 if t.state.name == "FAIL" else 0
                if failures >= max(3, self.sweep.trials // 2):
                    raise SweepError(f"{failures} trials in a row failed; the last: {t.user_attrs.get('error')}")
        return study


class _TrialSpecError(Exception):
    """A combination of searched values that makes an invalid spec: the trial fails, the sweep goes on."""


# what fails one trial, not the sweep: an invalid combination of values, a diverging run
TRIAL_ERRORS = (_TrialSpecError, NonFiniteError)


def _describe(t) -> str:
    params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in t.params.items())
    value = f"{t.value:.6g}" if t.state.name == "COMPLETE" else _state(t)
    return f"trial {t.number}: {value}  ({params})"


def _state(t) -> str:
    """``complete``, ``fail``, or ``pruned after epoch 2 (test 183.5)``."""
    if t.state.name == "PRUNED" and t.intermediate_values:
        step = max(t.intermediate_values)
        return f"pruned after epoch {step} (test {t.intermediate_values[step]:.6g})"
    if t.state.name == "FAIL" and t.user_attrs.get("error"):
        return f"failed: {t.user_attrs['error']}"
    return t.state.name.lower()


def _redact(url: str) -> str:
    """A storage URL without its password."""
    import re

    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def run_sweep(spec_path: str, out: str, opts: SweepOptions) -> dict:
    """Run (or join, or resume) the sweep; unless a worker, write its reports. Returns a summary."""
    from latentspec.sweep._report import write_reports

    sw = Sweep(spec_path, out, opts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sw.optuna.exceptions.ExperimentalWarning)
        study = sw.run()
        if opts.worker:
            return {"study": sw.study_name, "trials": len(study.trials)}
        return write_reports(study, sw.out, sw.sweep)
