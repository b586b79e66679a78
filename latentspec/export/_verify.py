"""``--verify``: every entry point in ONNX Runtime against eager PyTorch, then the finished bundle
through ``latentspec_runtime``.

Inputs: real rows of the test split (the train split without one) for data fields; seeded random
values for the rest (latents ~ N(0, 1), projected where the latent projects; noise from its
distribution; masks in {0, 1}; labels in their classes). A value passes when
|onnx − torch| ≤ TOLERANCE · max(1, |torch|): an absolute 1e-4 for images, codes and gradients,
relative for large values such as summed losses. Optimize entries are also run through the
runtime's loop and compared with the PyTorch reference loop (REFERENCE_STEPS steps).
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence

import numpy as np
import torch

from latentspec.compiler import CompiledModel
from latentspec.errors import ExportError
from latentspec.export._onnx import Exported
from latentspec.export._optimize import reference_optimize
from latentspec.nn.modules import project_rows

TOLERANCE = 1e-4
RUNTIME_TOLERANCE = 1e-3
BATCHES = (1, 64)
REFERENCE_STEPS = 20
REFERENCE_BATCH = 8
PROVIDER = "CPUExecutionProvider"


@dataclasses.dataclass
class Check:
    entry: str
    output: str
    batch: int
    diff: float
    ok: bool


def compare(reference, got, tolerance: float) -> tuple[float, bool]:
    """(max |got − reference|, whether every element is within tolerance · max(1, |reference|))."""
    ref = np.asarray(reference.detach() if isinstance(reference, torch.Tensor) else reference, dtype=np.float64)
    out = np.asarray(got, dtype=np.float64)
    if ref.shape != out.shape:
        return float("inf"), False
    if ref.size == 0:
        return 0.0, True
    both_nan = np.isnan(ref) & np.isnan(out)
    diff = np.where(both_nan, 0.0, np.abs(ref - out))
    ok = bool(np.all(diff <= tolerance * np.maximum(1.0, np.abs(np.nan_to_num(ref)))))
    worst = float(np.nanmax(np.where(np.isnan(diff), np.inf, diff)))
    return worst, ok


def table(checks: Sequence[Check], title: str) -> str:
    rows = [("entry", "output", "batch", "max abs diff", "")]
    rows += [(c.entry, c.output, str(c.batch), f"{c.diff:.3g}", "" if c.ok else "FAIL") for c in checks]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [title]
    for r in rows:
        lines.append("  " + "  ".join(r[i].ljust(widths[i]) for i in range(4)) + ("  " + r[4] if r[4] else ""))
    return "\n".join(lines)


class Inputs:
    """Verification inputs per entry and batch size, always the same for the same arguments."""

    def __init__(self, model: CompiledModel) -> None:
        self.model = model
        self.spec = model.spec
        self._data = None

    def _rows(self, field: str, batch: int) -> torch.Tensor:
        if self._data is None:
            from latentspec.data.pipeline import SplitData

            self._data = SplitData.build(self.spec, "test" if "test" in self.spec.data.split else "train")
        values = self._data.fields[field]
        reps = -(-batch // len(values))
        return torch.cat([values] * reps)[:batch] if reps > 1 else values[:batch]

    def latent(self, name: str, batch: int, g: torch.Generator) -> torch.Tensor:
        lat = self.spec.latents[name]
        return project_rows(torch.randn(batch, lat.dim, generator=g), lat.project, lat.radius)

    def make(self, ex: Exported, batch: int, steps: int | None = None, seed: int = 0) -> list[torch.Tensor]:
        """One tensor per ONNX input of ``ex``, in order."""
        g = torch.Generator().manual_seed(zlib.crc32(f"{ex.name}/{batch}/{seed}".encode()))
        described = {d["name"]: d for d in ex.manifest["inputs"]}
        by_name = {ph.name: ph for ph in ex.plan.placeholders}
        out = []
        for name in ex.input_names:
            ph = by_name[name]
            d = described.get(name, {})
            shape = (batch * ph.batch_factor, *(ph.shape or ()))
            if ph.kind == "steps":
                out.append(torch.tensor(d.get("default", 2) if steps is None else steps, dtype=torch.int64))
            elif ph.kind == "noise":
                draw = torch.rand if ph.distribution == "uniform" else torch.randn
                out.append(draw(shape, generator=g))
            elif ph.kind == "variable" or ph.tensor in self.spec.latents:
                out.append(self.latent(ph.tensor, batch, g))
            elif d.get("meaning") == "mask":
                out.append((torch.rand(shape, generator=g) < 0.5).float())
            elif ph.tensor in self.spec.data.fields:
                out.append(self._rows(ph.tensor, batch))
            elif ph.dtype == "int64":
                info = self.spec.infos.get(ph.tensor)
                high = info.classes if info is not None and info.classes else 2
                out.append(torch.randint(0, high, shape, generator=g))
            elif d.get("range") is not None:
                lo, hi = d["range"]
                out.append(lo + (hi - lo) * torch.rand(shape, generator=g))
            else:
                out.append(torch.randn(shape, generator=g))
        return out


def _session(path: str):
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError(
            "--verify runs the graphs in onnxruntime, which is not installed: pip install onnxruntime"
        ) from None

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(path, sess_options=options, providers=[PROVIDER])
    got = session.get_providers()
    if not got or got[0] != PROVIDER:
        raise ExportError(f"{path}: onnxruntime runs it on {got}, not {PROVIDER}; cannot verify on the CPU")
    return session


def _eager(ex: Exported, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    if ex.kind == "optimize":
        return ex.graph.eager(inputs[0], inputs[1:])
    with torch.no_grad():
        out = ex.module(*inputs)
    return list(out) if isinstance(out, tuple) else [out]


def _loop_initial(model: CompiledModel, ex: Exported, inputs: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    """{output: the initial value of its loop state} for loop outputs of the entry."""
    spec = model.spec
    found = {}
    for name in ex.plan.loops:
        node = spec.nodes[name]
        for out, state in zip(node.outputs, node.state):
            if out in ex.output_names:
                found[out] = node.state[state]
    if not found:
        return {}
    entry = spec.export[ex.name]
    gm, plan = model.graph(list(found.values()), entry.inputs, training=False, prior=entry.prior)
    env = dict(zip(ex.input_names, inputs))
    with torch.no_grad():
        values = gm(*(env[ph.name] for ph in plan.placeholders))
    values = values if isinstance(values, tuple) else (values,)
    return dict(zip(found, values))


def check_onnx(model: CompiledModel, root: str, exported: Sequence[Exported], inputs: Inputs) -> list[Check]:
    """ONNX Runtime vs eager PyTorch for every entry at every batch size in BATCHES."""
    import os

    checks = []
    for ex in exported:
        session = _session(os.path.join(root, ex.file))
        has_steps = any(ph.kind == "steps" for ph in ex.plan.placeholders)
        default = next((d.get("default") for d in ex.manifest["inputs"] if d["meaning"] == "iterations"), None)
        for batch in BATCHES:
            for steps in (0, default) if has_steps else (None,):
                args = inputs.make(ex, batch, steps)
                feed = {n: a.numpy() for n, a in zip(ex.input_names, args)}
                got = session.run(ex.output_names, feed)
                ref = _eager(ex, args)
                suffix = "" if steps is None else f" ({steps} steps)"
                for name, r, o in zip(ex.output_names, ref, got):
                    checks.append(Check(ex.name, name + suffix, batch, *compare(r, o, TOLERANCE)))
                if steps == 0:
                    for name, init in _loop_initial(model, ex, args).items():
                        o = got[ex.output_names.index(name)]
                        checks.append(
                            Check(ex.name, f"{name} (0 steps = initial)", batch, *compare(init, o, TOLERANCE))
                        )
    return checks


# -- the bundle through latentspec_runtime -------------------------------------------------------


def _import_runtime():
    try:
        import latentspec_runtime
    except ImportError:
        raise ExportError(
            "--verify loads the finished bundle with latentspec-runtime, which is not importable; "
            "install it: pip install ./runtime[cpu]"
        ) from None
    return latentspec_runtime


def _pick(inputs: list[dict], meanings: Sequence[str]) -> str | None:
    """The input the runtime's high-level methods treat as the main one (its `_pick_input`)."""
    for meaning in meanings:
        for d in inputs:
            if d["meaning"] == meaning:
                return d["name"]
    return next((d["name"] for d in inputs if d["meaning"] not in ("noise", "iterations")), None)


