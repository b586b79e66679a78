"""`latentspec eval`: the test objective, and for VAEs the ELBO, the IWAE bound, active units,
and a linear probe of the codes.

Every key written to eval.json is declared, with the flag that asks for it, in
``latentspec.spec._evalkeys`` (claims are validated against it; tests/test_claims.py checks that
the two agree): a new metric is declared there too."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch

from latentspec.data.pipeline import SplitData
from latentspec.errors import RunError
from latentspec.run import build_term, load_run
from latentspec.run._codes import VaeParts, code_field, code_tensors, codes, conditions, find_vae  # noqa: F401  (moved to run; re-exported)
from latentspec.spec import Spec
from latentspec.train.heldout import inversion_metrics
from latentspec.train.trainer import evaluate_terms, held_out_terms
from latentspec_runtime._atomic import write_text as atomic_write_text

LOG_2PI = math.log(2 * math.pi)


def _log_lik(v: VaeParts, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) per example, summed over dimensions."""
    out, x = out.flatten(1), x.flatten(1)
    if v.likelihood == "bernoulli":
        return -torch.nn.functional.binary_cross_entropy_with_logits(out, x, reduction="none").sum(1)
    return -0.5 * (((x - out) ** 2) / v.variance + math.log(v.variance) + LOG_2PI).sum(1)


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * (((z - mu) ** 2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


@torch.no_grad()
def vae_metrics(spec: Spec, model, data: SplitData, iwae: int | None, seed: int) -> dict:
    v = find_vae(spec)
    # a conditional VAE's encoder and decoder also read a label: fed from the batch
    enc_in = [v.x, *conditions(spec, [v.mu, v.logvar], [v.x])]
    dec_in = conditions(spec, [v.logits], [v.z])
    enc, _ = model.graph([v.mu, v.logvar], enc_in, training=False)
    dec_gm, _ = model.graph([v.logits], [v.z, *dec_in], training=False)
    g = torch.Generator().manual_seed(seed)
    elbo_sum, iw_sum, n, mus = 0.0, 0.0, 0, []
    rec_sum, kl_sum = 0.0, 0.0  # neg_elbo = rec + kl, per example
    for batch in data.batches(spec, 0, shuffle=False, batch=250):
        x = batch[v.x]
        mu, logvar = enc(*(batch[t] for t in enc_in))

        def dec(z, batch=batch):
            return dec_gm(z, *(batch[t] for t in dec_in))

        mus.append(mu)
        std = torch.exp(0.5 * logvar)
        z = mu + std * torch.randn(mu.shape, generator=g)
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
        log_lik = _log_lik(v, dec(z), x)
        rec_sum -= float(log_lik.sum())
        kl_sum += float(kl.sum())
        elbo_sum += float((log_lik - kl).sum())
        if iwae:
            logw = []
            for _ in range(iwae):
                zk = mu + std * torch.randn(mu.shape, generator=g)
                logw.append(
                    _log_lik(v, dec(zk), x)
                    + _log_normal(zk, torch.zeros_like(mu), torch.zeros_like(mu))
                    - _log_normal(zk, mu, logvar)
                )
            iw_sum += float((torch.logsumexp(torch.stack(logw), 0) - math.log(iwae)).sum())
        n += len(x)
    mus = torch.cat(mus)
    out = {
        "neg_elbo": -elbo_sum / n,
        # its two parts (they add up to neg_elbo; see docs/metrics.md for how they relate to the
        # objective's per-term means)
        "neg_elbo_recon": rec_sum / n,
        "neg_elbo_kl": kl_sum / n,
        "active_units": int((mus.var(0) > 0.01).sum()),
        "latent_dim": mus.shape[1],
    }
    if iwae:
        out["iwae_nll"] = -iw_sum / n
        out["iwae_samples"] = iwae
    return out


def linear_probe(train_x, train_y, test_x, test_y, classes: int, steps: int = 300) -> float:
    """Multinomial logistic regression (L-BFGS, small L2) on standardised codes -> test accuracy."""
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    tx, vx = (train_x - mean) / std, (test_x - mean) / std
    torch.manual_seed(0)
    lin = torch.nn.Linear(tx.shape[1], classes).double()
    tx, vx = tx.double(), vx.double()
    opt = torch.optim.LBFGS(lin.parameters(), lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(tx), train_y) + 1e-4 * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float((lin(vx).argmax(1) == test_y).double().mean())


def evaluate_run(
    run: str,
    *,
    iwae: int | None = None,
    probe: str | None = None,
    which: str = "last",
    device: str = "cpu",
    allow_python: bool = False,
    features: str | None = None,
    feature_tensor: str | None = None,
    samples: int | None = None,
    disentanglement: bool = False,
    pca: bool = False,
    class_fidelity: str | None = None,
    edit_fidelity: Sequence[str] | None = None,
    edit_step: float | None = None,
) -> dict:
    """Evaluate a run on its test split and write ``eval.json``.

    ``features`` (a run with a `features` entry, or ``feature_tensor``) adds sample quality
    (FD, KID, precision/recall of ``samples`` draws of the `sample` entry against the test
    images); ``disentanglement`` adds MIG, DCI, SAP and the FactorVAE score against the
    dataset's factors; ``pca`` compares the `decode` entry with PCA of its data field
    (:mod:`latentspec.train.subspace`); ``class_fidelity`` (a classifier run) classifies samples
    drawn per class from a conditional sampling entry (:mod:`latentspec.train.class_fidelity`);
    ``edit_fidelity`` (directions, e.g. ``gaze_right=gaze_x:-1..-0.5:0.5..1``) edits held-out items
    of a procedural dataset by ``edit_step`` of a factor and compares them with the items rendered
    with that factor changed (:mod:`latentspec.train.edit_fidelity`). The amortisation gap is reported whenever an `optimize:` entry has an
    encoder for its code, and the error per loop iteration whenever a `refine` entry has terms on
    its output (:mod:`latentspec.train.refinement`). See docs/metrics.md.
    """
    if feature_tensor and not features:
        raise RunError("--feature-tensor needs --features FEATURE_RUN")
    if samples is not None and not (features or class_fidelity):
        raise RunError("--samples needs --features FEATURE_RUN or --class-fidelity CLASSIFIER_RUN")
    if edit_step is not None and not edit_fidelity:
        raise RunError("--edit-step needs --edit-fidelity DIRECTION")
    spec, model = load_run(run, which=which, device=device, allow_python=allow_python)
    if "test" not in spec.data.split:
        raise RunError("the spec's data.split has no test part to evaluate on")
    test = SplitData.build(spec, "test")
    terms = {name: build_term(spec, t) for name, t in spec.objective.items()}
    names = held_out_terms(spec, tuple(spec.objective))
    result = {"test": evaluate_terms(spec, model, terms, names, test, torch.device(device))}
    # a latent-table model (GLO): its `invert` entry's fit of test rows, as in training
    result["test"].update(inversion_metrics(spec, model, tuple(spec.objective), test, torch.device(device)))
    if find_vae(spec) is not None:
        result["test"].update(vae_metrics(spec, model, test, iwae, (spec.seed + 104729) % 2**64))
    elif iwae:
        raise RunError(
            "--iwae needs a VAE: a reparameterize node, a gaussian_kl term on its inputs and a bernoulli_nll or gaussian_nll likelihood"
        )
    if probe:
        if probe not in spec.data.fields or spec.infos[probe].dtype != "int64":
            raise RunError(
                f"--probe {probe}: not an integer label field of the spec (fields: {', '.join(spec.data.fields)})"
            )
        train = SplitData.build(spec, "train")
        classes = spec.infos[probe].classes or int(train.fields[probe].max()) + 1
        result["test"]["probe_accuracy"] = linear_probe(
            codes(spec, model, train), train.fields[probe], codes(spec, model, test), test.fields[probe], classes
        )
        result["probe_field"] = probe
    if features:
        from latentspec.train.sample_quality import real_images, sample_quality_report

        result["sample_quality"] = sample_quality_report(
            spec,
            model,
            real_images(spec, "test"),
            features,
            samples=samples,
            tensor=feature_tensor,
            seed=(spec.seed + 15485863) % 2**64,
        )
    if class_fidelity:
        from latentspec.train.class_fidelity import class_fidelity_report

        result["class_fidelity"] = class_fidelity_report(
            spec, model, test, class_fidelity, samples=samples, seed=(spec.seed + 32452843) % 2**63, device=device
        )
    if edit_fidelity:
        from latentspec.train.edit_fidelity import edit_fidelity_report

        result["edit"] = edit_fidelity_report(spec, model, run, edit_fidelity, edit_step, device)
    if pca:
        from latentspec.train.subspace import pca_report

        result["pca"] = pca_report(spec, model, SplitData.build(spec, "train"), test)
    if disentanglement:
        from latentspec.train.disentanglement import disentanglement_report

        result["disentanglement"] = disentanglement_report(spec, model, test, seed=spec.seed)
    from latentspec.train.amortisation import amortisation_report

    gap = amortisation_report(spec, model, test)
    if gap:
        result["amortisation"] = gap
    from latentspec.train.refinement import refinement_report

    refined = refinement_report(spec, model, test, torch.device(device))
    if refined:
        result["refinement"] = refined
    result["checkpoint"] = which
    import json

    atomic_write_text(os.path.join(run, "eval.json"), json.dumps(result, indent=2) + "\n")
    return result
