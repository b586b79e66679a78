"""PyTorch-side artifacts: ``model.pt2`` (torch.export) and legacy TorchScript.

``model.pt2`` holds the *training graph* (data fields and explicit noise → every tensor the
objective uses, as a dict), exported in eval mode with a dynamic batch axis: one program that
covers the whole model, loaded back with ``torch.export.load(path).module()``. Its inputs are
the training graph's placeholders in order (``manifest["formats"]["pt2"]["inputs"]``).

``torchscript/<entry>.pt`` (only with ``--format torchscript``) traces each entry of kind
"graph" with ``torch.jit.trace``. TorchScript is deprecated; loop entries (a ``while_loop``) and
optimize entries cannot be traced and are left out.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import torch

from latentspec.compiler import CompiledModel
from latentspec.errors import ExportError
from latentspec.export._onnx import Exported, batch_dims, example_batch, named_module, quiet
from latentspec_runtime._atomic import atomic_path


def _example(model: CompiledModel, placeholders, batch: int) -> list[torch.Tensor]:
    """Inputs for the training graph: fields within their ranges, indices within their tables."""
    spec = model.spec
    g = torch.Generator().manual_seed(0)
    tables = [
        model.module_of(name).weight.shape[0]
        for name, lat in spec.latents.items()
        if lat.table and any(ph.tensor == lat.index for ph in placeholders)
    ]
    out = []
    for ph in placeholders:
        shape = (batch * ph.batch_factor, *(ph.shape or ()))
        info = spec.infos.get(ph.tensor)
        if ph.dtype == "int64":
            high = info.classes if info is not None and info.classes else (min(tables) if tables else 2)
            out.append(torch.randint(0, high, shape, generator=g))
        elif ph.kind == "noise" and ph.distribution == "uniform":
            out.append(torch.rand(shape, generator=g))
        elif ph.kind == "noise" or info is None or info.range is None:
            out.append(torch.randn(shape, generator=g))
        else:
            lo, hi = info.range
            out.append(lo + (hi - lo) * torch.rand(shape, generator=g))
    return out


def _max_diff(a, b) -> float:
    la, lb = torch.utils._pytree.tree_leaves(a), torch.utils._pytree.tree_leaves(b)
    return max((float((x - y).abs().max()) for x, y in zip(la, lb) if x.numel()), default=0.0)


def export_pt2(model: CompiledModel, root: str) -> dict:
    """Write ``model.pt2``; check that it loads back and matches eager. Returns its manifest block."""
    gm, plan = model.training_graph
    phs = list(plan.placeholders)
    names = [ph.name for ph in phs]
    module = named_module(gm, names, f"{model.spec.name}_training")
    args = _example(model, phs, example_batch(phs))
    dynamic = batch_dims(phs, torch.export.Dim("batch"))
    path = os.path.join(root, "model.pt2")
    try:
        with quiet(), torch.no_grad(), atomic_path(path) as tmp:
            program = torch.export.export(module, tuple(args), dynamic_shapes=dynamic)
            torch.export.save(program, tmp)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ExportError(
            f"model.pt2: torch.export of the training graph failed ({type(exc).__name__}: {first})"
        ) from exc
    with quiet(), torch.no_grad():
        loaded = torch.export.load(path).module()
        small = _example(model, phs, 2)
        diff = _max_diff(loaded(*small), module(*small))
    if not diff <= 1e-5:
        raise ExportError(f"model.pt2: the program loaded back differs from the model by {diff:.3g}")
    return {
        "file": "model.pt2",
        "graph": "training",
        "inputs": [{"name": ph.name, "dtype": ph.dtype, "shape": ["batch", *(ph.shape or ())]} for ph in phs],
        "outputs": list(plan.outputs),
    }


def export_torchscript(model: CompiledModel, root: str, exported: Sequence[Exported]) -> list[str]:
    """Write ``torchscript/<entry>.pt`` for the traceable graph entries; return the entries written."""
    from latentspec.export._onnx import example_inputs

    folder = os.path.join(root, "torchscript")
    written = []
    for ex in exported:
        if ex.kind != "graph" or ex.plan.loops:
            continue
        os.makedirs(folder, exist_ok=True)
        args = example_inputs(model, ex.plan.placeholders, example_batch(ex.plan.placeholders))
        path = os.path.join(folder, f"{ex.name}.pt")
        try:
            with warnings.catch_warnings(), atomic_path(path) as tmp:
                warnings.simplefilter("ignore")  # TorchScript is deprecated and says so on every call
                traced = torch.jit.trace(ex.module, tuple(args), check_trace=False)
                torch.jit.save(traced, tmp)
        except Exception as exc:
            raise ExportError(f"entry '{ex.name}': torch.jit.trace failed ({type(exc).__name__}: {exc})") from exc
        written.append(ex.name)
    return written
