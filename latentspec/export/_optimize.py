"""``optimize:`` entry points (GLO ``invert`` / ``inpaint``): one step's loss and gradient as an
ONNX graph, and the PyTorch reference of the runtime's optimisation loop.

The graph maps (z, *data) to (loss per example (B,), ∂Σloss/∂z (B, dim), *visible outputs).
``torch.export`` cannot export ``torch.func.grad`` directly, so the step is traced with
``make_fx`` (symbolic shapes, the generator's parameters closed over), with decompositions for
the backward ops that have no ONNX translation (convolution_backward: the input gradient only,
as a (transposed) convolution; replication_pad_backward: a matrix product), and the traced
GraphModule is exported like any entry.

Terms return the batch *mean* of a per-example loss. The per-example vector comes from running
each term with every full mean (``x.mean()``, ``F.*_loss(reduction="mean")``) turned into a mean
per example; this is exact for terms without cross-example interaction, which is checked on
example data against running the term on one-example slices.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode

from latentspec.compiler import CompiledModel
from latentspec.errors import ExportError
from latentspec.nn.modules import frozen, project_rows
from latentspec.spec._model import EntrySpec, TermSpec

aten = torch.ops.aten

BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
INIT_SCALE = 0.1


# -- decompositions ------------------------------------------------------------------------------


def _convolution_backward(
    grad_output, input, weight, bias_sizes, stride, padding, dilation, transposed, output_padding, groups, output_mask
):
    """The input gradient of a convolution: a transposed convolution with the same weight (its
    output_padding makes up the sizes the stride dropped); of a transposed convolution: a
    convolution. Weight and bias gradients are never needed (the parameters are frozen)."""
    if output_mask[1] or output_mask[2]:
        return NotImplemented
    if not output_mask[0]:
        return None, None, None
    nd = len(stride)
    if transposed:
        grad = aten.convolution.default(grad_output, weight, None, stride, padding, dilation, False, [0] * nd, groups)
    else:
        reached = [
            (grad_output.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (weight.shape[2 + i] - 1) + 1
            for i in range(nd)
        ]
        extra = [input.shape[2 + i] - reached[i] for i in range(nd)]
        grad = aten.convolution.default(grad_output, weight, None, stride, padding, dilation, True, extra, groups)
    return grad, None, None


def _replication_pad_backward(grad_output, input, padding):
    """Replication padding's gradient: each input row/column sums the padded rows/columns that
    copy it — a product with a 0/1 matrix per padded axis."""
    g = grad_output
    for k in range(len(padding) // 2):
        axis = g.ndim - 1 - k
        lo, hi = padding[2 * k], padding[2 * k + 1]
        n = input.shape[axis]
        source = torch.clamp(torch.arange(n + lo + hi, device=g.device) - lo, 0, n - 1)  # (n_padded,)
        gather = (torch.arange(n, device=g.device)[:, None] == source[None, :]).to(g.dtype)  # (n, n_padded)
        g = torch.movedim(torch.matmul(torch.movedim(g, axis, -1), gather.T), -1, axis)
    return g


def decompositions() -> dict:
    import torch._decomp

    table = dict(torch._decomp.core_aten_decompositions())
    table[aten.convolution_backward.default] = _convolution_backward
    for op in (aten.replication_pad1d_backward, aten.replication_pad2d_backward, aten.replication_pad3d_backward):
        table[op.default] = _replication_pad_backward
    return table


# -- per-example losses --------------------------------------------------------------------------


def _bce_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> tuple[Tensor, str]:
    """``F.binary_cross_entropy_with_logits`` per element, (1 − x)·ℓ + w_x·softplus(−ℓ), in ops the
    ONNX exporter translates, and its reduction. Under ``torch.func.grad`` ATen's composite kernel
    is traced as is, and it builds 1 − x as ``empty_permuted`` + ``full_like`` + in-place ops:
    ``aten.empty_permuted`` has no ONNX translation (a `bernoulli_nll` term in an `optimize:` entry
    failed to export)."""
    if size_average is not None or reduce is not None:
        reduction = torch.nn._reduction.legacy_get_string(size_average, reduce)
    softplus_neg = torch.clamp(-input, min=0) + torch.log1p(torch.exp(-torch.abs(input)))  # −log σ(ℓ), stable
    log_weight = 1.0 if pos_weight is None else (pos_weight - 1) * target + 1
    loss = input - input * target + log_weight * softplus_neg
    return (loss if weight is None else loss * weight), reduction


class _PerExample(TorchFunctionMode):
    """While a term runs: a mean over a whole (B, ...) tensor becomes its mean per example (B,);
    BCE with logits is written out (:func:`_bce_with_logits`) so that its gradient exports."""

    _LOSSES = frozenset(
        {
            F.cross_entropy,
            F.nll_loss,
            F.binary_cross_entropy,
            F.binary_cross_entropy_with_logits,
            F.mse_loss,
            F.l1_loss,
            F.smooth_l1_loss,
            F.huber_loss,
        }
    )

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if (
            func in (Tensor.mean, torch.mean)
            and len(args) == 1
            and not kwargs
            and isinstance(args[0], Tensor)
            and args[0].ndim >= 1
        ):
            x = args[0]
            return x.reshape(x.shape[0], -1).mean(1)
        if func is F.binary_cross_entropy_with_logits:
            x, reduction = _bce_with_logits(*args, **kwargs)
            if reduction == "mean":
                return x.reshape(x.shape[0], -1).mean(1)
            return x.sum() if reduction == "sum" else x
        if func in self._LOSSES and kwargs.get("reduction", "mean") == "mean":
            x = func(*args, **{**kwargs, "reduction": "none"})
            return x.reshape(x.shape[0], -1).mean(1)
        return func(*args, **kwargs)


def _weight(t: TermSpec) -> float:
    from latentspec.run import term_weight

    # a scheduled weight: its value at the end of training
    return term_weight(t, 10**9, 1e9)


def _fresh(name: str, taken: set[str]) -> str:
    while name in taken:
        name = f"{name}_"
    return name


class OptimizeGraph:
    """The pieces of one ``optimize:`` entry: its GraphModule, terms, variable and data inputs."""

    def __init__(self, model: CompiledModel, entry: EntrySpec) -> None:
        from latentspec.run import build_term

        spec = model.spec
        self.model, self.entry = model, entry
        self.gm, self.plan = model.entry(entry.name)
        self.variable = entry.optimize
        self.latent = spec.latents[self.variable]
        self.dim = self.latent.dim
        self.order = [ph.name for ph in self.plan.placeholders]
        self.data = [ph for ph in self.plan.placeholders if ph.kind != "variable"]
        self.data_names = [ph.name for ph in self.data]
        self.terms = [(t, build_term(spec, t).eval(), _weight(t)) for t in entry.terms]
        self.visible = [t for t in entry.outputs if t != self.variable]
        taken = set(spec.producers) | set(spec.infos) | set(self.order)
        self.loss_name = _fresh("loss", taken)
        self.grad_name = _fresh(f"grad_{self.variable}", taken)

    @property
    def input_names(self) -> list[str]:
        return [self.variable, *self.data_names]

    @property
    def output_names(self) -> list[str]:
        return [self.loss_name, self.grad_name, *self.visible]

    def outputs(self, z: Tensor, data: Sequence[Tensor]) -> dict[str, Tensor]:
        env = dict(zip(self.data_names, data))
        env[self.variable] = z
        return self.gm(*(env[n] for n in self.order))

    def losses(self, outs: dict[str, Tensor]) -> Tensor:
        """Per-example loss (B,): the weighted sum of the terms, each per example."""
        total = None
        for t, term, w in self.terms:
            with _PerExample():
                value = term(*(outs[x] for x in t.inputs))
            if value.ndim != 1:
                raise ExportError(
                    f"entry '{self.entry.name}': term '{t.name}' ({t.term}) does not reduce to a mean of "
                    "per-example losses, so its loss per example cannot be exported; use a per-example term"
                )
            total = w * value if total is None else total + w * value
        return total

    def step(self, z: Tensor, *data: Tensor) -> tuple[Tensor, ...]:
        """(loss (B,), gradient of the summed loss (B, dim), *visible outputs): what the ONNX graph computes."""

        def total(z):
            outs = self.outputs(z, data)
            losses = self.losses(outs)
            return losses.sum(), (losses, [outs[k] for k in self.visible])

        grad, (losses, visible) = torch.func.grad(total, has_aux=True)(z)
        return (losses, grad, *visible)

    # -- eager references (autograd; per-example losses from one-example slices) -------------

    def slice_losses(self, outs: dict[str, Tensor]) -> Tensor:
        """Per-example loss (B,) by running every term on one-example slices."""
        batch = next(iter(outs.values())).shape[0]
        rows = []
        for i in range(batch):
            total = 0.0
            for t, term, w in self.terms:
                total = total + w * term(*(outs[x][i : i + 1] for x in t.inputs))
            rows.append(torch.as_tensor(total).reshape(()))
        return torch.stack(rows)

    def gradient(self, z: Tensor, data: Sequence[Tensor]) -> Tensor:
        """∂(Σ_b loss_b)/∂z with autograd: the batch means times the batch size."""
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            outs = self.outputs(z, data)
            total = sum(w * term(*(outs[x] for x in t.inputs)) for t, term, w in self.terms) * z.shape[0]
            (grad,) = torch.autograd.grad(total, z)
        return grad

    def eager(self, z: Tensor, data: Sequence[Tensor]) -> list[Tensor]:
        """The graph's outputs, computed independently: slices for the losses, autograd for the gradient."""
        grad = self.gradient(z, data)
        with torch.no_grad():
            outs = self.outputs(z, data)
            losses = self.slice_losses(outs)
        return [losses, grad, *(outs[k] for k in self.visible)]

    def check_per_example(self, z: Tensor, data: Sequence[Tensor]) -> None:
        with torch.no_grad():
            outs = self.outputs(z, data)
            fast = self.losses(outs)
            slow = self.slice_losses(outs)
        if not torch.allclose(fast, slow, rtol=1e-4, atol=1e-5):
            names = ", ".join(f"'{t.name}' ({t.term})" for t, _, _ in self.terms)
            raise ExportError(
                f"entry '{self.entry.name}': the terms {names} are not means of independent per-example "
                f"losses (batch and one-example results differ by {float((fast - slow).abs().max()):.3g}); "
                "an optimize entry needs per-example terms"
            )

    def trace(self, z: Tensor, data: Sequence[Tensor]) -> torch.fx.GraphModule:
        from torch.fx.experimental.proxy_tensor import make_fx

        try:
            return make_fx(
                self.step,
                tracing_mode="symbolic",
                _allow_non_fake_inputs=True,
                decomposition_table=decompositions(),
            )(z, *data)
        except ExportError:
            raise
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ExportError(
                f"entry '{self.entry.name}': cannot trace the gradient of its terms ({type(exc).__name__}: {first})"
            ) from exc