def _runtime_noise(inputs: list[dict], batch: int, seed: int) -> dict[str, np.ndarray]:
    """Noise as the runtime draws it: default_rng(seed), the noise inputs in manifest order."""
    rng = np.random.default_rng(seed)
    out = {}
    for d in inputs:
        if d["meaning"] == "noise":
            shape = tuple(batch if s == "batch" else s for s in d["shape"])
            if not all(isinstance(s, int) for s in shape):  # batch*k: the runtime cannot draw it either
                return {}
            values = rng.standard_normal(shape) if d["distribution"] == "normal" else rng.random(shape)
            out[d["name"]] = values.astype(np.float32)
    return out


def _as_dict(ex: Exported, out) -> dict[str, np.ndarray]:
    if isinstance(out, dict):
        return out
    return {ex.manifest["outputs"][0]["name"]: out}


def _runtime_task(bundle, ex: Exported) -> str | None:
    """The entry's task when the runtime's method for it runs this entry (else None: the entry
    is checked through ``bundle.run``)."""
    task = ex.manifest.get("task")
    return task if task and bundle.has_task(task) and bundle.entry_for(task) == ex.name else None


def _runtime_graph(bundle, ex: Exported, inputs: Inputs, batch: int) -> list[Check]:
    described = ex.manifest["inputs"]
    args = inputs.make(ex, batch)
    full = {n: a.numpy() for n, a in zip(ex.input_names, args)}
    seed = 0
    noise = _runtime_noise(described, batch, seed)
    full.update(noise)
    given = {d["name"]: full[d["name"]] for d in described if d["meaning"] not in ("noise", "iterations")}
    iterations = next((int(full[d["name"]]) for d in described if d["meaning"] == "iterations"), None)
    name, task = ex.name, _runtime_task(bundle, ex)
    plain = all(s == "batch" or isinstance(s, int) for d in described for s in d["shape"])
    if not plain:  # a batch*k axis: only the generic call takes it (noise given, not drawn)
        got = bundle.run(name, full)
    elif task == "sample":
        got = bundle.sample(batch, seed=seed, **given)
    elif task == "generate":
        got = bundle.generate(seed=seed, **given)
    elif task in ("decode", "encode", "swap", "refine"):
        main = _pick(described, ("latent", "value", "image") if task == "decode" else ("image", "value", "latent"))
        rest = {k: v for k, v in given.items() if k != main}
        if task == "refine":
            rest["iterations"] = iterations
        got = getattr(bundle, task)(given[main], seed=seed, **rest)
    else:
        got = bundle.run(name, full)
    got = _as_dict(ex, got)
    ref = _eager(ex, [torch.from_numpy(np.asarray(full[n])) for n in ex.input_names])
    return [
        Check(name, f"{out} (runtime)", batch, *compare(r, got[out], TOLERANCE)) for out, r in zip(ex.output_names, ref)
    ]


