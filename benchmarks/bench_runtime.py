"""Latency and throughput: the torch-free runtime (ONNX Runtime) against eager PyTorch and
``torch.compile``, for ``encode``, ``decode`` and ``reconstruct`` of the MLP VAE
(specs/vae_mnist.yaml) and the conv VAE (specs/conv_vae_mnist.yaml), at batch 1, 16 and 256.

Weights are as compiled from each spec's seed (speed does not depend on training). Each call is
timed on its own; contenders run in alternating blocks on the same inputs (the order rotates
every round) so that machine load hits all alike. Reported: p50 and p99 latency per call,
throughput (items/s from the mean latency), and the ratios of eager and compiled p50 to the
runtime's. The runtime side is the user's call, ``Bundle.decode(z)`` etc., input checks included;
``reconstruct`` draws its posterior noise in every contender (NumPy in the runtime, torch.randn
in PyTorch). A second table times onnxruntime session-option variants on the raw session
(decode, batch 1): the evidence for ``latentspec_runtime._bundle.SESSION_OPTIONS``.

    python benchmarks/bench_runtime.py [--threads 1] [--json benchmarks/results/bench_runtime.json]
    python benchmarks/bench_runtime.py --quick   # MLP only, batch 1 and 16, no torch.compile
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _machine import machine, write_result

from latentspec.compiler import compile_spec
from latentspec.export import export_model
from latentspec.spec import load_spec
from latentspec_runtime import Bundle
from latentspec_runtime._bundle import SESSION_OPTIONS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {
    "mlp_vae": ("vae_mnist.yaml", ["export.reconstruct={in: [x], out: [x_mean]}"]),
    "conv_vae": ("conv_vae_mnist.yaml", []),
}
ENTRIES = ("encode", "decode", "reconstruct")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def interleave(contenders: dict[str, Callable[[], object]], rounds: int, calls: int) -> dict[str, list[float]]:
    """Per-call seconds of each contender: ``rounds`` rounds of ``calls`` calls each, the order of
    contenders rotating every round."""
    names = list(contenders)
    for fn in contenders.values():  # warm-up: first-call allocations, lazy sessions, compiles
        for _ in range(3):
            fn()
    times: dict[str, list[float]] = {k: [] for k in names}
    clock = time.perf_counter
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for k in order:
            fn, out = contenders[k], times[k]
            for _ in range(calls):
                t0 = clock()
                fn()
                out.append(clock() - t0)
    return times


def summarise(times: list[float], batch: int) -> dict[str, float]:
    return {
        "p50_us": percentile(times, 50) * 1e6,
        "p99_us": percentile(times, 99) * 1e6,
        "items_per_s": batch / statistics.fmean(times),
        "calls": len(times),
    }


def entry_inputs(model, entry: str, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The entry's non-noise inputs, as the runtime method takes them."""
    _, plan = model.entry(entry)
    out = {}
    for ph in plan.placeholders:
        if ph.kind == "noise":
            continue
        shape = (batch, *ph.shape)
        out[ph.name] = (rng.random(shape) if entry != "decode" else rng.standard_normal(shape)).astype(np.float32)
    return out


def first(out: object) -> torch.Tensor:
    """The first output of an entry GraphModule (a tensor, a tuple or a dict of them)."""
    if isinstance(out, dict):
        return next(iter(out.values()))
    if isinstance(out, (tuple, list)):
        return out[0]
    return out


def eager_call(gm, plan, inputs: dict[str, np.ndarray], batch: int, device: str = "cpu") -> Callable[[], object]:
    """The entry GraphModule on the same inputs, noise drawn with torch.randn per call. On CUDA
    a call is host to host, like the runtime's: inputs copied in, the first output copied out."""
    fixed = {k: torch.from_numpy(v) for k, v in inputs.items()}
    noise = [(i, ph.shape) for i, ph in enumerate(plan.placeholders) if ph.kind == "noise"]
    base = [fixed.get(ph.name) for ph in plan.placeholders]

    def call():
        args = list(base)
        for i, shape in noise:
            args[i] = torch.randn(batch, *shape)
        with torch.inference_mode():
            return gm(*args)

    def call_cuda():
        args = [None if a is None else a.to(device, non_blocking=True) for a in base]
        for i, shape in noise:
            args[i] = torch.randn(batch, *shape, device=device)
        with torch.inference_mode():
            return first(gm(*args)).cpu()

    return call if device == "cpu" else call_cuda


