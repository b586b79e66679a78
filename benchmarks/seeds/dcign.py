"""Item 4 of "Seed results II" and issue 12's DC-IGN clamping: DC-IGN (fixed-factor batches, every
unit but the varying factor's clamped) in both clamping modes against a plain VAE with the same
networks on the same fixed-factor data, by the disentanglement metrics of `eval --disentanglement`.

Every claim is the spec's, checked by `latentspec check RUN --baseline vae=VAE_RUN` for both
DC-IGN runs: each varied factor's best unit is the unit assigned to it, and DC-IGN's MIG is above
the plain VAE's (the baseline `vae`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from benchmarks.seeds import Context, claim_rows, register

SPEC = "specs/dcign_shapes.yaml"
QUICK = ["data.dataset.shapes.size=400", "data.split.train=300", "data.split.test=100", "train.epochs=1"]
#: run name -> the `--set`s that make it: the paper's mean clamping, the official code's first
#: sample, and the plain VAE (the decoder reads the unclamped code; the clamp node is then unused)
MODELS = {
    "dcign_mean": ["nodes.clamp.to=mean"],
    "dcign_first": ["nodes.clamp.to=first"],
    "vae": ["nodes.dec.in=z"],
}
LABELS = {"dcign_mean": "DC-IGN (clamp to the batch mean)", "dcign_first": "DC-IGN (clamp to the first sample)"}


def _copy(src: str, dst: str) -> None:
    """Copy a figure atomically (a temp file in the destination folder, then rename)."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dst), suffix=".png.tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        os.unlink(tmp)
        raise


def _summary(ev: dict) -> dict[str, Any]:
    d = ev["disentanglement"]
    return {
        "mig": d["mig"],
        "dci": {k: d["dci"][k] for k in ("disentanglement", "completeness", "informativeness")},
        "sap": d["sap"],
        "factorvae": d["factorvae"]["score"],
        "factorvae_chance": d["factorvae"]["chance"],
        "factors": {f: {"best_unit": v["best_unit"], "spearman": v["spearman"]} for f, v in d["factors"].items()},
        "examples": d["examples"],
        "test_rec": ev["test"]["rec"],
        "test_neg_elbo": ev["test"]["neg_elbo"],
        "active_units": ev["test"]["active_units"],
    }


@register(
    "dcign",
    "DC-IGN on shapes: fixed-factor batches and clamping, disentanglement against a plain VAE",
    "Kulkarni et al. 2015",
)
def dcign(ctx: Context) -> dict[str, Any]:
    quick = QUICK if ctx.quick else []
    numbers: dict[str, Any] = {}
    claims: dict[str, list[dict]] = {}
    figures: list[str] = []
    runs: dict[str, str] = {}
    for name, sets in MODELS.items():
        runs[name] = run = ctx.train(SPEC, name, [*sets, *quick])
        numbers[name] = _summary(ctx.evaluate(run, "--disentanglement"))
        ctx.cli("viz", run, "--out", os.path.join(run, "viz"))
        figure = ctx.figure(f"dcign_traversal_groups_{name}.png")
        _copy(os.path.join(run, "viz", "traversal-groups.png"), figure)
        figures.append(figure)
    for name in ("dcign_mean", "dcign_first"):  # the spec's claims, one of them on the VAE run
        claims[name] = ctx.check(runs[name], baselines={"vae": runs["vae"]})
    rows: list[tuple[str, str, bool | None]] = []
    for name in ("dcign_mean", "dcign_first", "vae"):
        n = numbers[name]
        rows.append(
            (
                f"{LABELS.get(name, 'plain VAE, same networks')}: MIG, DCI-D, SAP, FactorVAE",
                f"{n['mig']:.3g}, {n['dci']['disentanglement']:.3g}, {n['sap']:.3g}, {n['factorvae']:.3g}",
                None,
            )
        )
    for name in ("dcign_mean", "dcign_first"):
        rows += [(f"{name}: {c}", m, h) for c, m, h in claim_rows(claims[name])]
    return {"numbers": numbers, "claims": claims, "figures": figures, "rows": rows}
