"""`latentspec compare RUN...`: a table of run metrics (mean ± std over runs whose specs differ
only in the seed) and their learning curves overlaid in one PNG (matplotlib: `latentspec[plot]`).

Metrics come from each run's ``eval.json`` (``latentspec eval``), else from its last epoch row
in ``metrics.jsonl``; a ``--metric`` path works on either (``test.neg_elbo``, ``test.recon``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
from collections.abc import Sequence
from typing import Any

import yaml

from latentspec._jsonl import read_rows
from latentspec.errors import RunError, UserError


@dataclasses.dataclass
class Run:
    path: str
    raw: dict  # the resolved spec
    result: dict  # eval.json, else {"test": ..., "train": ...} of the last epoch row
    epochs: list[dict]  # epoch rows of metrics.jsonl, in order

    @property
    def key(self) -> str:
        """The spec up to its seed: runs with the same key are seeds of one configuration."""
        return json.dumps({k: v for k, v in self.raw.items() if k != "seed"}, sort_keys=True, default=str)


@dataclasses.dataclass
class Group:
    label: str
    runs: list[Run]
    values: dict[str, list[float]]  # metric path -> one value per run

    def mean(self, metric: str) -> float:
        return statistics.fmean(self.values[metric])

    def std(self, metric: str) -> float | None:
        """The sample standard deviation over the group's runs (None for a single run)."""
        v = self.values[metric]
        return statistics.stdev(v) if len(v) > 1 else None


def load(path: str) -> Run:
    spec = os.path.join(path, "spec.yaml")
    rows_path = os.path.join(path, "metrics.jsonl")
    if not os.path.isfile(spec) or not os.path.isfile(rows_path):
        raise RunError(f"{path} is not a run directory (it needs spec.yaml and metrics.jsonl)")
    with open(spec) as f:
        raw = yaml.safe_load(f) or {}
    epochs = [row for row in read_rows(rows_path) if row.get("kind") == "epoch"]
    result: dict = {}
    if os.path.isfile(os.path.join(path, "eval.json")):
        with open(os.path.join(path, "eval.json")) as f:
            result = json.load(f)
    elif epochs:
        last = epochs[-1]
        result = {k: last[k] for k in ("test", "train") if k in last}
    return Run(path, raw, result, epochs)


def _value(run: Run, path: str) -> float | None:
    cur: Any = run.result
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            cur = None
            break
        cur = cur[part]
    if cur is None and run.epochs:  # a per-epoch value, e.g. test.recon, when eval.json lacks it
        cur = run.epochs[-1]
        for part in path.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
    if isinstance(cur, bool) or not isinstance(cur, (int, float)):
        return None
    return float(cur)


