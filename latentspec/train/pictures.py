"""Pictures of a model: reconstructions beside inputs, prior samples, the 2-D latent manifold."""

from __future__ import annotations

import numpy as np
import torch

from latentspec.compiler import CompiledModel
from latentspec.errors import RunError
from latentspec.spec import EntrySpec, Spec
from latentspec.train.images import grid, save_png

#: a conditional sample grid draws one row per class up to this many classes
MAX_CLASS_ROWS = 32


def image_field(spec: Spec) -> str | None:
    for f in spec.data.fields:
        info = spec.infos[f]
        if info.dtype == "float32" and info.shape is not None and len(info.shape) == 3:
            return f
    return None


def _to_image(spec: Spec, tensor: str, value: torch.Tensor) -> torch.Tensor:
    info = spec.infos.get(tensor)
    if (
        info is not None
        and info.range is None
        and any(t.distribution == "bernoulli" and t.role("reconstruction") == tensor for t in spec.objective.values())
    ):
        return torch.sigmoid(value)  # logits of a Bernoulli likelihood
    return value


@torch.no_grad()
def run_entry(
    model: CompiledModel, entry: str, inputs: dict[str, torch.Tensor], n: int, seed: int = 0, steps: int | None = None
) -> tuple:
    """Run an entry graph in PyTorch, drawing its noise inputs from a seeded generator."""
    gm, plan = model.entry(entry)
    g = torch.Generator().manual_seed(seed)
    noise = iter(model.draw_noise(plan, n, g))
    args = []
    for ph in plan.placeholders:
        if ph.kind == "noise":
            args.append(next(noise))
        elif ph.kind == "steps":
            e = model.spec.export[entry]
            args.append(torch.tensor(steps if steps is not None else (e.iterations if e.iterations is not None else 2)))
        else:
            args.append(inputs[ph.tensor])
    out = gm(*args)
    return out if isinstance(out, tuple) else (out,)


def sampling_entry(spec: Spec) -> EntrySpec:
    """The entry that samples: the one of kind ``sample``, else one with no inputs."""
    e = spec.entry_of_kind("sample")
    if e is None:
        e = next((s for s in spec.export.values() if not s.inputs and not s.optimize), None)
    if e is None:
        raise RunError(
            "this spec has no entry point that samples from the prior (an export entry with `in: []`, e.g. `sample`)"
        )
    return e


def sample_images(
    model: CompiledModel, n: int, seed: int = 0, inputs: dict[str, float] | None = None, entry: str | None = None
) -> np.ndarray:
    """``n`` samples of the sampling entry (or of ``entry``); its other inputs (e.g. a class
    ``y``) are scalars in ``inputs``, the same for all ``n``."""
    spec = model.spec
    e = sampling_entry(spec) if entry is None else spec.export[entry]
    inputs = inputs or {}
    missing = [t for t in e.inputs if t not in inputs]
    if missing:
        raise RunError(
            f"entry '{e.name}' samples given {', '.join(missing)}: pass "
            + " ".join(f"--input {t}=VALUE" for t in missing)
        )
    feed = {}
    for t in e.inputs:
        info = spec.infos[t]
        dtype = torch.int64 if info.dtype == "int64" else torch.float32
        feed[t] = torch.full((n, *(info.shape or ())), inputs[t], dtype=dtype)
    (x,) = run_entry(model, e.name, feed, n, seed)[:1]
    return x.float().numpy()


def sample_blocks(
    model: CompiledModel,
    n: int,
    seed: int = 0,
    inputs: dict[str, float] | None = None,
    per_class: int | None = None,
) -> list[tuple[str, np.ndarray]]:
    """Labelled blocks of samples. A conditional sampler whose one missing input is a class
    label draws a block per class (``per_class`` each, default ``n``), all with the same noise:
    each column is one code under every label. Otherwise one block of ``n`` named by the inputs."""
    from latentspec.run._inputs import class_label, label_inputs

    spec = model.spec
    e = sampling_entry(spec)
    inputs = dict(inputs or {})
    missing = [t for t in e.inputs if t not in inputs]
    labels = label_inputs(spec, e)
    if len(missing) == 1 and missing[0] in labels and labels[missing[0]] <= MAX_CLASS_ROWS:
        t = missing[0]
        k = per_class or n
        return [(class_label(spec, t, c), sample_images(model, k, seed, {**inputs, t: c})) for c in range(labels[t])]
    named = ", ".join(class_label(spec, t, int(v)) if t in labels else f"{t}={v:g}" for t, v in inputs.items())
    return [(named or "samples", sample_images(model, n, seed, inputs))]