# -- the optimize block and the reference loop ---------------------------------------------------


def optimize_block(og: OptimizeGraph) -> dict:
    """The manifest's ``optimize`` block for an entry."""
    entry, lat = og.entry, og.latent
    if lat.table:
        weight = og.model.module_of(og.variable).weight.detach().float()  # (size, dim)
        mean = project_rows(weight.mean(0, keepdim=True), lat.project, lat.radius)[0]
        init = {"kind": "mean", "value": [float(v) for v in mean.tolist()], "scale": INIT_SCALE}
    else:
        init = {"kind": "zeros", "value": None, "scale": INIT_SCALE}
    return {
        "variable": og.variable,
        "loss": og.loss_name,
        "gradient": og.grad_name,
        "dim": og.dim,
        "graph_outputs": list(og.visible),
        "steps": int(entry.steps),
        "lr": float(entry.lr),
        "optimizer": "adam",
        "betas": list(BETAS),
        "eps": ADAM_EPS,
        "project": lat.project,
        "radius": float(lat.radius),
        "init": init,
        "starts": int(entry.starts),
    }


def reference_optimize(
    og: OptimizeGraph, block: dict, data: Sequence[Tensor], *, steps: int, seed: int
) -> dict[str, Tensor]:
    """The runtime's optimisation loop (docs/bundle-format.md), in float32 PyTorch with autograd.

    Returns the entry's outputs (the variable's name gives the final variable) and ``loss``.
    """
    batch = data[0].shape[0]
    b1, b2 = block["betas"]
    lr, eps = block["lr"], block["eps"]
    init = block["init"]
    kind, radius = block["project"], block["radius"]
    best: dict[str, Tensor] | None = None
    for j in range(block["starts"]):
        rng = np.random.default_rng([seed, j])
        if init["kind"] == "zeros" or init.get("value") is None:
            z = torch.zeros(batch, og.dim)
        else:
            z = torch.tensor(init["value"], dtype=torch.float32)[None].repeat(batch, 1)
        if init["kind"] == "normal" or j > 0:
            noise = rng.standard_normal([batch, og.dim]).astype(np.float32)
            z = z + init["scale"] * torch.from_numpy(noise)
        z = project_rows(z, kind, radius)
        m = torch.zeros_like(z)
        v = torch.zeros_like(z)
        for t in range(1, steps + 1):
            g = og.gradient(z, data)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            z = z - lr * (m / (1 - b1**t)) / (torch.sqrt(v / (1 - b2**t)) + eps)
            z = project_rows(z, kind, radius)
        with torch.no_grad():
            outs = og.outputs(z, data)
            result = {k: outs[k] for k in og.visible}
            result["loss"] = og.slice_losses(outs)
        result[og.variable] = z
        result = {k: result[k] for k in [*og.entry.outputs, "loss"]}
        best = result if best is None else _keep_better(best, result)
    assert best is not None
    return best


