"""Batch-1 latency: the torch-free runtime (ONNX Runtime) against eager PyTorch, VAE decoder.

Exports the VAE spec's `decode` entry (weights as compiled from the spec's seed: speed does not
depend on training), then times `Bundle.decode(z)` and the eager entry GraphModule under
`torch.no_grad()` on the same inputs, alternating blocks of calls so machine load hits both alike.

    python benchmarks/bench_runtime.py [--calls 2000] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch

from latentspec.compiler import compile_spec
from latentspec.export import export_model
from latentspec.spec import load_spec
from latentspec_runtime import Bundle

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--blocks", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = load_spec(os.path.join(ROOT, "specs", "vae_mnist.yaml"))
    model = compile_spec(spec).eval()
    gm, _ = model.entry("decode")
    with tempfile.TemporaryDirectory() as d:
        export_model(spec, model, os.path.join(d, "b"), formats=["onnx"], verify=False, entries=["decode"])
        bundle = Bundle.load(os.path.join(d, "b"), device="cpu", threads=args.threads)
        z = np.random.default_rng(0).standard_normal((args.batch, 20)).astype(np.float32)
        zt = torch.from_numpy(z)
        with torch.no_grad():
            np.testing.assert_allclose(bundle.decode(z), gm(zt).numpy(), atol=1e-5)
        per = args.calls // args.blocks
        times = {"runtime": 0.0, "torch": 0.0}
        with torch.no_grad():
            for _ in range(args.blocks):
                t0 = time.perf_counter()
                for _ in range(per):
                    bundle.decode(z)
                times["runtime"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                for _ in range(per):
                    gm(zt)
                times["torch"] += time.perf_counter() - t0
    us = {k: v / (per * args.blocks) * 1e6 for k, v in times.items()}
    print(
        json.dumps(
            {
                "batch": args.batch,
                "threads": args.threads,
                "us_per_call": us,
                "speedup": us["torch"] / us["runtime"],
                "providers": bundle.providers,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
