"""Items 5 and 6 of "Seed results I": conditional generation (a CVAE judged by a spec-trained
classifier) and smart editing / gaze redirection on ``faces``."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from benchmarks.seeds import Context, claim_rows, epoch_rows, register

MNIST_QUICK = ["data.split.train=300", "data.split.test=100", "data.batch=50"]
PER_CLASS = 100  # the 1,000 conditional samples over 10 digits


def _confusion_png(path: str, confusion: np.ndarray, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(confusion)
    fig, ax = plt.subplots(figsize=(5.2, 4.6), dpi=120)
    rate = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    im = ax.imshow(rate, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(k):
        for j in range(k):
            if confusion[i, j]:
                ax.text(j, i, str(int(confusion[i, j])), ha="center", va="center", fontsize=7,
                        color="white" if rate[i, j] > 0.5 else "black")  # fmt: skip
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("classified as")
    ax.set_ylabel("asked for (y)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the row")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@register(
    "cvae",
    "Conditional VAE: samples of a chosen digit, judged by a spec-trained classifier",
    "Sohn, Lee & Yan 2015; Kingma, Rezende, Mohamed & Welling 2014 (M2)",
)
def cvae(ctx: Context) -> dict[str, Any]:
    from latentspec.train.images import labelled_grid, save_png
    from latentspec_runtime import Bundle

    quick = MNIST_QUICK if ctx.quick else []
    clf = ctx.train(
        "specs/classifier_mnist.yaml",
        "classifier_mnist",
        [*quick, "train.epochs=1", "train.schedule.epochs=1"] if ctx.quick else [],
    )
    clf_eval = ctx.evaluate(clf)
    run = ctx.train("specs/cvae_mnist.yaml", "cvae_mnist", [*quick, "train.epochs=2"] if ctx.quick else [])
    per_class = 10 if ctx.quick else PER_CLASS
    ev = ctx.evaluate(run, "--class-fidelity", clf, "--samples", str(10 * per_class))
    claims = ctx.check(run)
    fid = ev["class_fidelity"]

    # The deployment path: both runs exported as verified ONNX bundles; the CVAE bundle's runtime
    # draws `sample(n, y=c)` and the classifier bundle's `classify` entry labels the draws.
    bundles = os.path.join(ctx.runs, "bundles")
    ctx.cli("export", run, "--out", os.path.join(bundles, "cvae"), "--verify")
    ctx.cli("export", clf, "--out", os.path.join(bundles, "classifier"), "--verify")
    gen = Bundle.load(os.path.join(bundles, "cvae"), device="cpu")
    judge = Bundle.load(os.path.join(bundles, "classifier"), device="cpu")
    confusion = np.zeros((10, 10), dtype=np.int64)
    rows = []
    for c in range(10):
        images = gen.sample(per_class, seed=1000 + c, y=c)
        logits = judge.run("classify", {"x": images})["logits"]
        np.add.at(confusion[c], logits.argmax(1), 1)
        rows.append((f"y={c}", images[:10]))
    runtime_acc = float(np.trace(confusion) / confusion.sum())

    conf_png = ctx.figure("cvae_confusion.png")
    _confusion_png(
        conf_png,
        np.asarray(fid["confusion"]),
        f"CVAE samples ({fid['samples']}) classified by classifier_mnist: {100 * fid['accuracy']:.1f} % as asked",
    )
    runtime_png = ctx.figure("cvae_runtime_confusion.png")
    _confusion_png(
        runtime_png,
        confusion,
        f"through the ONNX bundles ({int(confusion.sum())} samples): {100 * runtime_acc:.1f} % as asked",
    )
    grid_png = ctx.figure("cvae_samples.png")
    save_png(grid_png, labelled_grid(rows, ncol=10))
    epochs = epoch_rows(run)
    numbers = {
        "class_fidelity": {k: fid[k] for k in ("accuracy", "min_class_accuracy", "per_class", "samples", "confusion")},
        "classifier_accuracy_on_real_test_digits": fid["real_accuracy"],
        "classifier_test_ce": clf_eval["test"]["ce"],
        "runtime": {"accuracy": runtime_acc, "samples": int(confusion.sum()), "confusion": confusion.tolist()},
        "cvae_test_neg_elbo": ev["test"]["neg_elbo"],
        "cvae_epochs": len(epochs),
    }
    table = [
        *claim_rows(claims),
        ("the same through the ONNX bundles (runtime sample(n, y=c) → classify)", f"{runtime_acc:.4g}", None),
        ("classifier accuracy on real test digits (the judge)", f"{fid['real_accuracy']:.4g}", None),
        ("CVAE test −ELBO, nats", f"{ev['test']['neg_elbo']:.4g}", None),
    ]
    return {
        "numbers": numbers,
        "claims": {"cvae_mnist": claims},
        "figures": [conf_png, runtime_png, grid_png],
        "rows": table,
    }


# -- item 6: smart editing and gaze redirection ---------------------------------------------------

FACES_QUICK = ["data.dataset.faces.size=160", "data.split.train=120", "data.split.test=40", "data.batch=40"]
GAZE_STEP = 1.0  # the edit: the pupils move right by one gaze unit (half of gaze_x's range, -1..1)
MEANS = "gaze_right=gaze_x:-1..-0.5:0.5..1"  # group means: right-looking minus left-looking faces
PAIRS = 500  # training faces rendered twice (gaze_x and gaze_x + GAZE_STEP) for the pairs direction


def _faces_split(spec, split: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The factors (identity and the shared ones) and images of ``split``'s rows of x."""
    from latentspec.data.pipeline import group_rows, load_arrays
    from latentspec.data.procedural.faces import SHARED

    arrays = load_arrays(spec)
    _, rows = group_rows(spec, split)[spec.data.fields["x"].group]
    factors = {name: arrays[name][rows] for name in ("identity", *(f.name for f in SHARED))}
    return factors, arrays["image"][rows]


