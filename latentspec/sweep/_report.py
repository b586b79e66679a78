"""What a finished sweep leaves in its folder: results.csv, results.md, best.yaml, plot.png."""

from __future__ import annotations

import csv
import io
import os
import shutil
import warnings
from typing import Any

from latentspec_runtime._atomic import atomic_path, write_text


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else str(v)


def results_table(study, sweep) -> tuple[list[str], list[list[Any]]]:
    """Header and rows, one per trial: the best first, unfinished and failed trials last."""
    from optuna.trial import TrialState

    params = list(sweep.params)
    seeds = sweep.seeds > 1
    header = [
        "trial",
        "state",
        sweep.metric,
        *([f"{sweep.metric} std"] if seeds else []),
        *params,
        "seconds",
        "run",
    ]
    sign = 1 if sweep.direction == "minimize" else -1

    def order(t) -> tuple:
        return (t.state != TrialState.COMPLETE, sign * t.value if t.value is not None else 0.0, t.number)

    from latentspec.sweep._run import _state

    rows = []
    for t in sorted(study.get_trials(deepcopy=False), key=order):
        runs = t.user_attrs.get("runs") or [os.path.join("trials", t.user_attrs.get("latentspec.run", ""))]
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
        rows.append(
            [
                t.number,
                _state(t),
                t.value if t.state == TrialState.COMPLETE else None,
                *([t.user_attrs.get("std")] if seeds else []),
                *(t.params.get(p) for p in params),
                round(seconds, 1) if seconds is not None else None,
                " ".join(runs),
            ]
        )
    return header, rows


def markdown(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _plot(study, sweep, path: str) -> str | None:
    """Parallel coordinates of the finished trials (Optuna's matplotlib plot), or None when
    there are fewer than two."""
    from optuna.trial import TrialState

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if len(complete) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_parallel_coordinate

    with warnings.catch_warnings():
        # an axis whose finished trials all share one value (e.g. every finished trial drew the
        # same choice) gets a default span from matplotlib, which says so in a warning
        warnings.filterwarnings("ignore", message="Attempting to set identical", category=UserWarning)
        ax = plot_parallel_coordinate(study)
    ax.set_title(f"{len(complete)} trials: {sweep.metric} ({sweep.direction}) by searched value")
    fig = ax.figure
    fig.set_size_inches(8, 4.5)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def write_reports(study, out: str, sweep) -> dict:
    """Write the results table (CSV, Markdown), the best run's resolved spec and the plot."""
    from latentspec._extras import require

    header, rows = results_table(study, sweep)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    write_text(os.path.join(out, "results.csv"), buf.getvalue())
    md = markdown(header, rows)
    write_text(os.path.join(out, "results.md"), md)
    summary: dict[str, Any] = {"table": md, "trials": len(rows), "files": ["results.csv", "results.md"]}
    try:
        best = study.best_trial
    except ValueError:  # no finished trial yet
        best = None
    if best is not None:
        run = os.path.join(out, (best.user_attrs.get("runs") or [""])[0])
        src = os.path.join(run, "spec.yaml")
        if os.path.isfile(src):
            with atomic_path(os.path.join(out, "best.yaml")) as tmp:
                shutil.copyfile(src, tmp)
            summary["files"].append("best.yaml")
        summary.update(best={"trial": best.number, "value": best.value, "params": best.params, "run": run})
    require("matplotlib", "sweep", "the sweep's plot")
    if _plot(study, sweep, os.path.join(out, "plot.png")):
        summary["files"].append("plot.png")
    return summary
