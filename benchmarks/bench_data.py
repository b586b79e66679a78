"""Data scaling: time per epoch, the loader alone, rendering and peak memory against the size
of a procedural `shapes` dataset (1k, 4k, 16k, 64k sprites of 32 × 32).

Each size runs in a fresh process (its peak RSS is its own): rendering the dataset without the
cache on the process pool (forced, whatever the size), in one process, and as ``load`` chooses by
its threshold (best of two each, alternating; the pool's first run, which starts the fork server,
is kept apart), the loader alone (building the training split, then one epoch's shuffled
batches), and one training epoch of an MLP VAE (1024-256-16, batch 128) through the trainer, the
faster of the second and third (the first warms up); the peak RSS is taken before the rendering
measurements.
Time per epoch should grow linearly with the size, and the loader should be a small share of it.

    python benchmarks/bench_data.py [--sizes 1000 4000 16000 64000] [--json PATH]
    python benchmarks/bench_data.py --quick   # 500 and 2,000 items
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

SPEC = """\
latentspec: 1
name: vae_shapes_scale
seed: 0
data:
  dataset: {{shapes: {{size: {n}, cache: false}}}}
  split: {{train: {n}}}
  fields:
    x: {{from: image}}
  batch: 128
latents:
  z: {{dim: 16, prior: normal}}
nodes:
  enc:    {{module: mlp, in: x, out: h, hidden: [256], activation: relu}}
  post:   {{module: gaussian_head, in: h, out: [z_mu, z_logvar], latent: z}}
  draw:   {{op: reparameterize, in: [z_mu, z_logvar], out: z}}
  dec:    {{module: mlp, in: z, out: x_logits, hidden: [256], activation: relu, shape: [1, 32, 32]}}
objective:
  recon: {{term: bernoulli_nll, in: [x_logits, x]}}
  kl:    {{term: gaussian_kl, in: [z_mu, z_logvar]}}
train:
  optimizer: {{name: adam, lr: 1.0e-3}}
  epochs: 3
  eval_every: 0
