"""What the sinks receive, computed from a run's rows and files (the same for live runs and back-fill)."""

from __future__ import annotations

import math
from typing import Any


def row_scalars(row: dict) -> dict[str, float]:
    """The scalars of one ``metrics.jsonl`` row, named ``train/recon``, ``test/kl``, ``lr``, ...

    >>> row_scalars({"kind": "epoch", "epoch": 2, "step": 40, "train": {"recon": 1.5}, "lr": [0.001]})
    {'train/recon': 1.5, 'lr': 0.001, 'epoch': 2.0}
    """
    out: dict[str, float] = {}
    kind = row.get("kind")
    if kind == "step":
        out["step/loss"] = row.get("loss")
        out.update({f"step/{k}": v for k, v in (row.get("terms") or {}).items()})
    else:
        for split in ("train", "test"):
            out.update({f"{split}/{k}": v for k, v in (row.get(split) or {}).items()})
        lrs = row.get("lr") or []
        if len(lrs) == 1:
            out["lr"] = lrs[0]
        else:
            out.update({f"lr/{i}": v for i, v in enumerate(lrs)})
        out.update({f"weight/{k}": v for k, v in (row.get("weights") or {}).items()})
        for key in ("images_per_second", "seconds", "epoch"):
            if key in row:
                out[key] = row[key]
    return {k: float(v) for k, v in out.items() if _number(v)}


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings and lists as ``a.b.0``-keyed leaves.

    >>> flatten({"train": {"optimizer": {"lr": 0.001}}, "nodes": {"enc": {"hidden": [64]}}})
    {'train.optimizer.lr': 0.001, 'nodes.enc.hidden.0': 64}
    """
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out[prefix] = value
    return out


def hparams(raw: dict) -> dict[str, Any]:
    """The hyperparameters of a spec: its flattened paths (numbers, strings, booleans)."""
    return {
        k: v if isinstance(v, (bool, int, float, str)) else str(v)
        for k, v in flatten({k: v for k, v in raw.items() if k not in ("sweep", "$schema")}).items()
    }


def eval_scalars(result: dict) -> dict[str, float]:
    """The numbers of an ``eval.json`` (booleans, e.g. checked claims, as 0/1) named ``eval/test/neg_elbo``."""
    out = {}
    for k, v in flatten(result).items():
        if isinstance(v, bool):
            out[f"eval/{k}".replace(".", "/")] = float(v)
        elif _number(v):
            out[f"eval/{k}".replace(".", "/")] = float(v)
    return out
