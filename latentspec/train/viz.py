"""`latentspec viz RUN`: pictures of what a trained model does, as PNGs.

- ``traversal-units.png``: one row per latent unit (the most variable first), decoding a test
  example's code with that unit moved over ±3σ of its distribution over the test codes;
- ``traversal-groups.png``: the same per latent group (`latents: {z: {groups: …}}`, DC-IGN's
  units per factor), all units of a group moved together;
- ``manifold.png``: the decoder over a grid of Gaussian quantiles when the latent is 2-D
  (Kingma & Welling, Fig. 4);
- ``scatter.png``: the test codes of a 2-D latent, coloured by the spec's class label field
  (Kingma & Welling's latent space of MNIST; matplotlib, the ``plot`` extra);
- ``interpolation.png``: strips decoding straight lines between the codes of test examples,
  the two real images at the ends;
- ``curves.png``: every term's learning curve, train and test, from ``metrics.jsonl``
  (matplotlib, the ``plot`` extra).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from latentspec._jsonl import read_rows
from latentspec.errors import RunError
from latentspec.spec import Spec
from latentspec.train.images import grid, save_png


def _decoder(spec: Spec) -> tuple[str, str] | None:
    """(entry name, latent) of an entry that decodes one latent (kind `decode`)."""
    for name, e in spec.export.items():
        if e.kind == "decode" and not e.optimize and len(e.inputs) == 1 and e.inputs[0] in spec.latents:
            return name, e.inputs[0]
    return None


def _codes(spec: Spec, model, latent: str, test) -> tuple[np.ndarray, np.ndarray | None]:
    """Codes of the latent: encoder codes of the test split (and its images), or the rows of a
    latent table (GLO), or prior draws."""
    from latentspec.train.evaluate import code_tensors, codes

    lat = spec.latents[latent]
    try:
        field, _ = code_tensors(spec)
    except RunError:
        field = None
    if field is not None:
        z = codes(spec, model, test).numpy()
        if z.shape[1] == lat.dim:
            return z, test.fields[field].numpy()
    if lat.table:
        return model.module_of(latent).weight.detach().float().cpu().numpy(), None
    g = torch.Generator().manual_seed(spec.seed)
    draw = torch.rand if lat.prior == "uniform" else torch.randn
    return draw((512, lat.dim), generator=g).numpy(), None


def _decode(model, entry: str, latent: str, z: np.ndarray) -> np.ndarray:
    from latentspec.train.pictures import run_entry

    (x,) = run_entry(model, entry, {latent: torch.from_numpy(np.asarray(z, dtype=np.float32))}, len(z))[:1]
    return x.float().cpu().numpy()


def _labelled(image: np.ndarray, labels: list[str], row_height: int, pad: int = 2) -> np.ndarray:
    """The grid with a white margin on the left carrying one label per row."""
    from PIL import Image, ImageDraw

    width = 8 + 7 * max((len(s) for s in labels), default=0)
    canvas = Image.new("RGB", (image.shape[1] + width, image.shape[0]), "white")
    canvas.paste(Image.fromarray(image), (width, 0))
    draw = ImageDraw.Draw(canvas)
    for i, text in enumerate(labels):
        draw.text((4, pad + i * (row_height + pad) + max(0, row_height // 2 - 6)), text, fill=(0, 0, 0))
    return np.asarray(canvas)


def _project(z: np.ndarray, kind: str | None, radius: float) -> np.ndarray:
    if kind is None:
        return z
    norm = np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    return z / norm if kind == "unit_l2" else z * np.minimum(1.0, radius / norm)


def traversal(
    model, entry: str, latent: str, z: np.ndarray, rows: dict[str, list[int]], base: np.ndarray, steps: int = 9
) -> np.ndarray:
    """Rows of decodings of ``base`` with the units of each row moved over mean ± 3σ of ``z``."""
    lat = model.spec.latents[latent]
    mean, std = z.mean(0), z.std(0)
    t = np.linspace(-3.0, 3.0, steps)
    codes = []
    for units in rows.values():
        block = np.repeat(base[None], steps, 0)
        for j in units:
            block[:, j] = mean[j] + t * std[j]
        codes.append(block)
    x = _decode(model, entry, latent, _project(np.concatenate(codes), lat.project, lat.radius))
    image = grid(x, ncol=steps)
    return _labelled(image, list(rows), x.shape[-2])


def interpolation(
    model, entry: str, latent: str, z: np.ndarray, images: np.ndarray | None, pairs: int = 6, steps: int = 8
) -> np.ndarray:
    """Strips from one code to another (straight lines, projected like the latent), with the
    two real images at the ends when the codes come from images."""
    lat = model.spec.latents[latent]
    rng = np.random.default_rng(model.spec.seed)
    idx = rng.choice(len(z), size=(min(pairs, len(z) // 2), 2), replace=False)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    path = np.concatenate([(1 - t) * z[a] + t * z[b] for a, b in idx])
    x = _decode(model, entry, latent, _project(path, lat.project, lat.radius)).reshape(len(idx), steps, -1)
    if images is not None and images[0].size == x.shape[-1]:
        ends = images.reshape(len(images), -1)
        x = np.concatenate([ends[idx[:, 0]][:, None], x, ends[idx[:, 1]][:, None]], 1)
    shape = _decode(model, entry, latent, z[:1]).shape[1:]
    return grid(x.reshape(-1, *shape), ncol=x.shape[1])


def _label_field(spec: Spec) -> str | None:
    """The first data field that is a class label (an integer field with `classes:`)."""
    return next((f for f in spec.data.fields if spec.infos[f].dtype == "int64" and spec.infos[f].classes), None)


def latent_scatter(z: np.ndarray, labels: np.ndarray, classes: int, label: str, path: str) -> None:
    """The 2-D codes ``z`` (N, 2) as points coloured by their class ``labels`` (N,)."""
    from latentspec._extras import require

    require("matplotlib", "plot", "the latent scatter (latentspec viz)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from latentspec_runtime._atomic import atomic_path

    fig, ax = plt.subplots(figsize=(5.6, 5.0))
    cmap = plt.get_cmap("tab10" if classes <= 10 else "tab20", classes)
    points = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap=cmap, vmin=-0.5, vmax=classes - 0.5, s=5, alpha=0.8)
    fig.colorbar(points, ax=ax, ticks=range(classes), label=label)
    ax.set_xlabel("z[0] (posterior mean)")
    ax.set_ylabel("z[1] (posterior mean)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def learning_curves(run: str, path: str) -> None:
    """One panel per term: the training value per epoch and the test value where measured."""
    from latentspec._extras import require

    require("matplotlib", "plot", "learning curves (latentspec viz)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from latentspec_runtime._atomic import atomic_path

    metrics = os.path.join(run, "metrics.jsonl")
    if not os.path.isfile(metrics):
        raise RunError(f"{run} has no metrics.jsonl to draw learning curves from")
    epochs = [r for r in read_rows(metrics) if r.get("kind") in ("epoch", "fit")]
    terms = list(dict.fromkeys(k for r in epochs for part in ("train", "test") for k in r.get(part, {})))
    if not terms:
        raise RunError(f"{metrics} has no epoch rows yet")
    cols = min(3, len(terms))
    nrows = -(-len(terms) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.0 * nrows), squeeze=False)
    stages = [(r["step"], r["stage"]) for i, r in enumerate(epochs) if i == 0 or r["stage"] != epochs[i - 1]["stage"]]
    for ax, term in zip(axes.flat, terms):
        for part, style in (("train", "-o"), ("test", "--s")):
            pts = [(r["step"], r[part][term]) for r in epochs if term in r.get(part, {})]
            if pts:
                ax.plot(*zip(*pts), style, markersize=3, label=part)
        if len(stages) > 1:
            for step, name in stages[1:]:
                ax.axvline(step, color="0.7", linewidth=0.8)
                ax.annotate(name, (step, 1), xycoords=("data", "axes fraction"), fontsize=7, va="top", color="0.4")
        ax.set_title(term)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(terms) :]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def viz_run(run: str, out: str, *, which: str = "last", max_units: int = 32, seed: int = 0) -> list[str]:
    """Write every picture that applies to the run into ``out``; the paths written."""
    from latentspec.data.pipeline import SplitData
    from latentspec.run import load_run
    from latentspec.train.pictures import manifold

    if max_units < 1:
        raise RunError(f"--units {max_units}: traverse at least one unit")
    spec, model = load_run(run, which=which)
    os.makedirs(out, exist_ok=True)
    written = []

    def save(name: str, image: np.ndarray) -> None:
        path = os.path.join(out, name)
        save_png(path, image)
        written.append(path)

    dec = _decoder(spec)
    if dec is not None:
        entry, latent = dec
        split = "test" if "test" in spec.data.split else "train"
        test = SplitData.build(spec, split)
        z, images = _codes(spec, model, latent, test)
        base = z[int(np.random.default_rng(seed).integers(len(z)))]
        order = np.argsort(-z.std(0))[:max_units]
        save("traversal-units.png", traversal(model, entry, latent, z, {f"z{j}": [int(j)] for j in order}, base))
        groups = spec.latents[latent].groups
        if groups:
            rows = {g: list(units) for g, units in groups.items()}
            rest = sorted(set(range(spec.latents[latent].dim)) - {u for us in groups.values() for u in us})
            if rest:
                rows["(rest)"] = rest
            save("traversal-groups.png", traversal(model, entry, latent, z, rows, base))
        m = manifold(model)
        if m is not None:
            save("manifold.png", grid(m, ncol=15))
        label = _label_field(spec)
        if z.shape[1] == 2 and images is not None and label is not None:
            path = os.path.join(out, "scatter.png")
            latent_scatter(z, test.fields[label].numpy(), spec.infos[label].classes, label, path)
            written.append(path)
        if len(z) >= 2:
            save("interpolation.png", interpolation(model, entry, latent, z, images))
    path = os.path.join(out, "curves.png")
    learning_curves(run, path)
    written.append(path)
    return written
