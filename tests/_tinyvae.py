"""A tiny VAE spec for tests (tracking, sweeps, compare, claims, fitted priors): 48 training rows,
16-unit MLPs. :func:`tiny_vae` varies the parts tests need; ``TINY_VAE`` is the default text."""

from __future__ import annotations

import os


def tiny_vae(
    name: str = "tiny_vae",
    *,
    rows: tuple[int, int] = (48, 16),
    batch: int = 16,
    dim: int = 4,
    labels: bool = False,
    latent: str = "",
    train: str = "  optimizer: {name: adam, lr: 1.0e-3}\n  epochs: 1\n",
    export: str = "  sample: {in: [], out: [x_mean]}\n",
) -> str:
    """The spec's text: ``latent`` is appended inside ``z``'s mapping (``, prior: gaussian``),
    ``train`` and ``export`` are the sections' indented bodies."""
    y = "    y: {from: labels, classes: 10}\n" if labels else ""
    return f"""\
latentspec: 1
name: {name}
data:
  dataset: mnist5k
  split: {{train: {rows[0]}, test: {rows[1]}}}
  fields:
    x: {{from: images, scale: [0, 1], shape: [1, 28, 28]}}
{y}  batch: {batch}
latents:
  z: {{dim: {dim}{latent}}}
nodes:
  enc:    {{module: mlp, in: x, out: h, hidden: [16]}}
  post:   {{module: gaussian_head, in: h, out: [z_mu, z_logvar], latent: z}}
  draw:   {{op: reparameterize, in: [z_mu, z_logvar], out: z}}
  dec:    {{module: mlp, in: z, out: x_logits, hidden: [16], shape: [1, 28, 28]}}
  x_mean: {{op: sigmoid, in: x_logits}}
objective:
  recon: {{term: bernoulli_nll, in: [x_logits, x]}}
  kl:    {{term: gaussian_kl, in: [z_mu, z_logvar]}}
train:
{train}export:
{export}"""


TINY_VAE = tiny_vae()


def write_tiny(folder, extra: str = "") -> str:
    """The tiny spec (plus ``extra`` YAML appended at the top level) as ``folder/tiny.yaml``."""
    path = os.path.join(str(folder), "tiny.yaml")
    with open(path, "w") as f:
        f.write(TINY_VAE + extra)
    return path
