"""The whole job as a user times it: `latentspec train` against Pythae's `TrainingPipeline`.

Both train the MNIST VAE of specs/vae_mnist.yaml (784-400-20 ReLU MLPs, Bernoulli likelihood,
Adam 1e-3, batch 128) on the same 4,000 training digits of the shipped mnist5k for the same
number of epochs, each as a fresh process timed from the outside (interpreter start, imports,
data, training, per-epoch evaluation, checkpoints), in alternating rounds so that machine load
hits both alike. Pythae's pipeline evaluates on the 1,000 test digits every epoch and keeps its
best model, as latentspec does; the test -ELBO of each (one sample per digit, nats) is reported
next to its time.

Also, in one process, what latentspec's per-epoch extras cost against the training steps:
evaluation on the test split, the `last`/`best` checkpoints, the collapse check and the sample
picture (``samples_every: 1``), each timed around its call.

Needs the `bench` extra (`pip install -e ".[bench]"`: Pythae, which installs next to torch 2.13
without pulling another torch).

    python benchmarks/bench_peers.py [--epochs 30] [--rounds 2] [--overhead-epochs N] [--json PATH]
    python benchmarks/bench_peers.py --quick   # 1 epoch, one round
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SPEC = os.path.join(ROOT, "specs", "vae_mnist.yaml")


def pythae_child(data: str, epochs: int, out: str) -> None:
    """Train the VAE with Pythae's TrainingPipeline (in this process) and write its -ELBO."""
    import logging

    import numpy as np
    import torch
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from torch import nn
    from torch.nn import functional as F

    logging.disable(logging.INFO)

    class Encoder(BaseEncoder):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.mu, self.logvar = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)

        def forward(self, x):
            h = F.relu(self.fc1(x.reshape(len(x), -1)))
            return ModelOutput(embedding=self.mu(h), log_covariance=self.logvar(h))

    class Decoder(BaseDecoder):
        def __init__(self) -> None:
            super().__init__()
            self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

        def logits(self, z):
            return self.fc4(F.relu(self.fc3(z)))

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.logits(z)).reshape(len(z), 1, 28, 28))

    with np.load(data) as d:
        train, test = d["train"], d["test"]
    model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=20, reconstruction_loss="bce"), Encoder(), Decoder())
    with tempfile.TemporaryDirectory() as d:
        config = BaseTrainerConfig(
            output_dir=d,
            num_epochs=epochs,
            learning_rate=1e-3,
            per_device_train_batch_size=128,
            per_device_eval_batch_size=500,
            optimizer_cls="Adam",
            seed=0,
            no_cuda=True,
        )
        pipeline = TrainingPipeline(training_config=config, model=model)
        pipeline(train_data=train, eval_data=test)
        trained = pipeline.trainer._best_model
    with torch.no_grad():
        x = torch.from_numpy(test)
        enc = trained.encoder(x)
        mu, logvar = enc.embedding, enc.log_covariance
        g = torch.Generator().manual_seed(104729)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g)
        rec = F.binary_cross_entropy_with_logits(trained.decoder.logits(z), x.reshape(len(x), -1), reduction="none")
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
        neg_elbo = float((rec.sum(1) + kl).mean())
    with open(out, "w") as f:
        json.dump({"neg_elbo": neg_elbo}, f)


def run_timed(cmd: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"bench_peers: {' '.join(cmd[:4])} ... failed:\n{r.stderr[-3000:]}")
    return seconds


def latentspec_run(epochs: int, folder: str) -> dict:
    """`latentspec train` as a process, timed; the last epoch's test terms (-ELBO = recon + kl)."""
    exe = os.path.join(os.path.dirname(sys.executable), "latentspec")
    cmd = [exe, "train", SPEC, "--out", folder, "--quiet", "--device", "cpu", "--set", f"train.epochs={epochs}"]
    seconds = run_timed(cmd)
    with open(os.path.join(folder, "metrics.jsonl")) as f:
        rows = [r for r in map(json.loads, f) if r["kind"] == "epoch"]
    test = rows[-1]["test"]
    return {"seconds": seconds, "neg_elbo": test["recon"] + test["kl"], "step_seconds": sum(r["seconds"] for r in rows)}


def pythae_run(data: str, epochs: int, folder: str) -> dict:
    out = os.path.join(folder, "pythae.json")
    seconds = run_timed([sys.executable, os.path.abspath(__file__), "--pythae-child", data, str(epochs), out])
    with open(out) as f:
        return {"seconds": seconds, **json.load(f)}