def _render(spec, factors: dict[str, np.ndarray], gaze_x: np.ndarray) -> dict[str, np.ndarray]:
    """The faces of ``factors`` rendered with ``gaze_x`` instead (image and landmarks)."""
    from latentspec.data.procedural.faces import render_batch

    cfg = spec.data.dataset.config.as_dict()
    return render_batch({**factors, "gaze_x": gaze_x}, image_size=cfg["image_size"], identities=cfg["identities"])


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).mean())


@register(
    "smart_editing",
    "Smart editing: gaze redirection by a latent direction of a VAE on faces",
    "Larsen et al. 2016; White 2016 (attribute vectors); gaze redirection as in Ganin et al. 2016",
)
def smart_editing(ctx: Context) -> dict[str, Any]:
    import torch

    from latentspec.run import load_run
    from latentspec.run.directions import code_latent
    from latentspec.train.images import labelled_grid, save_png
    from latentspec.train.pictures import run_entry
    from latentspec_runtime import Bundle
    from latentspec_runtime._atomic import write_text

    quick = [*FACES_QUICK, "train.epochs=1"] if ctx.quick else []
    run = ctx.train("specs/vae_faces.yaml", "vae_faces", quick)
    spec, model = load_run(run)

    # Explicit pairs: training faces with gaze_x <= 1 - step, rendered again with gaze_x + step;
    # the direction is the mean difference of their codes (the encoder's mean) per gaze unit, so
    # its run record says it moves gaze_x by 1 per unit of alpha (what `eval --edit-fidelity` reads).
    train_f, _ = _faces_split(spec, "train")
    pick = np.flatnonzero(train_f["gaze_x"] <= 1.0 - GAZE_STEP)[:PAIRS]
    pf = {k: v[pick] for k, v in train_f.items()}
    a = _render(spec, pf, pf["gaze_x"])["image"]
    b = _render(spec, pf, pf["gaze_x"] + GAZE_STEP)["image"]

    def code(images: np.ndarray) -> np.ndarray:
        (mu, _) = run_entry(model, "encode", {"x": torch.from_numpy(images)}, len(images))[:2]
        return mu.double().numpy()

    pairs = (code(b) - code(a)).mean(0) / GAZE_STEP
    about_pairs = f"pairs: gaze_x + {GAZE_STEP:g} on {len(pick)} training faces, per gaze unit"
    record = {
        "gaze_right_pairs": {
            "latent": code_latent(spec),  # the latent the encoder's mean is the code of (z)
            "vector": [float(v) for v in pairs],
            "source": about_pairs,
            "factor": "gaze_x",
            "factor_per_alpha": 1.0,
        }
    }
    write_text(os.path.join(run, "directions.json"), json.dumps(record, indent=1) + "\n")  # eval and export read it

    # The edit's fidelity is a metric of `latentspec eval`: the held-out faces that can look one
    # step further right, edited along each direction by one gaze unit (the group-means direction
    # built from the training split, alpha = step / its groups' mean gaze_x difference), against
    # the faces rendered with gaze_x + 1; the spec's claim reads it and `latentspec check` decides.
    ev = ctx.evaluate(
        run, "--edit-fidelity", MEANS, "--edit-fidelity", "gaze_right_pairs", "--edit-step", f"{GAZE_STEP:g}"
    )
    claims = ctx.check(run)
    em, ep = ev["edit"]["gaze_right"], ev["edit"]["gaze_right_pairs"]

    # The deployment path: the same edits through the exported bundle's runtime, `edit(x, d, alpha)`.
    bundle_dir = os.path.join(ctx.runs, "bundle")
    ctx.cli("export", run, "--out", bundle_dir, "--verify", "--direction", MEANS)
    test_f, test_x = _faces_split(spec, "test")
    keep = np.flatnonzero(test_f["gaze_x"] <= 1.0 - GAZE_STEP)
    tf, x = {k: v[keep] for k, v in test_f.items()}, test_x[keep]
    gt = _render(spec, tf, tf["gaze_x"] + GAZE_STEP)["image"]
    bundle = Bundle.load(bundle_dir, device="cpu")
    before = bundle.edit(x, "gaze_right", 0.0)  # decode(code(x)): the model's face before the edit
    after_pairs = bundle.edit(x, "gaze_right_pairs", ep["alpha"])
    after_means = bundle.edit(x, "gaze_right", em["alpha"])
    runtime = {
        "decoded_before_edit": _mse(before, gt),
        "edit_pairs": _mse(after_pairs, gt),
        "edit_means": _mse(after_means, gt),
    }

    strip = ctx.figure("smart_editing_gaze.png")
    k = min(8, len(x))

    def big(images: np.ndarray) -> np.ndarray:  # 2x nearest-neighbour, so the pupils show
        return np.asarray(images[:k]).repeat(2, axis=-1).repeat(2, axis=-2)

    save_png(
        strip,
        labelled_grid(
            [
                ("input", big(x)),
                ("decoded", big(before)),
                ("edit, pairs", big(after_pairs)),
                ("edit, means", big(after_means)),
                ("truth gaze+1", big(gt)),
            ],
            ncol=k,
        ),
    )
    means = np.asarray(bundle_directions(bundle_dir)["gaze_right"], np.float64)
    cos = float(pairs @ means / (np.linalg.norm(pairs) * np.linalg.norm(means) + 1e-12))
    mse = {
        "input_unchanged": em["mse_input"],
        "decoded_before_edit": em["mse_before"],
        "edit_pairs": ep["mse_after"],
        "edit_means": em["mse_after"],
    }
    eye_mse = {
        "input_unchanged": em["region_mse_input"],
        "decoded_before_edit": em["region_mse_before"],
        "edit_pairs": ep["region_mse_after"],
        "edit_means": em["region_mse_after"],
    }
    closer = {"edit_pairs": ep["fraction_closer"], "edit_means": em["fraction_closer"]}
    numbers = {
        "test_faces": em["examples"],
        "gaze_step": em["step"],
        "alpha_means": em["alpha"],
        "pairs": len(pick),
        "mse": mse,
        "eye_region_mse": eye_mse,
        "fraction_of_faces_nearer_truth": closer,
        "runtime_mse": runtime,
        "runtime_vs_eval_max_abs": max(abs(runtime[key] - mse[key]) for key in runtime),
        "cosine_pairs_vs_means_direction": cos,
        "vae_test_neg_elbo": ev["test"]["neg_elbo"],
    }
    order = ("input_unchanged", "decoded_before_edit", "edit_pairs", "edit_means")
    rows = [
        *claim_rows(claims),
        ("the same for the pairs direction (measured, not a spec claim: it is built here, not by a CLI request)",
         f"{mse['edit_pairs']:.4g} vs {mse['decoded_before_edit']:.4g}", None),
        ("MSE to truth: input unchanged / decoded / pairs edit / means edit",
         " / ".join(f"{mse[key]:.4g}" for key in order), None),
        ("the same, eye regions only", " / ".join(f"{eye_mse[key]:.4g}" for key in order), None),
        ("MSE change by the edit (pairs / means), and the faces it brings nearer the truth",
         " / ".join(f"{100 * (mse[key] / mse['decoded_before_edit'] - 1):+.2f} % ({100 * closer[key]:.0f} %)"
                    for key in ("edit_pairs", "edit_means")),
         None),
    ]  # fmt: skip
    return {"numbers": numbers, "claims": {"vae_faces": claims}, "figures": [strip], "rows": rows}


def bundle_directions(bundle_dir: str) -> dict[str, list[float]]:
    """{name: vector} of a bundle's manifest directions."""
    with open(os.path.join(bundle_dir, "manifest.json")) as f:
        return {name: d["vector"] for name, d in (json.load(f).get("directions") or {}).items()}
