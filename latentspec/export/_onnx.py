"""One single-file ONNX graph per entry point (torch.onnx, dynamo exporter).

An entry's GraphModule takes the plan's placeholders positionally; it is wrapped in a module
whose ``forward`` parameters carry the placeholder names, so ``dynamic_shapes`` (keyed by
parameter name) and ``input_names`` line up, and exported with a dynamic batch axis.
"""

from __future__ import annotations

import contextlib
import dataclasses
import keyword
import logging
import os
import warnings
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from latentspec.compiler import CompiledModel
from latentspec.errors import ExportError
from latentspec.export._manifest import code_output, describe_input, describe_output
from latentspec.graph import Placeholder, Plan
from latentspec.spec._model import EntrySpec
from latentspec_runtime._atomic import atomic_path

# Run onnxscript's graph optimizer on each export (constant folding, dead code): a little time,
# smaller graphs.
OPTIMIZE = True


@dataclasses.dataclass
class Exported:
    """An exported entry point: what was written, and the eager module it was written from."""

    name: str
    kind: str  # "graph" | "optimize"
    file: str  # relative to the bundle
    module: nn.Module  # eager: takes input_names positionally, returns output_names in order
    plan: Plan
    input_names: list[str]  # the ONNX graph inputs, in order
    output_names: list[str]  # the ONNX graph outputs, in order
    manifest: dict  # the manifest entry (without sha256 until the bundle is hashed)
    seconds: float = 0.0
    graph: object = None  # optimize entries: their OptimizeGraph


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the exporter's harmless chatter: its warnings (deprecations inside torch/onnxscript,
    "torchvision is not installed") and its progress logging."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def param_names(names: Sequence[str]) -> list[str]:
    """Python parameter names for graph input names (the names themselves where they can be)."""
    out = []
    for i, n in enumerate(names):
        ok = n.isidentifier() and not keyword.iskeyword(n) and n != "self" and n not in out
        out.append(n if ok else f"input_{i}")
    return out


def named_module(inner: nn.Module, names: Sequence[str], cls_name: str = "Entry") -> nn.Module:
    """A module whose ``forward(self, <names>)`` calls ``inner`` with those arguments in order."""
    params = param_names(names)
    src = f"def forward(self, {', '.join(params)}):\n    return self.inner({', '.join(params)})\n"
    scope: dict = {}
    exec(compile(src, f"<latentspec export {cls_name}>", "exec"), scope)
    cls = type(cls_name if cls_name.isidentifier() else "Entry", (nn.Module,), {"forward": scope["forward"]})
    module = cls()
    module.inner = inner
    return module.eval()


def example_batch(placeholders: Sequence[Placeholder], extra_dims: Sequence[int] = ()) -> int:
    """A batch size for tracing that equals no other dimension of the inputs (so a tracer cannot
    mistake the batch axis for a fixed one, or tie it to one)."""
    taken = {d for ph in placeholders for d in (ph.shape or ())} | set(extra_dims)
    return next(b for b in (3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37) if b not in taken)


def batch_dims(placeholders: Sequence[Placeholder], batch: torch.export.Dim) -> dict[str, dict | None]:
    """``dynamic_shapes`` keyed by forward parameter name: dim 0 is the batch (times the
    placeholder's batch factor); 0-d inputs (``steps``) have none."""
    names = param_names([ph.name for ph in placeholders])
    out: dict[str, dict | None] = {}
    for n, ph in zip(names, placeholders):
        if ph.kind == "steps":
            out[n] = None
        else:
            out[n] = {0: batch if ph.batch_factor == 1 else batch * ph.batch_factor}
    return out


