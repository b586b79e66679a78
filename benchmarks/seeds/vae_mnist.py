"""The README's headline run: `specs/vae_mnist.yaml` at 30 epochs (Kingma & Welling 2014), its
test −ELBO, IWAE bound, active units and linear probe, and the sample quality of its prior draws in
the feature space of a `specs/classifier_mnist.yaml` run, next to two baselines measured with the
same features: real digits from the training split, and blurred uniform noise."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.seeds import Context, claim_rows, epoch_rows, register

MNIST_QUICK = ["data.split.train=300", "data.split.test=100", "train.epochs=1"]
IWAE_K = 50
SAMPLES = 1000


def blurred_noise(n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Uniform noise blurred with a Gaussian of σ = 1.5 pixels: digit-sized blobs, no digits."""
    from scipy.ndimage import gaussian_filter

    noise = np.random.default_rng(seed).uniform(size=(n, *shape)).astype(np.float32)
    return np.stack([gaussian_filter(x, sigma=(0, 1.5, 1.5)) for x in noise])


def classifier_accuracy(run: str) -> float:
    """The classifier run's test accuracy: argmax of its `logits` against the labels."""
    from latentspec.data.pipeline import SplitData
    from latentspec.run import load_run
    from latentspec.train.sample_quality import feature_network

    spec, _ = load_run(run)
    logits, _ = feature_network(run, "logits")
    test = SplitData.build(spec, "test")
    pred = logits(test.fields["x"].numpy()).argmax(1)
    return float((pred == test.fields["y"].numpy()).mean())


@register("vae_mnist", "The MNIST VAE (the quick start's spec)", "Kingma & Welling 2014")
def vae_mnist(ctx: Context) -> dict[str, Any]:
    from latentspec.run import load_run
    from latentspec.train.sample_quality import feature_network, quality_of, real_images

    quick = MNIST_QUICK if ctx.quick else []
    n = 100 if ctx.quick else SAMPLES
    cls = ctx.train("specs/classifier_mnist.yaml", "classifier_mnist", quick)
    vae = ctx.train("specs/vae_mnist.yaml", "vae_mnist", quick)
    ev = ctx.evaluate(vae, "--iwae", str(IWAE_K), "--probe", "y", "--features", cls, "--samples", str(n))
    claims = ctx.check(vae)

    spec, _ = load_run(vae)
    features, _ = feature_network(cls)
    test = real_images(spec, "test")[:n]
    train = real_images(spec, "train")  # a random subset: the rows are stored by class
    real = train[np.random.default_rng(0).choice(len(train), n, replace=False)]
    quality = {
        "real digits (training split)": quality_of(features, test, real),
        "VAE samples (`eval --features`)": ev["sample_quality"],
        "blurred uniform noise": quality_of(features, test, blurred_noise(n, test.shape[1:])),
    }
    t = ev["test"]
    numbers = {
        "neg_elbo": t["neg_elbo"],
        "iwae_nll": t["iwae_nll"],
        "iwae_samples": t["iwae_samples"],
        "active_units": t["active_units"],
        "latent_dim": t["latent_dim"],
        "probe_accuracy": t["probe_accuracy"],
        "epochs": len(epoch_rows(vae)),
        "train_seconds": sum(r.get("seconds", 0.0) for r in epoch_rows(vae)),
        "classifier_test_accuracy": classifier_accuracy(cls),
        "sample_quality": {
            k: {m: v[m] for m in ("fd", "kid", "kid_std", "precision", "recall", "real", "generated")}
            for k, v in quality.items()
        },
    }
    rows = [
        ("test −ELBO, nats (single sample)", f"{t['neg_elbo']:.1f}", None),
        (f"IWAE k = {IWAE_K} bound on −log p(x), nats", f"{t['iwae_nll']:.1f}", None),
        ("active units", f"{t['active_units']} / {t['latent_dim']}", None),
        ("linear probe of the codes, test accuracy", f"{t['probe_accuracy']:.1%}", None),
        *claim_rows(claims),
    ]
    return {"numbers": numbers, "claims": {"vae_mnist": claims}, "figures": [], "rows": rows}
