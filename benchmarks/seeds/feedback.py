"""Item 7 of "Seed results II": the feedback loop for hand pose (Oberweger et al. 2015).

One predictor and one synthesizer are trained once (stages 1-2 of ``specs/feedback_hands.yaml``);
the updater stage then continues a copy of that run three times (``train --resume --force``), so
the three updaters see the very same P and S: the hinge with λ = 0.6 (the paper's value, the
spec's default), the hinge with λ = 0.8 (chosen before any result: a milder demand, between the
paper's 0.6 and the no-progress bound 1), and plain L2 training of the updated pose (the
``l2`` terms), which the paper reports fails. ``latentspec eval`` reports the mean joint error
after K = 0 (the predictor alone), 1, 2, 3 iterations (``refinement.joint_error.K``, pixels of
the 64-pixel image); the spec's claim reads it. The exported bundle's ``refine`` in the
torch-free runtime is measured on the same test rows and compared with PyTorch's numbers.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import numpy as np

from benchmarks.seeds import Context, claim_rows, register

SPEC = "specs/feedback_hands.yaml"
QUICK = [
    "data.dataset.hands.size=160",
    "data.split.train=128",
    "data.split.test=32",
    "data.batch=32",
    "train.stages.0.epochs=1",
    "train.stages.1.epochs=1",
    "train.stages.2.epochs=1",
]
#: stages 1-2 only: the run every updater continues from
BASE_STAGES = (
    "train.stages=[{name: predictor, trainable: [predictor], terms: [pose], epochs: %d},"
    " {name: synth, trainable: [synth], terms: [synth], epochs: %d}]"
)
#: the updater variants: --set overrides of the spec (the first is the spec itself)
VARIANTS = {
    "hinge_0.6": [],
    "hinge_0.8": ["objective.hinge.lambda=0.8", "objective.hinge_own.lambda=0.8"],
    "l2": ["train.stages.2.terms=[l2, l2_own]"],
}
MAIN = "hinge_0.6"
TOLERANCE = 1e-3  # px: runtime against PyTorch (float32 ONNX Runtime vs eager)
SHOWN = 8  # test hands in the figure


def _stage_epochs(sets: list[str]) -> tuple[int, int]:
    from benchmarks.seeds import ROOT
    from latentspec.spec import load_spec

    spec = load_spec(os.path.join(ROOT, SPEC), overrides=sets)
    return spec.train.stages[0].epochs, spec.train.stages[1].epochs


def _continue(ctx: Context, base: str, name: str, sets: list[str]) -> str:
    """A copy of the stage-1-2 run ``base``, its updater stage trained with ``sets``."""
    from benchmarks.seeds import ROOT

    run = os.path.join(ctx.runs, name)
    shutil.copytree(base, run)
    ctx.commands.append(f"cp -r {base} {run}")
    argv = ["train", os.path.join(ROOT, SPEC), "--out", run, "--resume", "--force", "--quiet", "--device", "cpu"]
    for s in sets:
        argv += ["--set", s]
    ctx.cli(*argv)
    return run


def _joint_error(pred: np.ndarray, true: np.ndarray, scale: float) -> float:
    """Mean over joints and rows of the Euclidean joint distance, times ``scale``."""
    d = (pred.reshape(len(true), -1, 2) - true.reshape(len(true), -1, 2)).astype(np.float64)
    return float(scale * np.linalg.norm(d, axis=2).mean())


def _dots(images: np.ndarray, poses: list[tuple[np.ndarray, tuple[float, float, float]]], up: int = 3) -> np.ndarray:
    """(N, 1, H, W) grey images as RGB, ``up`` times larger, with each pose's joints (N, 42 in
    [-1, 1] over the image) as 2×2 dots."""
    n, _, h, w = images.shape
    rgb = np.repeat(np.repeat(np.repeat(images, 3, axis=1), up, axis=2), up, axis=3)
    for pose, colour in poses:
        px = (pose.reshape(n, -1, 2) + 1.0) * (up * w / 2.0)  # x, y in pixels of the enlarged image
        for i in range(n):
            for x, y in px[i]:
                c, r = int(np.clip(x, 1, up * w - 1)), int(np.clip(y, 1, up * h - 1))
                rgb[i, :, r - 1 : r + 1, c - 1 : c + 1] = np.asarray(colour, np.float32)[:, None, None]
    return rgb


@register("feedback", "Feedback loop: refined hand pose", "Oberweger, Wohlhart & Lepetit 2015")
def feedback(ctx: Context) -> dict[str, Any]:
    from latentspec.data.pipeline import SplitData
    from latentspec.run import load_run
    from latentspec.train.images import labelled_grid, save_png
    from latentspec_runtime import Bundle

    quick = QUICK if ctx.quick else []
    base = ctx.train(SPEC, "base", [*quick, BASE_STAGES % _stage_epochs(quick)])
    runs = {name: _continue(ctx, base, name, [*quick, *sets]) for name, sets in VARIANTS.items()}
    evals = {name: ctx.evaluate(run) for name, run in runs.items()}
    claims = ctx.check(runs[MAIN])
    per_k = {name: ev["refinement"]["joint_error"] for name, ev in evals.items()}
    ks = sorted(per_k[MAIN], key=int)

    # the exported bundle's refine in the torch-free runtime, on the same test rows
    bundle_dir = os.path.join(ctx.runs, "feedback.bundle")
    ctx.cli("export", runs[MAIN], "--out", bundle_dir, "--verify")
    spec, _ = load_run(runs[MAIN])
    test = SplitData.build(spec, "test")
    x, p = test.fields["x"].numpy(), test.fields["p"].numpy()
    scale = float(spec.objective["joint_error"].cfg["scale"])
    bundle = Bundle.load(bundle_dir, device="cpu")
    refined = {k: np.asarray(bundle.refine(x, iterations=int(k))) for k in ks}
    runtime = {k: _joint_error(refined[k], p, scale) for k in ks}
    diff = max(abs(runtime[k] - per_k[MAIN][k]) for k in ks)
    # K = 0 is the loop's start: the `predict` entry's pose
    predicted = _joint_error(bundle.run("predict", {"x": x})["p0"], p, scale)

    png = ctx.figure("feedback_hands.png")
    shown, truth = x[:SHOWN], p[:SHOWN]
    green, red = (0.1, 0.9, 0.1), (1.0, 0.1, 0.1)
    save_png(
        png,
        labelled_grid(
            [
                ("predictor", _dots(shown, [(truth, green), (refined["0"][:SHOWN], red)])),
                ("2 iterations", _dots(shown, [(truth, green), (refined["2"][:SHOWN], red)])),
            ],
            ncol=SHOWN,
        ),
    )

    def ratio(name: str, k: str) -> float:
        return per_k[name][k] / per_k[name]["0"]

    numbers = {
        "unit": "pixels of the 64-pixel hands image (mean Euclidean joint distance over 21 joints)",
        "test_rows": len(x),
        "joint_error": per_k,
        "ratio_to_predictor": {name: {k: ratio(name, k) for k in ks} for name in per_k},
        "runtime_refine": {
            "joint_error": runtime,
            "max_abs_diff_vs_pytorch": diff,
            "tolerance": TOLERANCE,
            "predict_entry_joint_error": predicted,
        },
        "paper": {"predictor_mm": 20.75, "loop_mm": 15.97, "ratio": 15.97 / 20.75},
        "lambda_other": 0.8,
    }
    path = " → ".join(f"{per_k[MAIN][k]:.3g}" for k in ks)
    rows = [
        (f"mean joint error, px, P then {', '.join(ks[1:])} iterations (hinge λ = 0.6)", path, None),
        *claim_rows(claims),
        *(
            (
                f"{label}: after 2 iterations / predictor (paper, hinge: 15.97 / 20.75 = 0.77)",
                f"{per_k[name]['2']:.3g} / {per_k[name]['0']:.3g} = {ratio(name, '2'):.3f}",
                None,
            )
            for name, label in (("hinge_0.6", "hinge λ = 0.6"), ("hinge_0.8", "hinge λ = 0.8"), ("l2", "plain L2"))
        ),
        (
            "hinge λ = 0.6 below plain L2 after 2 iterations (paper: L2 training fails; derived here, not a spec claim)",
            f"{per_k[MAIN]['2']:.4g} vs {per_k['l2']['2']:.4g}",
            per_k[MAIN]["2"] < per_k["l2"]["2"],
        ),
        (
            "runtime refine = PyTorch (max |Δ| of the joint error over K, px)",
            f"{diff:.2g} (≤ {TOLERANCE:g})",
            diff <= TOLERANCE,
        ),
    ]
    return {"numbers": numbers, "claims": {"feedback_hands": claims}, "figures": [png], "rows": rows}
