"""Experiment tracking: stream a run to TensorBoard or MLflow (`train.track`, `--track`), or
back-fill existing run directories (`latentspec track RUN --to mlflow`).

The sinks are optional extras (`latentspec[tensorboard]`, `latentspec[mlflow]`); which ones exist
is the `tracker` registry (``latentspec.components.trackers``).
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import yaml

from latentspec._jsonl import read_rows
from latentspec.errors import RunError, UserError
from latentspec.track._feed import eval_scalars, flatten, hparams, row_scalars
from latentspec.track._sinks import MlflowSink, Sink, TensorBoardSink, default_mlflow_uri

STATE_FILE = "track.json"


def entries(raw_track: Iterable | None, extra: Sequence[str] = (), flag: str = "--track") -> list[tuple[str, dict]]:
    """``train.track`` items (``name`` or ``{name: {params}}``) plus ``--track`` names, each
    with its parameters resolved from the tracker registry."""
    from latentspec.components import TRACKERS, load_all
    from latentspec.spec import did_you_mean

    load_all()
    out: dict[str, dict] = {}
    for item in [*(raw_track or []), *extra]:
        if isinstance(item, str):
            name, cfg = item, {}
        elif isinstance(item, tuple):  # TrainSpec.track's (name, config) pairs
            name, cfg = item
        else:
            ((name, cfg),) = item.items()
        if name not in TRACKERS:
            raise UserError(
                f"{flag} {name}: no such tracker{did_you_mean(name, TRACKERS.names())} (trackers: {', '.join(TRACKERS.names())})"
            )
        if name not in out or cfg:
            out[name] = TRACKERS[name].resolve(cfg if isinstance(cfg, dict) else {})
    return list(out.items())


def _read_state(run: str) -> dict:
    try:
        with open(os.path.join(run, STATE_FILE)) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return {}


def _write_state(run: str, state: dict) -> None:
    from latentspec_runtime._atomic import write_text

    write_text(os.path.join(run, STATE_FILE), json.dumps(state, indent=2) + "\n")


#: one sink per registered tracker (``components/trackers.py``; a test keeps the two in step):
#: (run, cfg, spec name, the run's saved sink state, TensorBoard purge step) -> Sink
SINKS: dict[str, Callable[[str, dict, str, dict, int | None], Sink]] = {
    "tensorboard": lambda run, cfg, spec_name, state, purge_step: TensorBoardSink(run, cfg, purge_step=purge_step),
    "mlflow": lambda run, cfg, spec_name, state, purge_step: MlflowSink(
        run, cfg, spec_name=spec_name, state=state.get("mlflow")
    ),
}


def open_sinks(
    run: str, spec_name: str, items: list[tuple[str, dict]], *, purge_step: int | None = None, fresh: bool = False
) -> list[Sink]:
    """Open each sink for ``run``; ``fresh`` starts a new MLflow run instead of reattaching."""
    state = {} if fresh else _read_state(run)
    sinks = [SINKS[name](run, cfg, spec_name, state, purge_step) for name, cfg in items]
    if sinks:
        _write_state(run, {**_read_state(run), **{s.name: s.state() for s in sinks}})
    return sinks


def _grids(run: str, epoch: int) -> list[tuple[str, str]]:
    """The sample grids the trainer wrote for ``epoch``: (tag, path)."""
    out = []
    for path in sorted(glob.glob(os.path.join(run, "samples", f"epoch-{epoch:03d}*.png"))):
        suffix = os.path.basename(path)[len(f"epoch-{epoch:03d}") : -len(".png")]
        out.append(("samples" + suffix.replace("-", "/"), path))
    return out


class RunTracker:
    """Feeds a run's rows, grids, eval and bundle to its sinks; the trainer calls
    ``on_row`` and ``on_epoch`` (see :class:`latentspec.train.trainer.Callback`).
    ``sinks`` may be a function that opens them: then they open (and get the spec and
    hyperparameters) at the first row, so a run that fails its checks leaves no trace."""

    def __init__(self, run: str, raw: dict, sinks: list[Sink] | Callable[[], list[Sink]], step: int = 0) -> None:
        self.run = run
        self.raw = raw
        self._opener = sinks if callable(sinks) else None
        self.sinks: list[Sink] = [] if callable(sinks) else sinks
        self.step = step

    def _open(self) -> None:
        if self._opener is not None:
            self.sinks, self._opener = self._opener(), None
            self.start()

    def start(self) -> None:
        text = yaml.safe_dump({k: v for k, v in self.raw.items() if k != "sweep"}, sort_keys=False)
        metrics = [f"test/{t}" for t in self.raw.get("objective") or {}]
        for s in self.sinks:
            s.start(spec_text=text, hparams=hparams(self.raw), metrics=metrics)

    def on_row(self, row: dict) -> None:
        self._open()
        self.step = max(self.step, int(row.get("step", 0)))
        values = row_scalars(row)
        for s in self.sinks:
            s.scalars(values, int(row.get("step", 0)))

    def on_epoch(self, trainer: Any, row: dict) -> None:
        self._open()
        for tag, path in _grids(self.run, int(row["epoch"])):
            for s in self.sinks:
                s.image(tag, path, int(row["step"]))

    def on_eval(self, result: dict) -> None:
        values = eval_scalars(result)
        for s in self.sinks:
            s.scalars(values, self.step)

    def on_bundle(self, path: str) -> None:
        for s in self.sinks:
            s.artifact(path, "bundle")

    def close(self, status: str = "FINISHED") -> None:
        for s in self.sinks:
            s.close(status)


def _run_raw(run: str) -> dict:
    path = os.path.join(run, "spec.yaml")
    if not os.path.isfile(path):
        raise RunError(f"{run} is not a run directory (no spec.yaml)")
    with open(path) as f:
        return yaml.safe_load(f) or {}


def _last_step(run: str) -> int:
    state = os.path.join(run, "checkpoints", "last", "state.json")
    try:
        with open(state) as f:
            return int(json.load(f).get("step", 0))
    except (OSError, ValueError):
        return 0


def tracked_train(spec: Any, out: str, *, track: Sequence[str] = (), callbacks: Sequence = (), **kwargs) -> dict:
    """``latentspec.train.trainer.train`` with the spec's ``train.track`` sinks (and ``track``
    names) fed live. Without sinks it is exactly ``train``."""
    from latentspec.train.trainer import train

    items = entries(spec.train.track, track)
    if not items:
        return train(spec, out, callbacks=list(callbacks), **kwargs)
    from latentspec._extras import require

    for name, _ in items:  # before training, not at its first row
        require(name, name, f"tracking with {name}")
    resume = kwargs.get("resume", False)
    step = _last_step(out) if resume else 0

    def opener() -> list[Sink]:
        # a fresh run starts a fresh MLflow run; a resumed one continues the one it had
        return open_sinks(out, spec.name, items, purge_step=step + 1 if resume and step else None, fresh=not resume)

    tracker = RunTracker(out, spec.raw, opener, step)
    status = "FAILED"
    try:
        summary = train(spec, out, callbacks=[tracker, *callbacks], **kwargs)
        status = "FINISHED"
        return summary
    except BaseException as exc:
        # stopped by the user or pruned by a sweep, as opposed to failed
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "TrialPruned" else "FAILED"
        raise
    finally:
        tracker.close(status)


def _attached(run: str) -> RunTracker | None:
    """The sinks a tracked run recorded in ``track.json``, reopened (None for untracked runs)."""
    state = _read_state(run)
    if not state:
        return None
    raw = _run_raw(run)
    declared = dict(entries((raw.get("train") or {}).get("track")))
    # the sinks the run streamed to: its spec's, and those `--track` added
    items = [
        (n, declared.get(n) or c) for n, c in entries([], [n for n in state if n not in declared] + list(declared))
    ]
    items = [(n, c) for n, c in items if n in state]
    if not items:
        return None
    return RunTracker(run, raw, open_sinks(run, raw.get("name", "latentspec"), items), _last_step(run))


def after_eval(run: str, result: dict) -> None:
    """Log `latentspec eval`'s result to the run's sinks, when it has any."""
    tracker = _attached(run)
    if tracker is not None:
        tracker.on_eval(result)
        tracker.close()


def after_export(run: str, bundle: str) -> None:
    """Log the exported bundle to the run's sinks (an MLflow artifact), when it has any."""
    tracker = _attached(run)
    if tracker is not None:
        tracker.on_bundle(bundle)
        tracker.close()


