"""Items 3 and 4 of "Seed results I": the VAE's latent size, its 2-D manifold, and IWAE.

Every VAE here trains for :data:`EPOCHS` epochs on the 4,000 training digits of ``mnist5k``
(the same data, networks, optimiser and epochs for each d, and for the VAE and the IWAE), and is
measured on the 1,000 test digits by ``latentspec eval --iwae 500``: the single-sample −ELBO,
the IWAE-500 estimate of −log p(x) (Burda et al.'s k = 5000 is out of reach on 2 cores; 500 is
the issue's choice) and the active units (Burda et al.: Cov_x(E_q[z_u]) > 0.01).

A claim about one run is a `claims:` entry checked by `latentspec check`; the zoo's
``specs/vae_mnist.yaml`` states none (tests append their own), so the sweep adds them with
``--set claims=[...]``, which the resolved ``spec.yaml`` of each run keeps. The claims comparing
the IWAE with the VAE are ``specs/iwae_mnist.yaml``'s own, on its baseline ``vae``: `latentspec
check IWAE_RUN --baseline vae=VAE_RUN` reads the VAE run's eval.json for them.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from benchmarks.seeds import Context, claim_rows, register, sides

EPOCHS = 20  # ~2 s an epoch for the VAE on one idle core; the test −ELBO has flattened by then
IWAE_K = 500  # samples of the IWAE estimate of −log p(x)
LATENT_SIZES = (2, 5, 10, 20, 50)
QUICK = ["data.split.train=200", "data.split.test=100", "data.batch=50"]
IWAE_TIGHTER = (
    "{name: iwae_tighter, metric: test.iwae_nll, lt: test.neg_elbo,"
    " doc: 'the IWAE-500 estimate of −log p(x) is below the −ELBO (Burda et al. 2016, Theorem 1)'}"
)
COLLAPSE = (
    "{name: inactive_units, metric: test.active_units, lt: test.latent_dim,"
    " doc: 'some of the 50 units are inactive (Burda et al. 2016, section 5.2)'}"
)


def _sets(ctx: Context, *extra: str) -> list[str]:
    """The run's --set list: the epochs (1 in --quick), no sample grids, the quick size."""
    base = [f"train.epochs={1 if ctx.quick else EPOCHS}", "train.samples_every=0"]
    return [*base, *(QUICK if ctx.quick else []), *extra]


def _k(ctx: Context) -> int:
    return 5 if ctx.quick else IWAE_K


def _vae_numbers(test: dict) -> dict[str, Any]:
    keys = ("neg_elbo", "neg_elbo_recon", "neg_elbo_kl", "iwae_nll", "iwae_samples", "active_units", "latent_dim")
    return {k: test[k] for k in keys}


@register(
    "vae_latent_size",
    "VAE latent size: −ELBO, IWAE-500 NLL and active units at d = 2, 5, 10, 20, 50",
    "Kingma & Welling 2014; Burda et al. 2016",
)
def vae_latent_size(ctx: Context) -> dict[str, Any]:
    per_d, claims = {}, {}
    for d in LATENT_SIZES:
        said = f"[{IWAE_TIGHTER}, {COLLAPSE}]" if d == max(LATENT_SIZES) else f"[{IWAE_TIGHTER}]"
        run = ctx.train("specs/vae_mnist.yaml", f"vae_d{d}", _sets(ctx, f"latents.z.dim={d}", f"claims={said}"))
        per_d[str(d)] = _vae_numbers(ctx.evaluate(run, "--iwae", str(_k(ctx)))["test"])
        claims[f"vae_d{d}"] = ctx.check(run)
    rows = [
        (
            f"test −ELBO / IWAE-{_k(ctx)} NLL / active units at d = {d}",
            f"{v['neg_elbo']:.2f} / {v['iwae_nll']:.2f} / {v['active_units']} of {d}",
            None,
        )
        for d, v in per_d.items()
    ]
    for d, checked in claims.items():
        rows += [(f"d = {d[len('vae_d') :]}: {c['claim']} ({c['name']})", sides(c), c["holds"]) for c in checked]
    return {
        "numbers": {"epochs": EPOCHS if not ctx.quick else 1, "d": per_d},
        "claims": claims,
        "figures": [],
        "rows": rows,
    }


@register(
    "vae2d",
    "A 2-D VAE's learned MNIST manifold and its latent space",
    "Kingma & Welling 2014 (Fig. 4)",
)
def vae2d(ctx: Context) -> dict[str, Any]:
    run = ctx.train("specs/vae2d_mnist.yaml", "vae2d_mnist", _sets(ctx))
    test = ctx.evaluate(run, "--iwae", str(_k(ctx)))["test"]
    claims = ctx.check(run)
    viz = os.path.join(run, "viz")
    ctx.cli("viz", run, "--out", viz)
    figures = []
    for name in ("manifold.png", "scatter.png"):
        path = ctx.figure(f"vae2d_{name}")
        shutil.copyfile(os.path.join(viz, name), path)
        figures.append(path)
    rows = [
        (f"test −ELBO / IWAE-{_k(ctx)} NLL, d = 2", f"{test['neg_elbo']:.2f} / {test['iwae_nll']:.2f}", None),
        *claim_rows(claims),
    ]
    numbers = {"epochs": EPOCHS if not ctx.quick else 1, **_vae_numbers(test)}
    return {"numbers": numbers, "claims": {"vae2d_mnist": claims}, "figures": figures, "rows": rows}


@register(
    "iwae",
    "IWAE (k = 5) against the VAE: same data, networks and epochs",
    "Burda et al. 2016 (Table 1)",
)
def iwae(ctx: Context) -> dict[str, Any]:
    k = str(_k(ctx))
    vae_run = ctx.train("specs/vae_mnist.yaml", "vae_mnist", _sets(ctx))
    vae = _vae_numbers(ctx.evaluate(vae_run, "--iwae", k)["test"])
    iwae_run = ctx.train("specs/iwae_mnist.yaml", "iwae_mnist", _sets(ctx))
    iw = _vae_numbers(ctx.evaluate(iwae_run, "--iwae", k)["test"])
    checked = ctx.check(iwae_run, {"vae": vae_run})  # the spec's claims, two of them on the VAE run
    rows = [
        (
            f"VAE / IWAE k=5: test −ELBO, IWAE-{k} NLL, active units",
            f"VAE {vae['neg_elbo']:.2f}, {vae['iwae_nll']:.2f}, {vae['active_units']}; "
            f"IWAE {iw['neg_elbo']:.2f}, {iw['iwae_nll']:.2f}, {iw['active_units']}",
            None,
        ),
        *claim_rows(checked),
    ]
    numbers = {"epochs": EPOCHS if not ctx.quick else 1, "vae": vae, "iwae": iw}
    return {"numbers": numbers, "claims": {"iwae_mnist": checked}, "figures": [], "rows": rows}