def _runtime_optimize(bundle, ex: Exported, inputs: Inputs) -> list[Check]:
    og, block = ex.graph, ex.manifest["optimize"]
    args = inputs.make(ex, REFERENCE_BATCH, seed=1)[1:]  # the data inputs (not the variable)
    given = {n: a.numpy() for n, a in zip(og.data_names, args)}
    described = ex.manifest["inputs"]
    seed = 0
    task = _runtime_task(bundle, ex)
    if task in ("invert", "inpaint"):
        steps = REFERENCE_STEPS
        main = _pick(described, ("image", "value", "latent"))
        rest = {k: v for k, v in given.items() if k != main}
        if task == "inpaint":
            mask = next((d["name"] for d in described if d["meaning"] == "mask"), None)
            if mask is None:
                got = bundle.run(ex.name, given)
                steps = block["steps"]
            else:
                mask_value = rest.pop(mask)
                got = bundle.inpaint(given[main], mask_value, steps=steps, seed=seed, **rest)
        else:
            got = bundle.invert(given[main], steps=steps, seed=seed, **rest)
    else:
        steps = block["steps"]
        got = bundle.run(ex.name, given)
    ref = reference_optimize(og, block, args, steps=steps, seed=seed)
    # The result (outputs and loss) must match; the variable itself is not compared: Adam's
    # first steps move every coordinate by ±lr whatever its gradient's size, so a coordinate
    # the loss barely depends on can take either sign from float32 rounding alone (seen: a
    # trained GLO code off by 0.02 while its image matched to 1e-5).
    return [
        Check(ex.name, f"{k} (runtime loop, {steps} steps)", REFERENCE_BATCH, *compare(v, got[k], RUNTIME_TOLERANCE))
        for k, v in ref.items()
        if k in got and k != block["variable"]
    ]


