"""A tiny VAE spec for tracking, sweep and compare tests: 48 training rows, 16-unit MLPs."""

from __future__ import annotations

import os

TINY_VAE = """\
latentspec: 1
name: tiny_vae
data:
  dataset: mnist5k
  split: {train: 48, test: 16}
  fields:
    x: {from: images, scale: [0, 1], shape: [1, 28, 28]}
  batch: 16
latents:
  z: {dim: 4}
nodes:
  enc:    {module: mlp, in: x, out: h, hidden: [16]}
  post:   {module: gaussian_head, in: h, out: [z_mu, z_logvar], latent: z}
  draw:   {op: reparameterize, in: [z_mu, z_logvar], out: z}
  dec:    {module: mlp, in: z, out: x_logits, hidden: [16], shape: [1, 28, 28]}
  x_mean: {op: sigmoid, in: x_logits}
objective:
  recon: {term: bernoulli_nll, in: [x_logits, x]}
  kl:    {term: gaussian_kl, in: [z_mu, z_logvar]}
train:
  optimizer: {name: adam, lr: 1.0e-3}
  epochs: 1
export:
  sample: {in: [], out: [x_mean]}
"""


def write_tiny(folder, extra: str = "") -> str:
    """The tiny spec (plus ``extra`` YAML appended at the top level) as ``folder/tiny.yaml``."""
    path = os.path.join(str(folder), "tiny.yaml")
    with open(path, "w") as f:
        f.write(TINY_VAE + extra)
    return path