# What each contender's wall time goes to, from one run of each under cProfile: cumulative
# seconds of these functions (file suffix, function name), the first match in the profile.
PROFILED = {
    "latentspec": {
        "import torch": ("torch/__init__.py", "<module>"),
        "import torch._dynamo (first optimizer)": ("torch/_dynamo/__init__.py", "<module>"),
        "the whole Trainer.run": ("latentspec/train/trainer.py", "run"),
        "training steps": ("latentspec/train/trainer.py", "step"),
        "test evaluation": ("latentspec/train/trainer.py", "evaluate"),
        "checkpoints": ("latentspec/train/trainer.py", "_checkpoint"),
        "collapse check": ("latentspec/train/collapse.py", "check_epoch"),
        "sample pictures": ("latentspec/train/pictures.py", "epoch_samples"),
    },
    "pythae": {
        "import torch": ("torch/__init__.py", "<module>"),
        "import torch._dynamo (first optimizer)": ("torch/_dynamo/__init__.py", "<module>"),
        "the whole TrainingPipeline call": ("pythae/pipelines/training.py", "__call__"),
        "training steps": ("pythae/trainers/base_trainer/base_trainer.py", "train_step"),
        "test evaluation": ("pythae/trainers/base_trainer/base_trainer.py", "eval_step"),
        "final model save": ("pythae/trainers/base_trainer/base_trainer.py", "save_model"),
    },
}


def profile_breakdown(cmd: list[str], parts: dict[str, tuple[str, str]], folder: str) -> dict:
    """Run ``cmd`` (a Python command line, without the interpreter) once under cProfile; the
    profiled total and the cumulative seconds of ``parts``."""
    import pstats

    out = os.path.join(folder, "profile.out")
    run_timed([sys.executable, "-m", "cProfile", "-o", out, *cmd])
    stats = pstats.Stats(out).stats  # (file, line, function) -> (calls, ncalls, tottime, cumtime, callers)
    total = max(v[3] for v in stats.values())
    found = {}
    for label, (suffix, func) in parts.items():
        hits = [v[3] for (f, _, fn), v in stats.items() if f.replace(os.sep, "/").endswith(suffix) and fn == func]
        found[label] = max(hits) if hits else None
    return {"total_s": total, "parts_s": found}


def _whole_run(epochs: int, extras_off: bool) -> float:
    """Seconds of ``Trainer.run`` of the spec (its own `samples_every`) in this process; with
    ``extras_off`` the test evaluation, checkpoints, collapse check and pictures do nothing."""
    from unittest import mock

    from latentspec.spec import load_spec
    from latentspec.train.trainer import Trainer

    spec = load_spec(SPEC, [f"train.epochs={epochs}"])
    patches = (
        [
            mock.patch.object(Trainer, "evaluate", lambda self, stage, data: {}),
            mock.patch.object(Trainer, "_checkpoint", lambda self, optimizer, row, **k: None),
            mock.patch("latentspec.train.collapse.check_epoch", lambda *a, **k: []),
            mock.patch("latentspec.train.pictures.epoch_samples", lambda *a, **k: None),
        ]
        if extras_off
        else []
    )
    with tempfile.TemporaryDirectory() as d, contextlib.ExitStack() as stack:
        for p in patches:
            stack.enter_context(p)
        trainer = Trainer(spec, os.path.join(d, "run"), device="cpu", quiet=True)
        t0 = time.perf_counter()
        trainer.run()
        return time.perf_counter() - t0