def _numeric_leaves(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        p = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out += _numeric_leaves(v, p)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(p)
    return out


def _labels(groups: list[list[Run]]) -> list[str]:
    """Each group by the spec values that set it apart (or its first run's folder)."""
    from latentspec.track import flatten

    flat = [flatten({k: v for k, v in g[0].raw.items() if k != "seed"}) for g in groups]
    keys = sorted({k for f in flat for k in f})
    differ = [k for k in keys if len({json.dumps(f.get(k), default=str) for f in flat}) > 1 and k != "name"]
    labels = []
    for f, g in zip(flat, groups):
        parts = [f"{k}={f.get(k)}" for k in differ[:3]]
        labels.append(", ".join(parts) if parts and len(differ) <= 3 else os.path.basename(os.path.normpath(g[0].path)))
    if len(set(labels)) < len(labels):
        labels = [os.path.basename(os.path.normpath(g[0].path)) for g in groups]
    return labels


def compare(paths: Sequence[str], metrics: Sequence[str] = ()) -> tuple[list[Group], list[str]]:
    """Group the runs by spec up to the seed; each group's values of ``metrics`` (default: the
    numeric ``test`` values all runs have)."""
    if not paths:
        raise UserError("compare needs at least one RUN")
    runs = [load(p) for p in paths]
    if not metrics:
        common = None
        for r in runs:
            have = set(_numeric_leaves({"test": r.result.get("test") or {}}))
            common = have if common is None else common & have
        metrics = sorted(common or ())
        if not metrics:
            raise UserError("the runs share no test metric; run `latentspec eval RUN` or pass --metric PATH")
    by_key: dict[str, list[Run]] = {}
    for r in runs:
        by_key.setdefault(r.key, []).append(r)
    grouped = list(by_key.values())
    groups = []
    for label, members in zip(_labels(grouped), grouped):
        values: dict[str, list[float]] = {}
        for m in metrics:
            vs = [_value(r, m) for r in members]
            missing = [r.path for r, v in zip(members, vs) if v is None]
            if missing:
                raise UserError(f"--metric {m}: not a number in {', '.join(missing)} (eval.json or the last epoch row)")
            values[m] = vs
        groups.append(Group(label, members, values))
    return groups, list(metrics)


def _cell(g: Group, m: str) -> str:
    std = g.std(m)
    return f"{g.mean(m):.6g}" + (f" ± {std:.3g}" if std is not None else "")


def table(groups: list[Group], metrics: list[str]) -> str:
    """A Markdown table: one row per configuration, ``mean ± std (n runs)`` per metric."""
    lines = ["| runs | n | " + " | ".join(metrics) + " |", "|---|---|" + "---|" * len(metrics)]
    for g in groups:
        lines.append(f"| {g.label} | {len(g.runs)} | " + " | ".join(_cell(g, m) for m in metrics) + " |")
    return "\n".join(lines)


def curve(run: Run, metric: str | None) -> tuple[str, list[float]]:
    """The per-epoch series plotted for ``run``: the metric's ``test.X`` (or ``train.X``) value
    when the epoch rows have it, else the test objective (the sum of the test terms), else the
    train objective."""
    if metric:
        split, _, key = metric.partition(".")
        if split in ("test", "train") and all(key in (r.get(split) or {}) for r in run.epochs if r.get(split)):
            ys = [r[split][key] for r in run.epochs if r.get(split)]
            if ys:
                return metric, ys
    for split in ("test", "train"):
        ys = [sum(r[split].values()) for r in run.epochs if r.get(split)]
        if ys:
            return f"{split} objective", ys
    return "", []


def plot(groups: list[Group], metric: str | None, path: str) -> str:
    """Overlaid learning curves, one colour per configuration; seeds as a mean line and a ± std band."""
    from latentspec._extras import require

    matplotlib = require("matplotlib", "plot", "the learning-curve plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from latentspec_runtime._atomic import atomic_path

    fig, ax = plt.subplots(figsize=(7, 4.2))
    ylabel = ""
    for g in groups:
        series = [curve(r, metric) for r in g.runs]
        ylabel = ylabel or series[0][0]
        n = min(len(ys) for _, ys in series)
        if n == 0:
            continue
        xs = list(range(1, n + 1))
        mean = [statistics.fmean(ys[i] for _, ys in series) for i in range(n)]
        (line,) = ax.plot(xs, mean, marker="o" if n < 20 else None, label=f"{g.label} (n={len(g.runs)})")
        if len(series) > 1:
            std = [statistics.stdev(ys[i] for _, ys in series) for i in range(n)]
            ax.fill_between(
                xs,
                [m - s for m, s in zip(mean, std)],
                [m + s for m, s in zip(mean, std)],
                alpha=0.2,
                color=line.get_color(),
            )
    ax.set_xlabel("evaluated epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def as_json(groups: list[Group], metrics: list[str]) -> list[dict]:
    return [
        {
            "label": g.label,
            "runs": [r.path for r in g.runs],
            **{
                m: {"mean": g.mean(m), "std": g.std(m), "values": g.values[m]}
                for m in metrics
                if not any(math.isnan(v) for v in g.values[m])
            },
        }
        for g in groups
    ]
