"""Pictures of a model: reconstructions beside inputs, prior samples, the 2-D latent manifold."""

from __future__ import annotations

import numpy as np
import torch

from latentspec.compiler import CompiledModel
from latentspec.errors import RunError
from latentspec.spec import Spec
from latentspec.train.images import grid, save_png


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
        and any(t.term == "bernoulli_nll" and t.inputs[0] == tensor for t in spec.objective.values())
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


def sample_images(model: CompiledModel, n: int, seed: int = 0) -> np.ndarray:
    spec = model.spec
    entry = (
        "sample"
        if "sample" in spec.export
        else next((e for e, s in spec.export.items() if not s.inputs and not s.optimize), None)
    )
    if entry is None:
        raise RunError(
            "this spec has no entry point that samples from the prior (an export entry with `in: []`, e.g. `sample`)"
        )
    (x,) = run_entry(model, entry, {}, n, seed)[:1]
    return x.float().numpy()


@torch.no_grad()
def manifold(model: CompiledModel, steps: int = 15) -> np.ndarray | None:
    """Kingma & Welling's figure: the decoder over a grid of Gaussian quantiles of a 2-D latent."""
    spec = model.spec
    e = spec.export.get("decode")
    if e is None or len(e.inputs) != 1 or e.inputs[0] not in spec.latents or spec.latents[e.inputs[0]].dim != 2:
        return None
    q = torch.linspace(0.05, 0.95, steps)
    v = torch.erfinv(2 * q - 1) * 2**0.5
    zz = torch.stack(torch.meshgrid(v, v.flip(0), indexing="xy"), -1).reshape(-1, 2)
    (x,) = run_entry(model, "decode", {e.inputs[0]: zz}, len(zz))[:1]
    return x.numpy()


@torch.no_grad()
def epoch_samples(trainer, path: str, n: int = 16) -> None:
    spec, model = trainer.spec, trainer.model
    model.eval()
    rows = []
    x_name = image_field(spec)
    recon = next(
        (
            t.inputs[0]
            for t in spec.objective.values()
            if x_name
            and len(t.inputs) >= 2
            and t.inputs[1] == x_name
            and spec.infos.get(t.inputs[0], None)
            and spec.infos[t.inputs[0]].shape is not None
            and np.prod(spec.infos[t.inputs[0]].shape) == np.prod(spec.infos[x_name].shape)
        ),
        None,
    )
    data = trainer.test_data or trainer.train_data
    if recon is not None:
        gm, plan = model.graph([recon], training=True)
        # evenly spaced examples: splits keep the dataset's order, which may be sorted by class
        batch = {f: t[np.linspace(0, len(t) - 1, n).astype(np.int64)] for f, t in data.fields.items()}
        outs = gm(*trainer._args(plan, batch, torch.Generator().manual_seed(0)))
        xr = _to_image(spec, recon, outs[recon]).reshape(batch[x_name].shape)
        rows += [batch[x_name].numpy(), xr.float().cpu().numpy()]
    try:
        rows.append(sample_images(model, 2 * n))
    except (RunError, KeyError):
        pass
    model.train()
    if rows:
        shape = rows[0].shape[1:]
        rows = [r.reshape(len(r), *shape) for r in rows if np.prod(r.shape[1:]) == np.prod(shape)]
        save_png(path, grid(np.concatenate(rows), ncol=n))
    m = manifold(model)
    if m is not None:
        save_png(path.replace(".png", "-manifold.png"), grid(m, ncol=15))