"""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def render_times(ds, n: int) -> dict:
    """Seconds to render ``n`` items of procedural dataset ``ds`` without the cache: on the
    process pool (its first run, which may start the fork server, apart), in one process, and as
    ``load`` chooses; best of two, alternating."""
    from latentspec.data.procedural import _common

    out: dict = {}
    ds.load(ds.resolve({"size": 200, "cache": False}))  # warm-up: first-call costs
    cfg = ds.resolve({"size": n, "cache": False})
    threshold, env = _common.PROCESS_MIN_SECONDS, os.environ.get(_common.WORKERS_ENV)
    out["render_workers"] = _common.render_workers(-(-n // _common.CHUNK))
    out["render_threshold_s"] = threshold
    modes = {  # key: (processes, threshold); None: the default
        "render_pool_s": (None, 0.0),
        "render_one_process_s": ("1", threshold),
        "render_s": (None, threshold),
    }
    best = dict.fromkeys(modes, float("inf"))
    try:
        for rnd in range(3):  # the pool's first run, then best of two, alternating
            for key, (workers, minimum) in modes.items():
                if rnd == 0 and key != "render_pool_s":
                    continue
                if workers is None:
                    os.environ.pop(_common.WORKERS_ENV, None)
                else:
                    os.environ[_common.WORKERS_ENV] = workers
                _common.PROCESS_MIN_SECONDS = minimum
                t0 = time.perf_counter()
                ds.load(cfg)
                seconds = time.perf_counter() - t0
                if rnd == 0:
                    out["render_pool_first_s"] = seconds  # includes starting the fork server
                else:
                    best[key] = min(best[key], seconds)
    finally:
        _common.PROCESS_MIN_SECONDS = threshold
        if env is None:
            os.environ.pop(_common.WORKERS_ENV, None)
        else:
            os.environ[_common.WORKERS_ENV] = env
    out.update(best)
    return out


def child(n: int, threads: int) -> dict:
    import torch

    from latentspec.data.pipeline import SplitData
    from latentspec.data.procedural import shapes
    from latentspec.spec import load_spec
    from latentspec.train.trainer import Trainer

    torch.set_num_threads(threads)
    out: dict = {"n": n}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "spec.yaml")
        with open(path, "w") as f:
            f.write(SPEC.format(n=n))
        spec = load_spec(path)
        t0 = time.perf_counter()
        data = SplitData.build(spec, "train")
        out["split_build_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        images = 0
        for batch in data.batches(spec, 1):
            images += len(batch["x"])
        out["loader_epoch_s"] = time.perf_counter() - t0
        out["loader_images_per_s"] = images / out["loader_epoch_s"]
        del data, batch
        run = os.path.join(d, "run")
        os.makedirs(run)
        trainer = Trainer(spec, run, device="cpu", quiet=True)
        stage = spec.train.stages[0]
        forward, plan, opt, lrs = trainer.begin_stage(stage)
        walls = []
        for epoch in range(3):
            t0 = time.perf_counter()
            row = trainer._epoch(0, stage, epoch, 3, forward, plan, opt, lrs)
            walls.append((time.perf_counter() - t0, row["seconds"]))
        # the faster of epochs 2 and 3 (the first warms up): steps, the epoch's batches, its
        # metrics row and checkpoint
        wall, steps = min(walls[1:])
        out["epoch_s"], out["epoch_steps_s"], out["images_per_s"] = wall, steps, n / wall
        trainer._writer.close()  # the last checkpoint's background write ends before its folder goes
        del trainer
    out["peak_rss_mb"] = peak_rss_mb()  # training's peak: the data held once, the epoch's batches
    out.update(render_times(shapes.Shapes(), n))
    out["torch_threads"] = torch.get_num_threads()
    return out


def run_child(args: list[str], what: str) -> dict:
    """This script with ``args`` in a fresh process; the JSON object it prints last."""
    cmd = [sys.executable, os.path.abspath(__file__), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=3600)
    if r.returncode != 0:
        raise SystemExit(f"bench_data: {what} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000, 4_000, 16_000, 64_000])
    ap.add_argument("--quick", action="store_true", help="500 and 2,000 items")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (1: steadiest on a shared, loaded machine)"
    )
    ap.add_argument("--json", default=os.path.join(HERE, "results", "bench_data.json"))
    ap.add_argument(
        "--costly", type=int, default=16_000, help="faces (64 × 64, ~10× shapes' cost per item) rendered at this size"
    )
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--render-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        sys.path.insert(0, ROOT)
        print(json.dumps(child(args.child, args.threads)))
        return
    if args.render_child:
        sys.path.insert(0, ROOT)
        from latentspec.data.procedural.faces import Faces

        print(json.dumps({"dataset": "faces", "n": args.render_child, **render_times(Faces(), args.render_child)}))
        return
    if args.quick:
        args.sizes, args.costly = [500, 2_000], 1_000
    sys.path.insert(0, HERE)
    from _machine import machine, write_result

    before = machine()
    rows = []
    for n in args.sizes:
        row = run_child(["--child", str(n), "--threads", str(args.threads)], f"size {n}")
        print(
            f"{n:>7,} items: epoch {row['epoch_s']:6.2f} s, loader {row['loader_epoch_s']:5.2f} s, "
            f"render {row['render_s']:5.2f} s (pool of {row['render_workers']} {row['render_pool_s']:5.2f} s, "
            f"one process {row['render_one_process_s']:5.2f} s), "
            f"peak RSS {row['peak_rss_mb']:6.0f} MB",
            file=sys.stderr,
        )
        rows.append(row)
    costly = run_child(["--render-child", str(args.costly)], "faces render")
    print(
        f"faces {costly['n']:,} items: pool of {costly['render_workers']} {costly['render_pool_s']:5.2f} s, "
        f"one process {costly['render_one_process_s']:5.2f} s, as load chooses {costly['render_s']:5.2f} s",
        file=sys.stderr,
    )
    small, large = rows[0], rows[-1]
    per_item = {
        "epoch": (large["epoch_s"] / large["n"]) / (small["epoch_s"] / small["n"]),
        "loader": (large["loader_epoch_s"] / large["n"]) / (small["loader_epoch_s"] / small["n"]),
        "render": (large["render_s"] / large["n"]) / (small["render_s"] / small["n"]),
    }
    write_result(
        args.json,
        {
            "benchmark": "bench_data",
            "command": "python benchmarks/bench_data.py " + " ".join(sys.argv[1:]),
            "quick": args.quick,
            "threads": args.threads,
            "machine": machine(before),
            "rows": rows,
            "costly_render": costly,
            "per_item_growth_smallest_to_largest": per_item,
        },
    )
    print(json.dumps({"json": args.json, "per_item_growth": per_item}))


if __name__ == "__main__":
    main()
