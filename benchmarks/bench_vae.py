"""The spec-compiled VAEs against hand-written PyTorch VAEs of the same shape, same process.

MLP: 784-400-20 ReLU MLPs (specs/vae_mnist.yaml); conv: the strided-conv / transposed-conv VAE
of specs/conv_vae_mnist.yaml. Bernoulli likelihood, Adam 1e-3, batch 128 on the 4,000/1,000
split of the shipped mnist5k.

Throughput: the trainer's step (plain and with ``train.compile``, torch.compile of the step's
forward) against the plain hand-written step (``torch.optim.Adam`` defaults, as a user writes
it) and the hand-written step with ``Adam(fused=True)``, in alternating blocks of steps on the
same batches so that machine load hits all alike. Profile: ``torch.profiler`` top ops of the
trainer's step. Quality (MLP, ``--epochs`` > 0): test -ELBO after whole runs of both.

    python benchmarks/bench_vae.py [--epochs 30] [--json benchmarks/results/bench_vae.json]
    python benchmarks/bench_vae.py --quick   # few steps, no whole runs, no torch.compile
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time

import torch
from torch import nn
from torch.nn import functional as F

from latentspec.data.pipeline import SplitData
from latentspec.spec import load_spec
from latentspec.train.evaluate import vae_metrics
from latentspec.train.trainer import Trainer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _machine import machine, write_result

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = {"mlp_vae": "vae_mnist.yaml", "conv_vae": "conv_vae_mnist.yaml"}


class VAE(nn.Module):
    """pytorch/examples vae/main.py."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h = F.relu(self.fc1(x.flatten(1)))
        return self.fc21(h), self.fc22(h)

    def decode(self, z):
        return self.fc4(F.relu(self.fc3(z)))

    def forward(self, x, eps):
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * eps
        return self.decode(z), mu, logvar


class ConvVAE(nn.Module):
    """specs/conv_vae_mnist.yaml written by hand: conv 32, 64 (k4 s2 p1) -> 256 -> 2x16;
    16 -> 64x7x7 -> transposed convs 64 -> 32 -> 1."""

    def __init__(self, dim: int = 16):
        super().__init__()
        self.dim = dim
        self.enc = nn.Sequential(
            nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(), nn.Flatten()
        )
        self.fc = nn.Linear(64 * 7 * 7, 256)
        self.mu = nn.Linear(256, dim)
        self.logvar = nn.Linear(256, dim)
        self.dec = nn.Sequential(
            nn.Linear(dim, 64 * 7 * 7),
            nn.ReLU(),
            nn.Unflatten(1, (64, 7, 7)),
            nn.ConvTranspose2d(64, 32, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 4, 2, 1),
        )

    def encode(self, x):
        h = self.fc(self.enc(x))
        return self.mu(h), self.logvar(h)

    def decode(self, z):
        return self.dec(z).flatten(1)

    def forward(self, x, eps):
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * eps
        return self.decode(z), mu, logvar


#: Where the throughput contenders run: ``--device`` and ``--amp`` (benchmarks/gpu.sh).
RUN = {"device": "cpu", "amp": False}


def hand_step(model, opt, x, g) -> float:
    """One hand-written training step: single-sample negative ELBO, Adam."""
    eps = torch.randn(len(x), getattr(model, "dim", 20), generator=g)
    if RUN["device"] != "cpu":
        x, eps = x.to(RUN["device"], non_blocking=True), eps.to(RUN["device"], non_blocking=True)
    with torch.autocast("cuda", enabled=RUN["amp"]) if RUN["amp"] else contextlib.nullcontext():
        logits, mu, logvar = model(x, eps)
        loss = F.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="sum") / len(x)
        loss = loss + 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def neg_elbo(model, x, g):
    mu, logvar = model.encode(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g)
    rec = F.binary_cross_entropy_with_logits(model.decode(z), x.flatten(1), reduction="none").sum(1)
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
    return (rec + kl).mean()