def overheads(epochs: int, repeats: int = 5) -> dict:
    """Seconds of latentspec's per-epoch extras against its training steps, one process."""
    from latentspec.spec import load_spec
    from latentspec.train import collapse, pictures
    from latentspec.train.trainer import Trainer

    spent = {"evaluation": 0.0, "checkpoints": 0.0, "collapse check": 0.0, "sample picture": 0.0}

    def timed(key, fn):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[key] += time.perf_counter() - t0

        return wrapper

    class Timed(Trainer):
        evaluate = timed("evaluation", Trainer.evaluate)
        _checkpoint = timed("checkpoints", Trainer._checkpoint)

    saved = pictures.epoch_samples, collapse.check_epoch
    pictures.epoch_samples = timed("sample picture", pictures.epoch_samples)
    collapse.check_epoch = timed("collapse check", collapse.check_epoch)
    try:
        spec = load_spec(SPEC, [f"train.epochs={epochs}", "train.samples_every=1", "train.eval_every=1"])
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            trainer = Timed(spec, os.path.join(d, "run"), device="cpu", quiet=True)
            built = time.perf_counter() - t0
            trainer.run()
            whole = time.perf_counter() - t0
            with open(os.path.join(d, "run", "metrics.jsonl")) as f:
                steps = sum(r["seconds"] for r in map(json.loads, f) if r["kind"] == "epoch")
    finally:
        pictures.epoch_samples, collapse.check_epoch = saved
    extras = sum(spent.values())
    pictures_default = sum(1 for e in range(1, epochs + 1) if e % 10 == 0 or e == epochs)
    # By difference: the spec's own run (a picture every 10 epochs) against the same run with
    # every extra switched off, alternating, best of each. This also counts what the timers
    # around the calls miss: the background checkpoint writer competing with the steps for the cores.
    with_extras, without = [], []
    for _ in range(repeats):
        for off, times in ((False, with_extras), (True, without)):
            times.append(_whole_run(epochs, off))
    return {
        "by_difference": {
            "repeats": repeats,
            "with_extras_s": with_extras,
            "without_extras_s": without,
            # medians: a run now and then is much faster or slower than its neighbours on this machine
            "extras_share": (statistics.median(with_extras) - statistics.median(without)) / statistics.median(without),
        },
        "epochs": epochs,
        "steps_s": steps,
        "extras_s": spent,
        "setup_s": built,
        "whole_s": whole,
        "other_s": whole - built - steps - extras,
        "extras_share_of_steps": extras / steps,
        # the spec's own setting: a picture every 10 epochs and at the last
        "extras_share_default": (extras - spent["sample picture"] * (1 - pictures_default / epochs)) / steps,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of both contenders")
    ap.add_argument(
        "--overhead-epochs", type=int, default=None, help="epochs of the in-process extras' timing (default: --epochs)"
    )
    ap.add_argument("--quick", action="store_true", help="1 epoch, one round")
    ap.add_argument("--json", default=os.path.join(HERE, "results", "bench_peers.json"))
    ap.add_argument("--pythae-child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.pythae_child:
        data, epochs, out = args.pythae_child
        pythae_child(data, int(epochs), out)
        return
    try:
        import pythae  # noqa: F401
    except ImportError:
        raise SystemExit('bench_peers: Pythae is not installed; pip install -e ".[bench]"') from None
    if args.quick:
        args.epochs, args.rounds, args.overhead_epochs = 1, 1, 1
    sys.path.insert(0, HERE)
    import numpy as np
    import torch
    from _machine import machine, write_result

    from latentspec.data.pipeline import SplitData
    from latentspec.spec import load_spec

    before = machine()
    spec = load_spec(SPEC)
    runs: dict[str, list[dict]] = {"latentspec": [], "pythae": []}
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "mnist.npz")
        train, test = SplitData.build(spec, "train"), SplitData.build(spec, "test")
        np.savez(data, train=train.fields["x"].numpy(), test=test.fields["x"].numpy())
        for rnd in range(args.rounds):
            order = ("latentspec", "pythae") if rnd % 2 == 0 else ("pythae", "latentspec")
            for who in order:
                folder = os.path.join(d, f"{who}-{rnd}")
                os.makedirs(folder)
                r = (
                    latentspec_run(args.epochs, folder)
                    if who == "latentspec"
                    else pythae_run(data, args.epochs, folder)
                )
                runs[who].append(r)
                print(f"round {rnd + 1} {who:10s} {r['seconds']:7.1f} s  -ELBO {r['neg_elbo']:.2f}", file=sys.stderr)
        # one more run of each under cProfile: what the wall time goes to (not timed: the
        # profiler's overhead is per Python call, so the shares, not the seconds, compare)
        profiles = {}
        for who in ("latentspec", "pythae"):
            folder = os.path.join(d, f"{who}-profile")
            os.makedirs(folder)
            cmd = (
                ["-m", "latentspec.cli", "train", SPEC, "--out", os.path.join(folder, "run"), "--quiet"]
                + ["--device", "cpu", "--set", f"train.epochs={args.epochs}"]
                if who == "latentspec"
                else [
                    os.path.abspath(__file__),
                    "--pythae-child",
                    data,
                    str(args.epochs),
                    os.path.join(folder, "p.json"),
                ]
            )
            profiles[who] = profile_breakdown(cmd, PROFILED[who], folder)
    summary = {who: statistics.median(r["seconds"] for r in rs) for who, rs in runs.items()}
    extra = overheads(args.overhead_epochs or args.epochs, repeats=1 if args.quick else 5)
    write_result(
        args.json,
        {
            "benchmark": "bench_peers",
            "command": "python benchmarks/bench_peers.py " + " ".join(sys.argv[1:]),
            "quick": args.quick,
            "epochs": args.epochs,
            "rounds": args.rounds,
            "torch_threads": torch.get_num_threads(),
            "pythae": importlib.metadata.version("pythae"),
            "machine": machine(before),
            "runs": runs,
            "median_seconds": summary,
            "pythae_over_latentspec": summary["pythae"] / summary["latentspec"],
            "overheads": extra,
            "profiles": profiles,
        },
    )
    print(json.dumps({"json": args.json, "pythae_over_latentspec": summary["pythae"] / summary["latentspec"]}))


if __name__ == "__main__":
    main()