def example_inputs(model: CompiledModel, placeholders: Sequence[Placeholder], batch: int) -> list:
    """Tracing inputs: values of the right shape and dtype (their values do not matter)."""
    g = torch.Generator().manual_seed(0)
    spec = model.spec
    out = []
    for ph in placeholders:
        if ph.kind == "steps":
            out.append(torch.tensor(2, dtype=torch.int64))
            continue
        shape = (batch * ph.batch_factor, *(ph.shape or ()))
        if ph.dtype == "int64":
            info = spec.infos.get(ph.tensor)
            high = info.classes if info is not None and info.classes else 2
            out.append(torch.randint(0, high, shape, generator=g))
        else:
            out.append(torch.rand(shape, generator=g))
    return out


def _opset_of(model) -> int | None:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def export_onnx(
    module: nn.Module,
    args: Sequence[torch.Tensor],
    path: str,
    *,
    entry: str,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_shapes: dict,
    opset: int,
) -> None:
    """Export ``module`` to one self-contained ONNX file at ``path`` and check it: the opset
    asked for, ``onnx.checker`` (full check), and the graph's input/output names."""
    import onnx

    try:
        with quiet():
            program = torch.onnx.export(
                module,
                tuple(args),
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_shapes=dynamic_shapes,
                opset_version=opset,
                dynamo=True,
                verbose=False,
                optimize=OPTIMIZE,
            )
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ExportError(
            f"entry '{entry}': torch.onnx.export failed ({type(exc).__name__}: {first}); "
            "run with --debug for the traceback"
        ) from exc
    with atomic_path(path) as tmp, quiet():
        program.save(tmp, external_data=False)
    m = onnx.load(path)
    got = _opset_of(m)
    if got != opset:
        raise ExportError(
            f"entry '{entry}': torch.onnx could not write this graph in ONNX opset {opset} (it wrote opset "
            f"{got}: an operator has no conversion); use --opset {got}"
        )
    try:
        onnx.checker.check_model(m, full_check=True)
    except Exception as exc:
        raise ExportError(f"entry '{entry}': the exported ONNX graph fails onnx.checker: {exc}") from exc
    ins = [i.name for i in m.graph.input]
    outs = [o.name for o in m.graph.output]
    if ins != list(input_names) or outs != list(output_names):
        raise ExportError(
            f"entry '{entry}': the ONNX graph has inputs {ins} and outputs {outs}; "
            f"expected {list(input_names)} and {list(output_names)}"
        )


def export_graph_entry(model: CompiledModel, entry: EntrySpec, root: str, opset: int) -> Exported:
    """An ordinary entry point: its GraphModule, exported as it is."""
    import time

    t0 = time.perf_counter()
    gm, plan = model.entry(entry.name)
    phs = list(plan.placeholders)
    names = [ph.name for ph in phs]
    module = named_module(gm, names, f"{model.spec.name}_{entry.name}")
    batch = example_batch(phs)
    args = example_inputs(model, phs, batch)
    with torch.no_grad():
        out = module(*args)
    outs = out if isinstance(out, tuple) else (out,)
    file = f"{entry.name}.onnx"
    dim = torch.export.Dim("batch")
    export_onnx(
        module,
        args,
        os.path.join(root, file),
        entry=entry.name,
        input_names=names,
        output_names=list(entry.outputs),
        dynamic_shapes=batch_dims(phs, dim),
        opset=opset,
    )
    outputs = [
        describe_output(
            model.spec,
            t,
            tuple(v.shape[1:]),
            "int64" if v.dtype == torch.int64 else "float32",
            max(1, v.shape[0] // batch) if v.ndim else 1,
        )
        for t, v in zip(entry.outputs, outs)
    ]
    manifest = {
        "kind": "graph",
        "task": entry.kind,
        "file": file,
        "sha256": None,
        "opset": opset,
        "inputs": [describe_input(model.spec, entry, plan, ph) for ph in phs],
        "outputs": outputs,
        "code": code_output(model.spec, entry),
        "optimize": None,
    }
    return Exported(
        entry.name,
        "graph",
        file,
        module,
        plan,
        names,
        list(entry.outputs),
        manifest,
        time.perf_counter() - t0,
    )
