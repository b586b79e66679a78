"""Train the MNIST VAE briefly, export it as a verified bundle, and use it without PyTorch.

    python examples/deploy_onnxruntime.py --out /tmp/vae-demo --epochs 1

Writes into --out: ``run/`` (the training run), ``vae.bundle/`` (manifest.json + one ONNX file
per entry point), ``samples.png`` (a grid of prior samples) and ``reconstruction.png`` (test
digits above their reconstructions). The deployment half (``deploy``) needs only numpy,
onnxruntime, Pillow and ``latentspec_runtime`` (pip install ./runtime[cpu]).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
try:
    import latentspec_runtime  # noqa: F401
except ImportError:  # a source checkout without `pip install ./runtime[cpu]`
    sys.path.insert(0, os.path.join(REPO, "runtime"))


def train_and_export(out: str, epochs: int, train_rows: int | None = None) -> str:
    """Train specs/vae_mnist.yaml for ``epochs`` epochs and export it with --verify."""
    from latentspec.export import export_run
    from latentspec.spec import load_spec
    from latentspec.train.trainer import train

    overrides = [f"train.epochs={epochs}", "train.samples_every=0"]
    if train_rows:
        overrides.append(f"data.split.train={train_rows}")
    spec = load_spec(os.path.join(REPO, "specs", "vae_mnist.yaml"), overrides)
    run = os.path.join(out, "run")
    shutil.rmtree(run, ignore_errors=True)  # a fresh run each time
    train(spec, run, device="cpu", quiet=True)
    bundle = os.path.join(out, "vae.bundle")
    export_run(run, bundle, verify=True)  # raises ExportError if ONNX Runtime and PyTorch disagree
    return bundle


def save_grid(path: str, images: np.ndarray, ncol: int) -> None:
    """(N, 1, H, W) floats in [0, 1] → one PNG, ``ncol`` images per row, 2-pixel gaps."""
    from PIL import Image

    n, _, h, w = images.shape
    rows = -(-n // ncol)
    canvas = np.ones((rows * (h + 2) + 2, ncol * (w + 2) + 2), np.float32)
    for i, img in enumerate(images[:, 0]):
        r, c = divmod(i, ncol)
        canvas[2 + r * (h + 2) : 2 + r * (h + 2) + h, 2 + c * (w + 2) : 2 + c * (w + 2) + w] = img
    Image.fromarray((np.clip(canvas, 0, 1) * 255).round().astype(np.uint8)).save(path)


def deploy(bundle_dir: str, out: str) -> dict[str, str]:
    """The torch-free half: load the bundle, sample, reconstruct test digits."""
    from latentspec_runtime import Bundle

    bundle = Bundle.load(bundle_dir, device="cpu")
    print(bundle.info())
    samples = bundle.sample(64, seed=0)  # (64, 1, 28, 28) in [0, 1]
    digits = np.load(os.path.join(REPO, "latentspec", "data", "mnist5k.npz"))
    rows = np.linspace(0, len(digits["images"]) - 1, 16).astype(int)
    x = digits["images"][rows].reshape(16, 1, 28, 28).astype(np.float32) / 255.0  # the field's scale: [0, 1]
    recon = bundle.reconstruct(x)  # decode(code(x)): z_mu through the decoder
    paths = {"samples": os.path.join(out, "samples.png"), "reconstruction": os.path.join(out, "reconstruction.png")}
    save_grid(paths["samples"], samples, 8)
    save_grid(paths["reconstruction"], np.concatenate([x, recon]), 16)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="vae-demo", help="folder for the run, the bundle and the pictures")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-rows", type=int, help="train on fewer rows than the spec's 4000 (quicker)")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()
    bundle = train_and_export(args.out, args.epochs, args.train_rows)
    t1 = time.perf_counter()
    paths = deploy(bundle, args.out)
    print(f"trained + exported in {t1 - t0:.1f} s; wrote {paths['samples']} and {paths['reconstruction']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
