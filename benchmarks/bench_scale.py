"""Latent tables at scale: the trainer's step time and peak memory against the table's size.

A GLO model (a table of N codes of dimension 64 on the unit sphere, an MLP generator 64-64-16,
squared error, Adam, batch 128) on N random 16-dimensional rows, for N from 10^4 to 10^6. Each
(N, mode) runs in a fresh process, so its peak RSS is its own: ``rows`` (the default: the
table's lookups give sparse gradients, lazy Adam updates and projects only the batch's rows)
against ``dense`` (``train.table_updates: dense``: Adam over the whole table every step, the
plain optimizer's behaviour). Steps are timed in blocks; the median block of the best of
``--rounds`` passes over every (N, mode) is quoted (load from other processes only ever slows a
run down). Also the time to write one checkpoint (the whole table and its Adam moments, once per
epoch), and ``torch.profiler``'s top ops of the row-wise step at the largest N.

    python benchmarks/bench_scale.py [--sizes 10000 100000 1000000] [--json PATH]
    python benchmarks/bench_scale.py --quick   # N = 1,000 and 10,000, few steps
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DIM, FEATURES, BATCH = 64, 16, 128

SPEC = """\
latentspec: 1
name: glo_scale
seed: 0
data:
  dataset: {{npz: data.npz}}
  split: {{train: {n}}}
  fields:
    x: {{from: x, shape: [{features}]}}
    i: {{from: index}}
  batch: {batch}
latents:
  z: {{dim: {dim}, table: {{index: i}}, project: unit_l2, init: normal}}
nodes:
  gen: {{module: mlp, in: z, out: x_hat, hidden: [64], shape: [{features}]}}
objective:
  rec: {{term: mse, in: [x_hat, x]}}
train:
  optimizer: {{name: adam, groups: {{z: {{lr: 1.0e-2}}}}}}
  epochs: 1
  eval_every: 0
  table_updates: {mode}