def check_runtime(root: str, exported: Sequence[Exported], inputs: Inputs) -> list[Check]:
    """Load the finished bundle with latentspec_runtime and run every entry through it."""
    runtime = _import_runtime()
    try:
        bundle = runtime.Bundle.load(root, device="cpu")
    except runtime.BundleError as exc:
        raise ExportError(f"the exported bundle does not load in latentspec-runtime: {exc}") from exc
    checks = []
    for ex in exported:
        try:
            if ex.kind == "optimize":
                checks += _runtime_optimize(bundle, ex, inputs)
            else:
                checks += _runtime_graph(bundle, ex, inputs, BATCHES[-1])
        except (runtime.BundleError, runtime.InputError) as exc:
            raise ExportError(f"entry '{ex.name}': latentspec-runtime refuses the exported bundle: {exc}") from exc
    return checks


def verify(model: CompiledModel, root: str, exported: Sequence[Exported], *, runtime: bool = True) -> dict:
    """Check every entry; raise ExportError with the table when one differs; else the
    manifest's ``verified`` block."""
    inputs = Inputs(model)
    checks = check_onnx(model, root, exported, inputs)
    bad = [c for c in checks if not c.ok]
    if bad:
        raise ExportError(
            table(bad, f"verification failed: ONNX Runtime differs from PyTorch (tolerance {TOLERANCE:g}·max(1, |x|)):")
        )
    runtime_checks = check_runtime(root, exported, inputs) if runtime else []
    bad = [c for c in runtime_checks if not c.ok]
    if bad:
        raise ExportError(table(bad, "verification failed: latentspec-runtime differs from PyTorch:"))
    verified = {}
    for ex in exported:
        mine = [c for c in checks if c.entry == ex.name]
        block = {
            "max_abs_diff": max((c.diff for c in mine), default=0.0),
            "batches": list(BATCHES),
            "provider": PROVIDER,
        }
        rt = [c for c in runtime_checks if c.entry == ex.name]
        if rt:
            block["runtime_max_abs_diff"] = max(c.diff for c in rt)
        if ex.kind == "optimize" and rt:
            block["reference_steps"] = (
                REFERENCE_STEPS
                if ex.manifest.get("task") in ("invert", "inpaint")
                else ex.manifest["optimize"]["steps"]
            )
        verified[ex.name] = block
    return verified
