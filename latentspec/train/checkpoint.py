"""Checkpoints: safetensors weights + JSON state, written atomically (temp + rename).

A checkpoint folder holds ``weights.safetensors`` (the model), ``optimizer.safetensors`` (the
optimizer's tensors) and ``state.json`` (step counters, RNG states, the optimizer's
non-tensor state, metrics). No pickle anywhere.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile

import torch
from safetensors.torch import load_file, save_file

from latentspec.errors import RunError


def atomic_write_text(path: str, text: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, state = {}, {}
    for pid, st in sd["state"].items():
        state[str(pid)] = {}
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
                state[str(pid)][k] = {"tensor": f"{pid}.{k}"}
            else:
                state[str(pid)][k] = v
    return tensors, {"state": state, "param_groups": sd["param_groups"]}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state = {}
    for pid, st in meta["state"].items():
        state[int(pid)] = {
            k: (tensors[v["tensor"]] if isinstance(v, dict) and "tensor" in v else v) for k, v in st.items()
        }
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state(g: torch.Generator) -> str:
    return base64.b64encode(g.get_state().numpy().tobytes()).decode()


def set_rng_state(g: torch.Generator, s: str) -> None:
    import numpy as np

    g.set_state(torch.from_numpy(np.frombuffer(base64.b64decode(s), dtype=np.uint8).copy()))


def save(folder: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, state: dict) -> None:
    """Write a checkpoint folder atomically: build it beside, then swap it in."""
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-ckpt-")
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, os.path.join(tmp, "weights.safetensors"))
    if optimizer is not None:
        tensors, meta = _flatten_optimizer(optimizer)
        save_file(tensors, os.path.join(tmp, "optimizer.safetensors"))
        state = {**state, "optimizer": meta}
    with open(os.path.join(tmp, "state.json"), "w") as f:
        json.dump(state, f)
        f.flush()
        os.fsync(f.fileno())
    old = folder + ".old"
    if os.path.exists(folder):
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def load_state(folder: str) -> dict:
    path = os.path.join(folder, "state.json")
    if not os.path.isfile(path):
        # an interrupted swap leaves the previous checkpoint at <folder>.old
        if os.path.isfile(os.path.join(folder + ".old", "state.json")):
            os.replace(folder + ".old", folder)
        else:
            raise RunError(f"no checkpoint at {folder}")
    with open(path) as f:
        return json.load(f)


def load_weights(folder: str, model: torch.nn.Module) -> None:
    try:
        weights = load_file(os.path.join(folder, "weights.safetensors"))
    except (OSError, Exception) as exc:
        raise RunError(f"cannot read {folder}/weights.safetensors: {exc}") from None
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise RunError(
            f"checkpoint {folder} does not fit the spec's model (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )


def load_optimizer(folder: str, optimizer: torch.optim.Optimizer, meta: dict) -> None:
    tensors = load_file(os.path.join(folder, "optimizer.safetensors"))
    optimizer.load_state_dict(_unflatten_optimizer(tensors, meta))
