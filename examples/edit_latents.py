"""Smart editing: move a digit along a semantic direction in a VAE's latent space.

The direction is the mean difference of the codes of two groups (here digits 1 and 7),
d = mean(z | y=7) − mean(z | y=1), computed at export (`--direction one_to_seven=y:1:7`) and
stored in the bundle's manifest; the torch-free runtime then edits: decode(code(x) + α·d).

    python examples/edit_latents.py --out runs/edit-example --epochs 10
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
    ap.add_argument("--out", default="runs/edit-example")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--train-rows", type=int, default=4000)
    args = ap.parse_args(argv)

    spec = load_spec(
        os.path.join(HERE, "..", "specs", "vae_mnist.yaml"),
        [f"train.epochs={args.epochs}", f"data.split.train={args.train_rows}", "data.split.test=500"],
    )
    run, bundle_dir = os.path.join(args.out, "run"), os.path.join(args.out, "bundle")
    train(spec, run, quiet=True, resume=os.path.isdir(run))
    export_run(run, bundle_dir, formats=["onnx"], verify=True, directions=["one_to_seven=y:1:7"])

    bundle = Bundle.load(bundle_dir, device="cpu")
    test = SplitData.build(spec, "test")
    ones = test.fields["x"][test.fields["y"] == 1][:8].numpy()
    sevens = test.fields["x"][test.fields["y"] == 7].numpy()
    rows = [bundle.edit(ones, "one_to_seven", alpha) for alpha in (0.0, 0.5, 1.0, 1.5)]
    save_png(os.path.join(args.out, "edit.png"), grid(np.concatenate(rows), ncol=8))
    # an edit towards 7 brings the decoded digits closer to the mean 7 than to the mean 1
    mean7, mean1 = sevens.mean(0), ones.mean(0)
    d7 = [float(np.abs(r - mean7).mean()) for r in rows]
    d1 = [float(np.abs(r - mean1).mean()) for r in rows]
    print(
        f"L1 to the mean 7 along alpha = 0, .5, 1, 1.5: {', '.join(f'{v:.3f}' for v in d7)}; wrote {os.path.join(args.out, 'edit.png')}"
    )
    return {"to_seven": d7, "to_one": d1}


if __name__ == "__main__":
    main()
