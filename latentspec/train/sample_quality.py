"""`latentspec eval RUN --features FEATURE_RUN`: sample quality of a generator, measured in the
feature space of another run (a classifier or factor regressor trained from a spec).

The feature network is the feature run's `features` export entry (one image input, one output:
by convention its penultimate layer), or any tensor of that run named by ``--feature-tensor``
and computed from its image field.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from latentspec.errors import RunError
from latentspec.spec import Spec

FEATURES_ENTRY = "features"


def feature_network(run: str, tensor: str | None = None, device: str = "cpu") -> tuple[Callable, dict]:
    """A function images (N, C, H, W) in [0, 1] -> features (N, D) numpy, and what it is."""
    from latentspec.run import load_run
    from latentspec.train.pictures import image_field

    spec, model = load_run(run, device=device)
    if tensor is None:
        e = spec.export.get(FEATURES_ENTRY)
        if e is None or e.optimize or len(e.inputs) != 1 or len(e.outputs) != 1:
            raise RunError(
                f"--features {run}: its spec has no `{FEATURES_ENTRY}` export entry with one input and one "
                "output (e.g. `features: {kind: encode, in: [x], out: [feat]}`); add one or name a tensor with "
                "--feature-tensor"
            )
        field, tensor = e.inputs[0], e.outputs[0]
    else:
        field = image_field(spec)
        if tensor not in spec.infos:
            raise RunError(f"--feature-tensor {tensor}: the feature run's spec has no tensor '{tensor}'")
        if field is None:
            raise RunError(f"--features {run}: its spec has no image field to compute '{tensor}' from")
    net = image_network(spec, model, field, tensor, f"--features {run}", "a feature run")

    def features(images: np.ndarray) -> np.ndarray:
        return net(images).astype(np.float64)

    return features, {"run": run, "tensor": tensor, "input": field}


def real_images(spec: Spec, split: str) -> np.ndarray:
    """The image field of ``split`` as numpy (N, C, H, W)."""
    from latentspec.data.pipeline import SplitData
    from latentspec.train.pictures import image_field

    field = image_field(spec)
    if field is None:
        raise RunError("--features: the run's spec has no image field (float32, (C, H, W)) to compare samples with")
    return SplitData.build(spec, split).fields[field].numpy()


def quality_of(features: Callable, real: np.ndarray, images: np.ndarray, seed: int = 0) -> dict:
    """FD, KID (± std over subsets) and precision/recall of ``images`` against ``real``."""
    from latentspec._extras import require

    require("sklearn", "metrics", "sample-quality metrics (eval --features)")
    from latentspec.metrics import sample_quality

    return sample_quality(features(real), features(images), kid_subsets=50, seed=seed)


def other_sampling_entries(spec: Spec) -> list[str]:
    """The entries besides the main sampling one that also sample (``in: []``, no `optimize:`):
    e.g. GLANN's `sample` (noise through the mapper) next to `sample_gauss` (the fitted prior)."""
    from latentspec.spec._evalkeys import sampling_entries

    return sampling_entries(spec)[1:]


def sample_quality_report(
    spec: Spec, model, test_images: np.ndarray, feature_run: str, *, samples: int | None, tensor: str | None, seed: int
) -> dict:
    """The run's `sample` entry against its test images, in the feature run's feature space;
    with several entries that sample, each of them under ``entries`` (the same draws' seed)."""
    from latentspec.train.pictures import sample_images

    features, about = feature_network(feature_run, tensor)
    n = samples or len(test_images)
    if n < 4:
        raise RunError(f"--samples {n}: too few samples to compare (give at least 4)")

    def quality(entry: str | None) -> dict:
        generated = sample_images(model, n, seed, entry=entry)
        if generated.shape[1:] != test_images.shape[1:]:
            raise RunError(
                f"--features: the samples{f' of {entry}' if entry else ''} have shape "
                f"{list(generated.shape[1:])} but the test images {list(test_images.shape[1:])}"
            )
        return quality_of(features, test_images, generated, seed)

    report = {**quality(None), "features": about}
    others = other_sampling_entries(spec)
    if others:
        from latentspec.train.pictures import sampling_entry

        main = sampling_entry(spec).name
        report["entries"] = {main: {k: v for k, v in report.items() if k != "features"}}
        report["entries"].update({name: quality(name) for name in others})
    return report


def image_network(
    spec: Spec, model, field: str, tensor: str, flag: str, what: str
) -> Callable[[np.ndarray], np.ndarray]:
    """A function images (N, C, H, W) -> ``tensor`` flattened to (N, D), computed from the run's
    image ``field`` in batches without gradients; images of another shape are a RunError that
    names ``flag`` (the option that gave the run) and ``what`` the run should be."""
    gm, _ = model.graph([tensor], [field], training=False)
    shape = spec.infos[field].shape
    dev = next(iter(model.parameters()), torch.empty(0)).device

    @torch.no_grad()
    def run(images: np.ndarray, batch: int = 500) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        if shape is not None and tuple(images.shape[1:]) != tuple(shape):
            raise RunError(
                f"{flag}: its input '{field}' has shape {list(shape)} but the images have "
                f"shape {list(images.shape[1:])}; use {what} trained on the same kind of images"
            )
        out = [
            gm(torch.from_numpy(images[i : i + batch]).to(dev)).flatten(1).cpu().numpy()
            for i in range(0, len(images), batch)
        ]
        return np.concatenate(out)

    return run