def _keep_better(best: dict[str, Tensor], new: dict[str, Tensor]) -> dict[str, Tensor]:
    better = (new["loss"] < best["loss"]) | (torch.isnan(best["loss"]) & ~torch.isnan(new["loss"]))  # (B,)
    return {
        k: torch.where(better.reshape(better.shape + (1,) * (old.ndim - 1)), new[k], old) for k, old in best.items()
    }


def export_optimize_entry(model: CompiledModel, entry: EntrySpec, root: str, opset: int):
    """Trace, export and describe one optimize entry."""
    import os

    from latentspec.export._manifest import describe_input, describe_output
    from latentspec.export._onnx import Exported, batch_dims, example_batch, example_inputs, export_onnx, named_module

    t0 = time.perf_counter()
    og = OptimizeGraph(model, entry)
    batch = example_batch(og.plan.placeholders, (og.dim,))
    data = example_inputs(model, og.data, batch)
    z = project_rows(torch.randn(batch, og.dim, generator=torch.Generator().manual_seed(1)), og.latent.project, 1.0)
    with frozen(model):
        og.check_per_example(z, data)
        traced = og.trace(z, data)
        module = named_module(traced, og.input_names, f"{model.spec.name}_{entry.name}_step")
        with torch.no_grad():
            example = module(z, *data)
        file = f"{entry.name}.onnx"
        phs = [p for p in og.plan.placeholders if p.kind == "variable"] + og.data
        export_onnx(
            module,
            [z, *data],
            os.path.join(root, file),
            entry=entry.name,
            input_names=og.input_names,
            output_names=og.output_names,
            dynamic_shapes=batch_dims(phs, torch.export.Dim("batch")),
            opset=opset,
        )
    shapes = dict(zip(og.visible, (tuple(v.shape[1:]) for v in example[2:])))
    shapes[og.variable] = (og.dim,)
    block = optimize_block(og)
    manifest = {
        "kind": "optimize",
        "task": entry.kind,
        "file": file,
        "sha256": None,
        "opset": opset,
        "inputs": [describe_input(model.spec, entry, og.plan, ph) for ph in og.data],
        "outputs": [describe_output(model.spec, t, shapes[t]) for t in entry.outputs],
        "code": None,
        "optimize": block,
    }
    return Exported(
        entry.name,
        "optimize",
        file,
        module,
        og.plan,
        og.input_names,
        og.output_names,
        manifest,
        time.perf_counter() - t0,
        og,
    )
