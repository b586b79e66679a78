"""`latentspec eval RUN --class-fidelity CLASSIFIER_RUN`: do a conditional generator's samples
show the class they were asked for?

The run's sampling entry must take one class label (e.g. a conditional VAE's
``sample: {in: [y], prior: [z], out: [x_mean]}``). For each class c it draws the same number of
samples with y = c, and the classifier run (a spec-trained classifier such as
``specs/classifier_mnist.yaml``) labels them with its ``predict`` entry (one image input, one
output of class scores; argmax). Written to ``eval.json`` under ``class_fidelity``: the fraction
classified as asked (overall and per class), the confusion matrix (rows: asked, columns:
classified), and, as the baseline measured in the same run, the classifier's accuracy on the
run's real test images with their true labels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from latentspec.errors import RunError
from latentspec.spec import Spec

PER_CLASS = 100  # samples per class when --samples is not given


def classifier_network(run: str, device: str = "cpu") -> tuple[Callable[[np.ndarray], np.ndarray], dict]:
    """A function images (N, C, H, W) -> predicted class (N,), the classes it knows and what it is:
    the run's `predict` entry (one input, one output of class scores)."""
    from latentspec.run import load_run
    from latentspec.train.sample_quality import image_network

    spec, model = load_run(run, device=device)
    e = spec.entry_of_kind("predict")
    if e is None or e.optimize or len(e.inputs) != 1 or len(e.outputs) != 1:
        raise RunError(
            f"--class-fidelity {run}: its spec has no `predict` export entry with one input and one output "
            "(e.g. `classify: {kind: predict, in: [x], out: [logits]}`)"
        )
    field, logits = e.inputs[0], e.outputs[0]
    info = spec.infos.get(logits)
    classes = int(info.shape[-1]) if info is not None and info.shape else None
    net = image_network(spec, model, field, logits, f"--class-fidelity {run}", "a classifier")

    def predict(images: np.ndarray) -> np.ndarray:
        return net(images).argmax(1)

    return predict, {"run": run, "entry": e.name, "input": field, "classes": classes}


def conditional_label(spec: Spec) -> tuple[str, int]:
    """(label input, class count) of the run's sampling entry, which must take exactly one class
    label and nothing else (``latentspec.spec._evalkeys.conditional_label``)."""
    from latentspec.spec._evalkeys import conditional_label as label_of
    from latentspec.train.pictures import sampling_entry

    field = label_of(spec)
    if field is None:
        try:
            e = sampling_entry(spec)
        except RunError:
            has = "the run has no sampling entry"
        else:
            has = f"the sampling entry '{e.name}' takes {', '.join(e.inputs) or 'nothing'}"
        raise RunError(
            "--class-fidelity: needs a sampling entry that takes one class label (e.g. "
            f"`sample: {{in: [y], prior: [z], out: [x_mean]}}`); {has}"
        )
    return field, int(spec.infos[field].classes)


def class_fidelity_report(
    spec: Spec, model, test, classifier_run: str, *, samples: int | None, seed: int, device: str = "cpu"
) -> dict:
    """Samples per asked class, classified by ``classifier_run``; see the module docstring.
    ``test``: the run's test split (its real images and labels give the baseline)."""
    from latentspec.train.pictures import image_field, sample_images

    field, classes = conditional_label(spec)
    predict, about = classifier_network(classifier_run, device)
    if about["classes"] is not None and about["classes"] != classes:
        raise RunError(
            f"--class-fidelity {classifier_run}: the classifier scores {about['classes']} classes but the "
            f"sampling entry's '{field}' has {classes}"
        )
    per_class = PER_CLASS if samples is None else samples // classes
    if per_class < 1:
        raise RunError(f"--samples {samples}: fewer than one sample per class ({classes} classes)")
    confusion = np.zeros((classes, classes), dtype=np.int64)
    for c in range(classes):
        images = sample_images(model, per_class, seed + c, {field: c})
        got = predict(images)
        np.add.at(confusion[c], np.clip(got, 0, classes - 1), 1)
    asked = confusion.sum(1)
    out = {
        "accuracy": float(np.trace(confusion) / confusion.sum()),
        "per_class": {str(c): float(confusion[c, c] / asked[c]) for c in range(classes)},
        "min_class_accuracy": float((np.diag(confusion) / asked).min()),
        "samples": int(confusion.sum()),
        "per_class_samples": per_class,
        "field": field,
        "confusion": confusion.tolist(),
        "classifier": about,
    }
    x = image_field(spec)
    if x is not None and field in test.fields:
        real = predict(test.fields[x].numpy())
        out["real_accuracy"] = float((real == test.fields[field].numpy()).mean())
    return out
