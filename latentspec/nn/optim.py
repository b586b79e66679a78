"""Optimizers by their torch name: the torch side of ``latentspec.components.optimizers``."""

from __future__ import annotations

from collections.abc import Callable
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


def rowwise(torch_name: str, param_groups: list[dict], kwargs: dict[str, Any]) -> torch.optim.Optimizer | None:
    """A row-wise (lazy) optimizer for latent tables whose gradients are sparse (``embedding(...,
    sparse=True)``): each step reads and writes only the rows in the batch, O(batch × dim)
    instead of O(size × dim). Adam → ``torch.optim.SparseAdam`` (Adam's update on the batch's
    rows; a row's moments stand still while it is out of the batch), SGD without momentum →
    SGD, Adagrad → Adagrad (both already touch only the gradient's rows). None when the setting
    has no row-wise form (weight decay or momentum move every row every step; RMSprop): such a
    table updates densely, as before.
    """
    settings = [{**kwargs, **{k: v for k, v in g.items() if k not in ("params", "nodes")}} for g in param_groups]
    if any(s.get("weight_decay", 0.0) for s in settings) or torch_name not in ("Adam", "AdamW", "SGD", "Adagrad"):
        return None
    if torch_name == "SGD" and any(s.get("momentum", 0.0) for s in settings):
        return None
    groups = [{k: v for k, v in g.items() if k in ("params", "nodes", "lr")} for g in param_groups]
    kwargs = {**kwargs, **({"betas": tuple(kwargs["betas"])} if "betas" in kwargs else {})}
    if torch_name in ("Adam", "AdamW"):
        return torch.optim.SparseAdam(groups, **{k: v for k, v in kwargs.items() if k in ("lr", "betas", "eps")})
    keep = ("lr",) if torch_name == "SGD" else ("lr", "eps")
    return getattr(torch.optim, torch_name)(groups, **{k: v for k, v in kwargs.items() if k in keep}, foreach=False)


class Optimizers:
    """Several optimizers stepped as one (the dense parameters' and the latent tables' row-wise
    one): their parameter groups in order, one state dict whose parameter ids run on from one
    optimizer to the next, and each group tagged with its optimizer's class (a checkpoint of
    another layout is refused on load)."""

    def __init__(self, parts: list[torch.optim.Optimizer]) -> None:
        self.parts = parts

    @property
    def param_groups(self) -> list[dict]:
        return [g for opt in self.parts for g in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.parts:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        # Adagrad builds its sparse update with sparse_coo_tensor: checks off, said explicitly
        with torch.sparse.check_sparse_tensor_invariants(enable=False):
            for opt in self.parts:
                opt.step()

    def state_dict(self) -> dict:
        state, groups, offset = {}, [], 0
        for opt in self.parts:
            sd = opt.state_dict()
            state.update({offset + pid: st for pid, st in sd["state"].items()})
            for g in sd["param_groups"]:
                groups.append({**g, "params": [offset + p for p in g["params"]], "optimizer": type(opt).__name__})
            offset += sum(len(g["params"]) for g in sd["param_groups"])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, sd: dict) -> None:
        groups, at, offset = sd["param_groups"], 0, 0
        for opt in self.parts:
            mine = groups[at : at + len(opt.param_groups)]
            kinds = {g.get("optimizer") for g in mine}
            if len(mine) != len(opt.param_groups) or kinds != {type(opt).__name__}:
                raise ValueError(f"the saved parameter groups are not those of {type(opt).__name__}")
            n = sum(len(g["params"]) for g in mine)
            ids = range(offset, offset + n)
            opt.load_state_dict(
                {
                    "state": {pid - offset: st for pid, st in sd["state"].items() if pid in ids},
                    "param_groups": [
                        {
                            **{k: v for k, v in g.items() if k != "optimizer"},
                            "params": [p - offset for p in g["params"]],
                        }
                        for g in mine
                    ],
                }
            )
            at, offset = at + len(mine), offset + n
        if at != len(groups):
            raise ValueError(f"the checkpoint has {len(groups)} parameter groups, this run {at}")


def grad_norm_(
    params: list[torch.Tensor],
    clip: float | None,
    reduce_sparse: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """The total gradient norm of ``params`` (clipped to ``clip`` in place when given). Sparse
    gradients (latent tables' rows) are coalesced in place first, so that a row in the batch
    twice counts once, with its summed gradient. ``reduce_sparse``: applied to the sparse
    gradients' sum of squares (under torchrun: summed over the ranks that own the rows)."""
    sparse = [p for p in params if p.grad is not None and p.grad.is_sparse]
    if not sparse:
        if clip:
            return torch.nn.utils.clip_grad_norm_(params, clip)
        return torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    dense = [p for p in params if p.grad is not None and not p.grad.is_sparse]
    for p in sparse:
        p.grad = p.grad.coalesce()
    norms = [p.grad._values().norm() for p in sparse]
    if reduce_sparse is not None:
        norms = [reduce_sparse(torch.stack(norms).square().sum()).sqrt()]
    if dense:
        norms.append(torch.nn.utils.get_total_norm([p.grad for p in dense]))
    total = torch.linalg.vector_norm(torch.stack(norms))
    if clip:
        if dense:
            torch.nn.utils.clip_grads_with_norm_(dense, clip, total)
        coef = (clip / (total + 1e-6)).clamp(max=1.0)
        for p in sparse:
            p.grad._values().mul_(coef)
    return total
