"""`latentspec eval`: the test objective, and for VAEs the ELBO, the IWAE bound, active units,
and a linear probe of the codes."""

from __future__ import annotations

import dataclasses
import math
import os

import torch

from latentspec.errors import RunError
from latentspec.spec import Spec
from latentspec.train.checkpoint import atomic_write_text
from latentspec.train.data import SplitData
from latentspec.train.trainer import build_term, evaluate_terms, held_out_terms, load_run

LOG_2PI = math.log(2 * math.pi)


@dataclasses.dataclass(frozen=True)
class VaeParts:
    """The tensors of a Gaussian-posterior latent model, found in the spec."""

    x: str  # the data field the likelihood scores
    mu: str
    logvar: str
    z: str
    logits: str  # the likelihood's first input (logits or mean)
    likelihood: str  # bernoulli_nll | gaussian_nll
    variance: float = 1.0


def find_vae(spec: Spec) -> VaeParts | None:
    iw = next((t for t in spec.objective.values() if t.term == "iwae_bound"), None)
    if iw is not None:
        logits, x, z, mu, logvar = iw.inputs
        lik = "bernoulli_nll" if iw.cfg.get("likelihood", "bernoulli") == "bernoulli" else "gaussian_nll"
        return VaeParts(x, mu, logvar, z, logits, lik)
    kl = next((t for t in spec.objective.values() if t.term == "gaussian_kl"), None)
    draw = next((n for n in spec.nodes.values() if n.type == "reparameterize"), None)
    lik = next(
        (
            t
            for t in spec.objective.values()
            if t.term in ("bernoulli_nll", "gaussian_nll") and len(t.inputs) == 2 and t.inputs[1] in spec.data.fields
        ),
        None,
    )
    if kl is None or draw is None or lik is None or tuple(kl.inputs) != tuple(draw.inputs):
        return None
    return VaeParts(
        lik.inputs[1],
        draw.inputs[0],
        draw.inputs[1],
        draw.outputs[0],
        lik.inputs[0],
        lik.term,
        float(lik.cfg.get("variance") or 1.0),
    )


def _log_lik(v: VaeParts, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) per example, summed over dimensions."""
    out, x = out.flatten(1), x.flatten(1)
    if v.likelihood == "bernoulli_nll":
        return -torch.nn.functional.binary_cross_entropy_with_logits(out, x, reduction="none").sum(1)
    return -0.5 * (((x - out) ** 2) / v.variance + math.log(v.variance) + LOG_2PI).sum(1)


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * (((z - mu) ** 2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


@torch.no_grad()
def vae_metrics(spec: Spec, model, data: SplitData, iwae: int | None, seed: int) -> dict:
    v = find_vae(spec)
    enc, _ = model.graph([v.mu, v.logvar], [v.x], training=False)
    dec, _ = model.graph([v.logits], [v.z], training=False)
    g = torch.Generator().manual_seed(seed)
    elbo_sum, iw_sum, n, mus = 0.0, 0.0, 0, []
    for batch in data.batches(spec, 0, shuffle=False, batch=250):
        x = batch[v.x]
        mu, logvar = enc(x)
        mus.append(mu)
        std = torch.exp(0.5 * logvar)
        z = mu + std * torch.randn(mu.shape, generator=g)
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
        elbo_sum += float((_log_lik(v, dec(z), x) - kl).sum())
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
    out = {"neg_elbo": -elbo_sum / n, "active_units": int((mus.var(0) > 0.01).sum()), "latent_dim": mus.shape[1]}
    if iwae:
        out["iwae_nll"] = -iw_sum / n
        out["iwae_samples"] = iwae
    return out


def codes(spec: Spec, model, data: SplitData) -> torch.Tensor:
    """The deterministic code of every example: the posterior mean of a VAE, or the `encode`
    entry's first output."""
    v = find_vae(spec)
    if v is not None:
        gm, _ = model.graph([v.mu], [v.x], training=False)
        field = v.x
    elif "encode" in spec.export and len(spec.export["encode"].inputs) == 1:
        e = spec.export["encode"]
        gm, _ = model.graph([e.outputs[0]], list(e.inputs), training=False)
        field = e.inputs[0]
    else:
        raise RunError("--probe needs a VAE or an `encode` entry point with one input to take codes from")
    with torch.no_grad():
        return torch.cat([gm(b[field]).flatten(1) for b in data.batches(spec, 0, shuffle=False, batch=500)])


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
    run: str, *, iwae: int | None = None, probe: str | None = None, which: str = "last", device: str = "cpu"
) -> dict:
    spec, model = load_run(run, which=which, device=device)
    if "test" not in spec.data.split:
        raise RunError("the spec's data.split has no test part to evaluate on")
    test = SplitData.build(spec, "test")
    terms = {name: build_term(spec, t) for name, t in spec.objective.items()}
    names = held_out_terms(spec, tuple(spec.objective))
    result = {"test": evaluate_terms(spec, model, terms, names, test, torch.device(device))}
    if find_vae(spec) is not None:
        result["test"].update(vae_metrics(spec, model, test, iwae, spec.seed + 104729))
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
    result["checkpoint"] = which
    import json

    atomic_write_text(os.path.join(run, "eval.json"), json.dumps(result, indent=2) + "\n")
    return result