def backfill(
    runs: Sequence[str],
    to: Sequence[str],
    *,
    uri: str | None = None,
    experiment: str | None = None,
    bundle: str | None = None,
) -> list[str]:
    """Replay run directories (``metrics.jsonl``, grids, ``eval.json``) into sinks. A
    TensorBoard back-fill replaces the run's earlier events; MLflow gets a new run per call."""
    if bundle and len(runs) != 1:
        raise UserError("--bundle belongs to one run: give exactly one RUN with it")
    done = []
    for run in runs:
        raw = _run_raw(run)
        cfg: dict[str, dict] = {}
        for name, c in entries((raw.get("train") or {}).get("track")):
            cfg[name] = c
        items = []
        for name, c in entries([], to, "--to"):
            c = {**c, **cfg.get(name, {})}
            if name == "mlflow":
                c.update({k: v for k, v in (("uri", uri), ("experiment", experiment)) if v})
            items.append((name, c))
        rows = _rows(run)
        tracker = RunTracker(run, raw, open_sinks(run, raw.get("name", "latentspec"), items, purge_step=0, fresh=True))
        try:
            tracker.start()
            for row in rows:
                tracker.on_row(row)
                if row.get("kind") == "epoch":
                    tracker.on_epoch(None, row)
            if os.path.isfile(os.path.join(run, "eval.json")):
                with open(os.path.join(run, "eval.json")) as f:
                    tracker.on_eval(json.load(f))
            if bundle:
                tracker.on_bundle(bundle)
        finally:
            tracker.close()
        done.append(run)
    return done


def _rows(run: str) -> list[dict]:
    path = os.path.join(run, "metrics.jsonl")
    if not os.path.isfile(path):
        raise RunError(f"{run} has no metrics.jsonl to back-fill from")
    return read_rows(path)


__all__ = [
    "STATE_FILE",
    "RunTracker",
    "after_eval",
    "after_export",
    "backfill",
    "default_mlflow_uri",
    "entries",
    "eval_scalars",
    "flatten",
    "hparams",
    "open_sinks",
    "row_scalars",
    "tracked_train",
]