"""


def peak_rss_mb() -> float:
    """This process's peak resident set size (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(n: int, mode: str, blocks: int, steps: int, profile: bool, threads: int) -> dict:
    """One (N, mode) in this process: median step time over blocks, checkpoint time, peak RSS."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)

    from latentspec.spec import load_spec
    from latentspec.train.trainer import Trainer

    with tempfile.TemporaryDirectory() as d:
        rng = np.random.default_rng(0)
        np.savez(os.path.join(d, "data.npz"), x=rng.random((n, FEATURES), dtype=np.float32))
        spec_path = os.path.join(d, "spec.yaml")
        with open(spec_path, "w") as f:
            f.write(SPEC.format(n=n, features=FEATURES, batch=BATCH, dim=DIM, mode=mode))
        spec = load_spec(spec_path)
        rss_built = None
        trainer = Trainer(spec, os.path.join(d, "run"), device="cpu", quiet=True)
        stage = spec.train.stages[0]
        forward, plan, opt, lrs = trainer.begin_stage(stage)
        # enough batches for every block without reuse; random rows, as in an epoch
        need = (blocks * steps + 3) * BATCH
        order = torch.from_numpy(np.random.default_rng(1).permutation(n)[: min(n, need)])
        x, i = trainer.train_data.fields["x"], trainer.train_data.fields["i"]
        batches = [
            {"x": x[order[k : k + BATCH]], "i": i[order[k : k + BATCH]]}
            for k in range(0, len(order) - BATCH + 1, BATCH)
        ]
        rss_built = peak_rss_mb()

        def step(k: int) -> None:
            trainer.step(stage, forward, plan, opt, lrs, batches[k % len(batches)], k, 0.0)

        for k in range(3):  # warm-up: the optimizer's state, first-call allocations
            step(k)
        per_step = []
        k = 3
        for _ in range(blocks):
            t0 = time.perf_counter()
            for _ in range(steps):
                step(k)
                k += 1
            per_step.append((time.perf_counter() - t0) / steps)
        out = {
            "n": n,
            "mode": mode,
            "optimizer": [type(p).__name__ for p in getattr(opt, "parts", [opt])],
            "step_ms": 1e3 * statistics.median(per_step),
            "step_ms_blocks": [1e3 * s for s in per_step],
            "rss_after_build_mb": rss_built,
        }
        out["rss_after_steps_mb"] = peak_rss_mb()
        t0 = time.perf_counter()
        trainer._checkpoint(opt, None)
        trainer._writer.wait()  # written in the background when small: time the whole write
        out["checkpoint_s"] = time.perf_counter() - t0
        if profile:
            from torch.profiler import ProfilerActivity
            from torch.profiler import profile as torch_profile

            with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(steps):
                    step(k)
                    k += 1
            events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
            total = sum(e.self_cpu_time_total for e in events) or 1.0
            out["profile_top_ops"] = [
                {
                    "op": e.key,
                    "calls_per_step": e.count / steps,
                    "self_ms_per_step": e.self_cpu_time_total / steps / 1e3,
                    "share": e.self_cpu_time_total / total,
                }
                for e in events[:8]
            ]
        out["peak_rss_mb"] = peak_rss_mb()
        out["torch_threads"] = torch.get_num_threads()
    return out


def run_child(n: int, mode: str, blocks: int, steps: int, profile: bool, threads: int) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", str(n), mode, "--blocks", str(blocks)]
    cmd += ["--steps", str(steps), "--threads", str(threads)] + (["--profile"] if profile else [])
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=3600)
    if r.returncode != 0:
        raise SystemExit(f"bench_scale: N={n} {mode} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--blocks", type=int, default=7)
    ap.add_argument("--steps", type=int, default=10, help="steps per block")
    ap.add_argument("--rounds", type=int, default=3, help="passes over every (N, mode); the best is quoted")
    ap.add_argument("--quick", action="store_true", help="N = 1,000 and 10,000, few steps, one round")
    ap.add_argument("--json", default=os.path.join(HERE, "results", "bench_scale.json"))
    ap.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (1: steadiest on a shared, loaded machine)"
    )
    ap.add_argument("--child", nargs=2, metavar=("N", "MODE"), help=argparse.SUPPRESS)
    ap.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        sys.path.insert(0, ROOT)
        print(json.dumps(child(int(args.child[0]), args.child[1], args.blocks, args.steps, args.profile, args.threads)))
        return
    if args.quick:
        args.sizes, args.blocks, args.steps, args.rounds = [1_000, 10_000], 2, 2, 1
    sys.path.insert(0, HERE)
    from _machine import machine, write_result

    before = machine()
    by: dict[tuple, dict] = {}
    for rnd in range(args.rounds):
        for n in args.sizes:
            for mode in ("rows", "dense"):
                profile = rnd == 0 and mode == "rows" and n == max(args.sizes)
                r = run_child(n, mode, args.blocks, args.steps, profile=profile, threads=args.threads)
                print(
                    f"round {rnd + 1} N={n:>9,} {mode:5s} {r['step_ms']:8.2f} ms/step  "
                    f"peak RSS {r['peak_rss_mb']:7.0f} MB",
                    file=sys.stderr,
                )
                old = by.get((n, mode))
                if old is None:
                    by[(n, mode)] = {**r, "step_ms_rounds": [r["step_ms"]]}
                else:  # the best round's timing (load only ever slows a run down)
                    rounds = [*old["step_ms_rounds"], r["step_ms"]]
                    best = r if r["step_ms"] < old["step_ms"] else old
                    by[(n, mode)] = {**best, "step_ms_rounds": rounds}
                    if "profile_top_ops" in old:
                        by[(n, mode)]["profile_top_ops"] = old["profile_top_ops"]
    rows = [by[(n, mode)] for n in args.sizes for mode in ("rows", "dense")]
    small, large = min(args.sizes), max(args.sizes)
    summary = {mode: by[(large, mode)]["step_ms"] / by[(small, mode)]["step_ms"] for mode in ("rows", "dense")}
    write_result(
        args.json,
        {
            "benchmark": "bench_scale",
            "command": "python benchmarks/bench_scale.py " + " ".join(sys.argv[1:]),
            "quick": args.quick,
            "dim": DIM,
            "features": FEATURES,
            "batch": BATCH,
            "threads": args.threads,
            "blocks": args.blocks,
            "steps_per_block": args.steps,
            "rounds": args.rounds,
            "machine": machine(before),
            "rows": rows,
            "step_growth_smallest_to_largest": summary,
        },
    )
    print(json.dumps({"json": args.json, "growth": summary}))


if __name__ == "__main__":
    main()
