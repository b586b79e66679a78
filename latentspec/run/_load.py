"""``load_run``: a run directory's resolved spec and trained model."""

from __future__ import annotations

import os

import torch

from latentspec.compiler import CompiledModel, compile_spec
from latentspec.compiler._compile import table_key
from latentspec.errors import RunError
from latentspec.run import checkpoint as ckpt
from latentspec.spec import Spec, load_spec


def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda when torch sees a GPU, else cpu; ``cuda`` without one is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RunError("--device cuda: torch sees no CUDA device on this machine")
    return torch.device(device)


def table_sizes_of(spec: Spec, folder: str) -> dict[str, int]:
    """Rows of each latent table, read from checkpoint ``folder``'s weights (no data is loaded)."""
    tables = [name for name, lat in spec.latents.items() if lat.table]
    if not tables:
        return {}
    from safetensors import SafetensorError, safe_open

    path = os.path.join(folder, "weights.safetensors")
    try:
        with safe_open(path, framework="pt") as f:
            keys = set(f.keys())
            missing = [name for name in tables if table_key(name) not in keys]
            if missing:
                raise RunError(f"{path} has no codes for latent table '{missing[0]}'; was it trained from this spec?")
            return {name: int(f.get_slice(table_key(name)).get_shape()[0]) for name in tables}
    except (OSError, SafetensorError) as exc:
        raise RunError(f"{path}: cannot read the checkpoint's weights ({exc})") from None


def load_run(
    run: str, *, device: str = "cpu", which: str = "last", allow_python: bool = False
) -> tuple[Spec, CompiledModel]:
    """The spec and trained model of a run directory (checkpoint ``which``: last | best)."""
    spec_path = os.path.join(run, "spec.yaml")
    if not os.path.isfile(spec_path):
        raise RunError(
            f"{run} is not a run directory (no spec.yaml); train one with `latentspec train SPEC --out {run}`"
        )
    spec = load_spec(spec_path)
    folder = os.path.join(run, "checkpoints", which)
    ckpt.load_state(folder)  # checks the tensor files' hashes first
    model = compile_spec(spec, allow_python=allow_python, table_sizes=table_sizes_of(spec, folder))
    model = model.to(resolve_device(device))
    ckpt.load_weights(folder, model)
    model.eval()
    return spec, model
