"""The spec-compiled VAE against a hand-written PyTorch VAE of the same shape, same process.

Both: 784-400-20 ReLU MLPs, Bernoulli likelihood, Adam 1e-3, batch 128, 30 epochs on the
4,000/1,000 split of the shipped mnist5k. Reports test -ELBO (single sample, evaluation noise
from its own generator) and training throughput (images/s, evaluation excluded).

    python benchmarks/bench_vae.py [--epochs 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch
from torch import nn
from torch.nn import functional as F

from latentspec.spec import load_spec
from latentspec.train.data import SplitData
from latentspec.train.evaluate import vae_metrics
from latentspec.train.trainer import Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def hand_step(model, opt, x, g) -> float:
    """One hand-written training step: single-sample negative ELBO, Adam."""
    logits, mu, logvar = model(x, torch.randn(len(x), 20, generator=g))
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


def interleaved_throughput(spec, blocks: int = 40, steps: int = 10) -> dict:
    """Steps/s of the trainer's step and the hand-written step, alternating blocks of steps on
    the same batches so that machine load hits both alike."""
    with tempfile.TemporaryDirectory() as d:
        trainer = Trainer(spec, os.path.join(d, "run"), device="cpu", quiet=True)
        stage = spec.train.stages[0]
        forward, plan, opt, lrs = trainer.begin_stage(stage)
        torch.manual_seed(spec.seed)
        model = VAE()
        hopt = torch.optim.Adam(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(spec.seed)
        batches = [b for b in trainer.train_data.batches(spec, 0) if len(b["x"]) == spec.data.batch]

        def hand(batch):
            return hand_step(model, hopt, batch["x"], g)

        def compiled_step(batch):
            return trainer.step(stage, forward, plan, opt, lrs, batch, 0, 0.0)

        for i in range(steps):  # warm-up: first-call allocations and lazy init on both sides
            hand(batches[i])
            compiled_step(batches[i])
        times = {"hand_written": 0.0, "compiled": 0.0}
        k = 0
        pair = (("hand_written", hand), ("compiled", compiled_step))
        for b in range(blocks):
            for name, fn in pair if b % 2 == 0 else pair[::-1]:  # alternate who goes first
                t0 = time.perf_counter()
                for i in range(steps):
                    fn(batches[(k + i) % len(batches)])
                times[name] += time.perf_counter() - t0
            k += steps
        n = blocks * steps * spec.data.batch
        return {name: n / t for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    spec = load_spec(
        os.path.join(ROOT, "specs", "vae_mnist.yaml"),
        [f"train.epochs={args.epochs}", "train.samples_every=0", "train.eval_every=0"],
    )
    speed = interleaved_throughput(spec)
    hw = hand_written(spec, args.epochs)
    cp = compiled(spec, args.epochs)
    out = {
        "epochs": args.epochs,
        "hand_written": hw,
        "compiled": cp,
        "elbo_gap_nats": cp["neg_elbo"] - hw["neg_elbo"],
        "interleaved_images_per_second": speed,
        "throughput_ratio": speed["compiled"] / speed["hand_written"],
    }
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
