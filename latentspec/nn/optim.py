"""Optimizers by their torch name: the torch side of ``latentspec.components.optimizers``."""

from __future__ import annotations

from typing import Any

import torch

#: Optimizers whose fused kernel (one pass over all parameters, no per-tensor Python loop) is
#: the default: the same update as torch's per-tensor loop up to float rounding (tests/components/
#: test_fused_optim.py), 4-5x faster per step on CPU for the MLP VAE (benchmarks/bench_vae.py).
#: Not SGD (its fused CPU kernel is no faster than the loop) nor RMSprop (no fused kernel).
FUSED = frozenset({"Adam", "AdamW", "Adagrad"})


def fusable(param_groups: list[dict]) -> bool:
    """Whether torch's fused kernels take these parameters: dense floating-point tensors, all on
    one CPU or CUDA device."""
    params = [p for g in param_groups for p in g["params"]]
    devices = {p.device for p in params}
    return (
        bool(params)
        and len(devices) == 1
        and next(iter(devices)).type in ("cpu", "cuda")
        and all(p.is_floating_point() and p.layout == torch.strided for p in params)
    )


def optimizer(torch_name: str, param_groups: list[dict], kwargs: dict[str, Any]) -> torch.optim.Optimizer:
    """``torch.optim.<torch_name>(param_groups, **kwargs)``, fused where :data:`FUSED` says and
    the parameters allow (:func:`fusable`) unless ``kwargs`` chooses (``fused``/``foreach``)."""
    if torch_name in FUSED and "fused" not in kwargs and "foreach" not in kwargs and fusable(param_groups):
        kwargs = {**kwargs, "fused": True}
    return getattr(torch.optim, torch_name)(param_groups, **kwargs)