def hand_written(spec, epochs: int) -> dict:
    train, test = SplitData.build(spec, "train"), SplitData.build(spec, "test")
    torch.manual_seed(spec.seed)
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(spec.seed)
    seconds, images = 0.0, 0
    for epoch in range(epochs):
        for batch in train.batches(spec, epoch):
            t0 = time.perf_counter()
            hand_step(model, opt, batch["x"], g)
            seconds += time.perf_counter() - t0
            images += len(batch["x"])
    with torch.no_grad():
        ge = torch.Generator().manual_seed(spec.seed + 104729)
        x = test.fields["x"]
        value = float(
            sum(neg_elbo(model, x[i : i + 250], ge) * len(x[i : i + 250]) for i in range(0, len(x), 250)) / len(x)
        )
    return {"neg_elbo": value, "images_per_second": images / seconds, "seconds": seconds}


def compiled(spec, epochs: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        trainer = Trainer(spec, os.path.join(d, "run"), device="cpu", quiet=True)
        trainer.run()
        with open(os.path.join(d, "run", "metrics.jsonl")) as f:
            rows = [r for r in map(json.loads, f) if r["kind"] == "epoch"]
        seconds = sum(r["seconds"] for r in rows)
        images = len(trainer.train_data) * epochs
        m = vae_metrics(spec, trainer.model.eval(), trainer.test_data, None, spec.seed + 104729)
    return {"neg_elbo": m["neg_elbo"], "images_per_second": images / seconds, "seconds": seconds}


def _trainer_step(spec, folder: str):
    """A fresh trainer's step function on its first stage, and the trainer."""
    trainer = Trainer(spec, folder, device=RUN["device"], quiet=True)
    stage = spec.train.stages[0]
    forward, plan, opt, lrs = trainer.begin_stage(stage)

    def step(batch):
        return trainer.step(stage, forward, plan, opt, lrs, batch, 0, 0.0)

    return step, trainer


def _hand(model_cls, spec, fused: bool):
    torch.manual_seed(spec.seed)
    model = model_cls().to(RUN["device"])
    opt = (
        torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        if fused
        else torch.optim.Adam(model.parameters(), lr=1e-3)
    )
    g = torch.Generator().manual_seed(spec.seed)
    return lambda batch: hand_step(model, opt, batch["x"], g)


def interleaved_throughput(
    path: str, overrides: list[str], model_cls, blocks: int, steps: int, with_compile: bool
) -> dict:
    """Images/s of the trainer's step (plain, and with train.compile) and the hand-written step
    (plain Adam, fused Adam), alternating blocks of steps on the same batches, the order
    rotating every block so that machine load hits all alike."""
    spec = load_spec(path, overrides)
    with tempfile.TemporaryDirectory() as d:
        latentspec_step, trainer = _trainer_step(spec, os.path.join(d, "run"))
        contenders = {
            "hand_written": _hand(model_cls, spec, fused=False),
            "hand_written_fused_adam": _hand(model_cls, spec, fused=True),
            "latentspec": latentspec_step,
        }
        compile_s = None
        if with_compile:
            compiled_spec = load_spec(path, [*overrides, "train.compile=true"])
            contenders["latentspec_train_compile"], _ = _trainer_step(compiled_spec, os.path.join(d, "run_c"))
        batches = [b for b in trainer.train_data.batches(spec, 0) if len(b["x"]) == spec.data.batch]
        for name, fn in contenders.items():  # warm-up: first-call allocations, lazy init, compiles
            t0 = time.perf_counter()
            for i in range(3):
                fn(batches[i % len(batches)])
            if name == "latentspec_train_compile":
                compile_s = time.perf_counter() - t0
        times = dict.fromkeys(contenders, 0.0)
        names = list(contenders)
        k = 0
        for b in range(blocks):
            for name in names[b % len(names) :] + names[: b % len(names)]:
                fn = contenders[name]
                t0 = time.perf_counter()
                for i in range(steps):
                    fn(batches[(k + i) % len(batches)])
                times[name] += time.perf_counter() - t0
            k += steps
        n = blocks * steps * spec.data.batch
        out = {"images_per_second": {name: n / t for name, t in times.items()}}
        ips = out["images_per_second"]
        out["ratio_vs_hand_written"] = {name: ips[name] / ips["hand_written"] for name in ips}
        if compile_s is not None:
            out["train_compile_warmup_s"] = compile_s
        return out


def profile_step(spec, steps: int, top: int = 10) -> list[dict]:
    """torch.profiler's top ops (by self CPU time) over ``steps`` trainer steps."""
    from torch.profiler import ProfilerActivity, profile

    with tempfile.TemporaryDirectory() as d:
        step, trainer = _trainer_step(spec, os.path.join(d, "run"))
        batches = [b for b in trainer.train_data.batches(spec, 0) if len(b["x"]) == spec.data.batch]
        for i in range(3):
            step(batches[i])
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for i in range(steps):
                step(batches[i % len(batches)])
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    return [
        {
            "op": e.key,
            "calls_per_step": e.count / steps,
            "self_ms_per_step": e.self_cpu_time_total / steps / 1e3,
            "share": e.self_cpu_time_total / total,
        }
        for e in events[:top]
    ]


spec_overrides = ["train.samples_every=0", "train.eval_every=0"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="MLP and conv, few steps, no whole runs, no torch.compile")
    ap.add_argument("--epochs", type=int, default=30, help="whole MLP runs for the -ELBO comparison (0: none)")
    ap.add_argument("--blocks", type=int, default=24)
    ap.add_argument("--steps", type=int, default=5, help="steps per block")
    ap.add_argument("--no-compile", action="store_true", help="leave out the train.compile contender")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (1: steadiest on a shared, loaded machine)"
    )
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where the throughput contenders run")
    ap.add_argument("--amp", action="store_true", help="mixed precision (CUDA): train.amp and autocast by hand")
    ap.add_argument("--json", default=os.path.join(ROOT, "benchmarks", "results", "bench_vae.json"))
    args = ap.parse_args()
    if args.quick:
        args.epochs, args.blocks, args.steps, args.no_compile = 0, 4, 1, True
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_vae: --device cuda, but torch sees no CUDA device")
    RUN.update(device=args.device, amp=args.amp)
    torch.set_num_threads(args.threads)
    if args.amp:
        spec_overrides.append("train.amp=true")
    before = machine()
    models = {}
    for name, file in SPECS.items():
        path = os.path.join(ROOT, "specs", file)
        spec = load_spec(path, spec_overrides)
        cls = VAE if name == "mlp_vae" else ConvVAE
        models[name] = {
            "interleaved": interleaved_throughput(
                path, spec_overrides, cls, args.blocks, args.steps, not args.no_compile
            ),
            "profile_top_ops": profile_step(spec, 2 if args.quick else 20),
        }
        print(name, json.dumps(models[name]["interleaved"]["ratio_vs_hand_written"]), file=sys.stderr)
    if args.epochs:
        spec = load_spec(
            os.path.join(ROOT, "specs", SPECS["mlp_vae"]), [f"train.epochs={args.epochs}", *spec_overrides]
        )
        hw = hand_written(spec, args.epochs)
        cp = compiled(spec, args.epochs)
        models["mlp_vae"]["whole_runs"] = {
            "epochs": args.epochs,
            "hand_written": hw,
            "latentspec": cp,
            "elbo_gap_nats": cp["neg_elbo"] - hw["neg_elbo"],
        }
    out = {
        "benchmark": "bench_vae",
        "command": "python benchmarks/bench_vae.py " + " ".join(sys.argv[1:]),
        "quick": args.quick,
        "threads": torch.get_num_threads(),
        "device": args.device,
        "amp": args.amp,
        "blocks": args.blocks,
        "steps_per_block": args.steps,
        "machine": machine(before),
        "models": models,
    }
    write_result(args.json, out)
    print(json.dumps({"json": args.json}))


if __name__ == "__main__":
    main()