def bench_entries(args, tmp: str) -> list[dict]:
    rows = []
    batches = [1, 16] if args.quick else [1, 16, 256]
    models = ["mlp_vae"] if args.quick else list(MODELS)
    for mname in models:
        file, overrides = MODELS[mname]
        spec = load_spec(os.path.join(ROOT, "specs", file), overrides)
        model = compile_spec(spec).eval()
        out = os.path.join(tmp, mname)
        export_model(spec, model, out, formats=["onnx"], verify=False, entries=list(ENTRIES))
        bundle = Bundle.load(out, device=args.device, threads=args.threads)
        if args.device == "cuda" and bundle.providers[0] != "CUDAExecutionProvider":  # session.get_providers()
            raise SystemExit(f"bench_runtime: onnxruntime runs on {bundle.providers}, not CUDA")
        model.to(args.device)
        for entry in ENTRIES:
            gm, plan = model.entry(entry)
            compiled = None if args.quick else torch.compile(gm, dynamic=False)
            method = getattr(bundle, entry)
            for batch in batches:
                inputs = entry_inputs(model, entry, batch, np.random.default_rng(batch))
                (main,) = inputs.values()
                contenders: dict[str, Callable[[], object]] = {
                    "runtime": lambda method=method, main=main: method(main),
                    "eager": eager_call(gm, plan, inputs, batch, args.device),
                }
                if compiled is not None:
                    contenders["compiled"] = eager_call(compiled, plan, inputs, batch, args.device)
                if args.device == "cuda" and entry != "reconstruct":  # the runtime binds IO on CUDA; without:
                    session = bundle._entries[bundle.entry_for(entry)].session
                    contenders["runtime_no_io_binding"] = lambda s=session, f=inputs: s.run(None, f)
                if entry != "reconstruct":  # deterministic entries: all agree before timing
                    with torch.inference_mode():
                        want = first(gm(*(torch.from_numpy(v).to(args.device) for v in inputs.values()))).cpu()
                    got = method(main)
                    got = got if isinstance(got, np.ndarray) else next(iter(got.values()))
                    np.testing.assert_allclose(got, want.detach().numpy(), atol=1e-4, rtol=1e-4)
                calls = max(args.min_calls, args.calls // max(1, batch // 4))
                times = interleave(contenders, args.rounds, max(1, calls // args.rounds))
                stats = {k: summarise(v, batch) for k, v in times.items()}
                row = {"model": mname, "entry": entry, "batch": batch, **{k: stats[k] for k in stats}}
                row["eager_over_runtime_p50"] = stats["eager"]["p50_us"] / stats["runtime"]["p50_us"]
                if "compiled" in stats:
                    row["compiled_over_runtime_p50"] = stats["compiled"]["p50_us"] / stats["runtime"]["p50_us"]
                rows.append(row)
                print(
                    f"{mname:9s} {entry:12s} batch {batch:4d}  runtime p50 {stats['runtime']['p50_us']:8.1f} us"
                    f"  eager {stats['eager']['p50_us']:8.1f} us  ratio {row['eager_over_runtime_p50']:.2f}x"
                    + (f"  compiled {row['compiled_over_runtime_p50']:.2f}x" if "compiled" in stats else ""),
                    file=sys.stderr,
                )
    return rows


def bench_session_options(args, tmp: str) -> dict:
    """Raw-session decode latency (batch 1) under option variants, and the per-call paths."""
    import onnxruntime as ort

    spec = load_spec(os.path.join(ROOT, "specs", "vae_mnist.yaml"))
    model = compile_spec(spec).eval()
    out = os.path.join(tmp, "options")
    export_model(spec, model, out, formats=["onnx"], verify=False, entries=["decode"])
    path = os.path.join(out, "decode.onnx")
    bundle = Bundle.load(out, device="cpu", threads=args.threads)
    z = np.random.default_rng(0).standard_normal((1, 20)).astype(np.float32)
    names = [o for o in bundle.run("decode", z=z)]

    def session(**changes) -> object:
        o = ort.SessionOptions()
        o.log_severity_level = 3
        o.intra_op_num_threads = args.threads
        for k, v in changes.items():
            if k.startswith("config:"):
                o.add_session_config_entry(k[7:], v)
            else:
                setattr(o, k, v)
        return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])

    variants = {
        "onnxruntime defaults": session(),
        "graph optimisation basic": session(graph_optimization_level=ort.GraphOptimizationLevel.ORT_ENABLE_BASIC),
        "graph optimisation off": session(graph_optimization_level=ort.GraphOptimizationLevel.ORT_DISABLE_ALL),
        "parallel execution": session(execution_mode=ort.ExecutionMode.ORT_PARALLEL),
        "memory pattern off": session(enable_mem_pattern=False),
        "CPU arena off": session(enable_cpu_mem_arena=False),
        "no spinning": session(**{"config:session.intra_op.allow_spinning": "0"}),
    }
    feed = {"z": z}
    contenders: dict[str, Callable[[], object]] = {k: (lambda s=s: s.run(names, feed)) for k, s in variants.items()}
    base = variants["onnxruntime defaults"]
    value = ort.OrtValue.ortvalue_from_numpy(z)
    contenders["run_with_ort_values"] = lambda: base.run_with_ort_values(names, {"z": value})
    binding = base.io_binding()
    result = np.empty((1, 1, 28, 28), np.float32)
    binding.bind_cpu_input("z", z)
    binding.bind_output(names[0], "cpu", 0, np.float32, result.shape, result.ctypes.data)
    contenders["IO binding, preallocated output"] = lambda: base.run_with_iobinding(binding)
    contenders["Bundle.run (checks + SESSION_OPTIONS)"] = lambda: bundle.run("decode", z=z)
    contenders["Bundle.decode (method)"] = lambda: bundle.decode(z)
    times = interleave(contenders, args.rounds, max(1, args.calls // args.rounds))
    stats = {k: summarise(v, 1) for k, v in times.items()}
    ref = stats["onnxruntime defaults"]["p50_us"]
    for s in stats.values():
        s["vs_defaults"] = ref / s["p50_us"]
    return {"entry": "decode", "model": "mlp_vae", "batch": 1, "variants": stats, "chosen": SESSION_OPTIONS}


def ort_profile(args, tmp: str, calls: int) -> list[dict]:
    """onnxruntime's own profile of ``decode`` at batch 1 per model: the time per call inside
    the graph's kernels, against the whole ``Bundle.decode`` call. Where kernels are most of the
    call, the wrapper has nothing left to win and the ratio to eager is set by the kernels."""
    import onnxruntime as ort

    rows = []
    models = ["mlp_vae"] if args.quick else list(MODELS)
    for mname in models:
        spec = load_spec(os.path.join(ROOT, "specs", MODELS[mname][0]))
        model = compile_spec(spec).eval()
        out = os.path.join(tmp, f"profile_{mname}")
        export_model(spec, model, out, formats=["onnx"], verify=False, entries=["decode"])
        bundle = Bundle.load(out, device="cpu", threads=args.threads)
        _, plan = model.entry("decode")
        (ph,) = plan.placeholders
        z = np.random.default_rng(0).standard_normal((1, *ph.shape)).astype(np.float32)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, f"ort_{mname}")
        options.log_severity_level = 3
        session = ort.InferenceSession(os.path.join(out, "decode.onnx"), options, providers=["CPUExecutionProvider"])
        for _ in range(calls):
            session.run(None, {ph.name: z})
        with open(session.end_profiling()) as f:
            trace = json.load(f)
        runs = [e["dur"] for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run"]
        durations: dict[str, list[float]] = {}
        for e in trace:
            if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
                durations.setdefault(e.get("args", {}).get("op_name", "?"), []).append(e["dur"])
        n = max(len(runs), 1)
        # medians (a loaded machine pre-empts some runs) times how often the op runs per call
        kernels = {op: float(np.median(d)) * len(d) / n for op, d in durations.items()}
        times = interleave({"bundle": lambda b=bundle, z=z: b.decode(z)}, 3, max(1, calls // 3))["bundle"]
        kernel_us = sum(kernels.values())
        rows.append(
            {
                "model": mname,
                "entry": "decode",
                "batch": 1,
                "model_run_us_median": float(np.median(runs)) if runs else None,
                "kernel_us_per_call": kernel_us,
                "kernel_us_by_op": dict(sorted(kernels.items(), key=lambda kv: -kv[1])),
                "bundle_decode_p50_us": percentile(times, 50) * 1e6,
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="MLP only, batch 1 and 16, no torch.compile, few calls")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads for both onnxruntime and torch")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cuda: onnxruntime-gpu and torch on CUDA")
    ap.add_argument("--calls", type=int, default=2000, help="calls per contender at batch 1 (fewer at larger)")
    ap.add_argument("--min-calls", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--json", default=os.path.join(ROOT, "benchmarks", "results", "bench_runtime.json"))
    args = ap.parse_args()
    if args.quick:
        args.calls, args.min_calls, args.rounds = 60, 20, 3
    torch.set_num_threads(args.threads)
    before = machine()
    with tempfile.TemporaryDirectory() as tmp:
        rows = bench_entries(args, tmp)
        options = bench_session_options(args, tmp) if args.device == "cpu" else None
        profile = ort_profile(args, tmp, 60 if args.quick else 600) if args.device == "cpu" else None
    result = {
        "benchmark": "bench_runtime",
        "command": "python benchmarks/bench_runtime.py " + " ".join(sys.argv[1:]),
        "quick": args.quick,
        "threads": args.threads,
        "device": args.device,
        "machine": machine(before),
        "rows": rows,
        "session_options": options,
        "ort_profile": profile,
    }
    write_result(args.json, result)
    print(json.dumps({"rows": len(rows), "json": args.json}))


if __name__ == "__main__":
    main()
