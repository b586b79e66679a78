"""Inpainting with a GLO generator, without torch at inference.

Trains specs/glo_mnist.yaml (generator + one code per training image), exports it with its
`inpaint` entry point (the gradient of the masked reconstruction loss as an ONNX graph), and
fills the lower half of test digits with the torch-free runtime, which runs the optimisation
loop in numpy:  z* = argmin_z ‖(g(z) − x) ⊙ m‖²,  x̂ = g(z*).

    python examples/inpaint_glo.py --out runs/glo-example --epochs 5
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from latentspec.data.pipeline import SplitData
from latentspec.export import export_run
from latentspec.spec import load_spec
from latentspec.train.images import grid, save_png
from latentspec.train.trainer import train
from latentspec_runtime import Bundle

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/glo-example")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--train-rows", type=int, default=4000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=128, help="training batch (smaller: more steps per epoch)")
    args = ap.parse_args(argv)

    spec_path = os.path.join(HERE, "..", "specs", "glo_mnist.yaml")
    spec = load_spec(
        spec_path,
        [
            f"train.stages.0.epochs={args.epochs}",
            f"data.split.train={args.train_rows}",
            f"data.batch={args.batch}",
            "data.split.test=256",
            f"export.inpaint.steps={args.steps}",
        ],
    )
    run, bundle_dir = os.path.join(args.out, "run"), os.path.join(args.out, "bundle")
    train(spec, run, quiet=True, resume=os.path.isdir(run))
    export_run(run, bundle_dir, formats=["onnx"], verify=True)

    bundle = Bundle.load(bundle_dir, device="cpu")
    test = SplitData.build(spec, "test").fields["x"]
    x = test[np.linspace(0, len(test) - 1, 16).astype(int)].numpy()  # (16, 1, 28, 28) in [0, 1], all classes
    mask = np.ones_like(x)
    mask[:, :, 14:, :] = 0.0  # the lower half is unknown
    filled = bundle.inpaint(x, mask)["x_hat"]
    result = np.where(mask > 0, x, filled)
    hole = (1 - mask).astype(bool)
    err = float(np.abs(result - x)[hole].mean())
    baseline = float(np.abs(x.mean(0, keepdims=True).repeat(len(x), 0) - x)[hole].mean())
    save_png(os.path.join(args.out, "inpaint.png"), grid(np.concatenate([x, x * mask, result]), ncol=16))
    print(
        f"hole L1 error {err:.4f} (mean-image baseline {baseline:.4f}); wrote {os.path.join(args.out, 'inpaint.png')}"
    )
    return {"hole_l1": err, "baseline_l1": baseline}


if __name__ == "__main__":
    main()