@torch.no_grad()
def manifold(model: CompiledModel, steps: int = 15) -> np.ndarray | None:
    """Kingma & Welling's figure: the decoder over a grid of Gaussian quantiles of a 2-D latent."""
    spec = model.spec
    e = spec.entry_of_kind("decode")
    if e is None or len(e.inputs) != 1 or e.inputs[0] not in spec.latents or spec.latents[e.inputs[0]].dim != 2:
        return None
    q = torch.linspace(0.05, 0.95, steps)
    v = torch.erfinv(2 * q - 1) * 2**0.5
    zz = torch.stack(torch.meshgrid(v, v.flip(0), indexing="xy"), -1).reshape(-1, 2)
    (x,) = run_entry(model, e.name, {e.inputs[0]: zz}, len(zz))[:1]
    return x.numpy()


def _recon_term(spec: Spec, x_name: str | None) -> tuple[str, str] | None:
    """(term, tensor): the reconstruction of the image, as a term declares it (its
    "reconstruction" of "target")."""
    return next(
        (
            (name, r)
            for name, t in spec.objective.items()
            if x_name
            and t.role("target") == x_name
            and (r := t.role("reconstruction")) is not None
            and spec.infos.get(r, None)
            and spec.infos[r].shape is not None
            and np.prod(spec.infos[r].shape) == np.prod(spec.infos[x_name].shape)
        ),
        None,
    )


def inversions(spec: Spec, model: CompiledModel, batch: dict) -> tuple[str, np.ndarray] | None:
    """(data field, images): the `invert` entry's fit of the rows in ``batch`` (the optimisation
    the runtime runs, in PyTorch), or None when the spec has no such entry over data fields."""
    from latentspec.train.amortisation import _Inversion

    e = spec.entry_of_kind("invert")
    if e is None or not e.optimize or any(t not in batch for t in e.inputs):
        return None
    inv = _Inversion(spec, model, e.name)
    device = next(iter(batch.values())).device
    inv.terms = [(t, term.to(device), w) for t, term, w in inv.terms]  # built on the CPU
    if inv.recon is None:
        return None
    n = len(batch[inv.data])
    z = inv.optimize(inv.start(n), batch)
    with torch.no_grad():
        return inv.data, inv.outputs(z, batch)[inv.recon].float().cpu().numpy()


@torch.no_grad()
def epoch_blocks(trainer, n: int = 16) -> list[tuple[str, np.ndarray]]:
    """The labelled rows of an epoch's picture: inputs and their reconstructions (of training
    rows when the reconstruction comes from a latent table, GLO), inversions of test rows through
    the `invert` entry, and prior samples."""
    from latentspec.data.pipeline import block_size
    from latentspec.train.collapse import eval_rows, forward_rows
    from latentspec.train.trainer import held_out_terms

    spec, model = trainer.spec, trainer.model
    blocks: list[tuple[str, np.ndarray]] = []
    x_name = image_field(spec)
    found = _recon_term(spec, x_name)
    if found is not None:
        term, recon = found
        on_test = trainer.test_data is not None and bool(held_out_terms(spec, [term]))
        data = trainer.test_data if on_test else trainer.train_data
        # evenly spaced examples: splits keep the dataset's order, which may be sorted by class;
        # whole fixed-factor blocks for a training graph that clamps latents (DC-IGN)
        block = block_size(spec)
        batch = eval_rows(data, n, block=block)
        gm, plan = model.graph([recon], training=True)
        g = torch.Generator().manual_seed(0)
        outs = forward_rows(gm, lambda b: trainer._args(plan, b, g), batch, block)
        batch, r = {f: v[:n] for f, v in batch.items()}, outs[recon][:n]
        xr = _to_image(spec, recon, r).reshape(batch[x_name].shape)
        tag = "" if on_test or trainer.test_data is None else "train "
        blocks += [(f"{tag}input", batch[x_name].numpy()), (f"{tag}reconstruction", xr.float().cpu().numpy())]
    if trainer.test_data is not None:
        batch = {f: v.to(trainer.device) for f, v in eval_rows(trainer.test_data, n).items()}
        inv = inversions(spec, model, batch)
        if inv is not None:
            if not blocks or blocks[0][0] != "input":  # the test rows are not shown above yet
                blocks.append(("test input", batch[inv[0]].cpu().numpy()))
            blocks.append(("inversion", inv[1]))
    try:
        blocks += sample_blocks(model, 2 * n, per_class=n)
    except (RunError, KeyError):
        pass
    return blocks


@torch.no_grad()
def epoch_samples(trainer, path: str, n: int = 16) -> None:
    from latentspec.train.images import labelled_grid

    model = trainer.model
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        blocks = epoch_blocks(trainer, n)
    finally:
        for m, mode in modes.items():
            m.training = mode
    if blocks:
        shape = blocks[0][1].shape[1:]
        blocks = [(label, r.reshape(len(r), *shape)) for label, r in blocks if np.prod(r.shape[1:]) == np.prod(shape)]
        save_png(path, labelled_grid(blocks, ncol=n))
    m = manifold(model)
    if m is not None:
        save_png(path.replace(".png", "-manifold.png"), grid(m, ncol=15))
