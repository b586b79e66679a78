"""Small specs for the exporter tests (no training needed)."""

GLO_SPEC = """\
latentspec: 1
name: glo_tiny
seed: 0
data:
  dataset: mnist5k
  split: {train: 64, test: 32}
  fields:
    x: {from: images, scale: [0, 1], shape: [1, 28, 28]}
    i: {from: index}
  batch: 32
latents:
  z: {dim: 8, table: {index: i}, project: unit_l2, init: pca}
nodes:
  gen:   {module: conv_decoder, in: z, out: x_logits, shape: [1, 28, 28], channels: [8, 4]}
  x_hat: {op: sigmoid, in: x_logits}
objective:
  rec: {term: laplacian_l1, in: [x_hat, x], levels: 2}
train:
  optimizer: {name: sgd, lr: 1.0}
  epochs: 1
export:
  decode:  {in: [z], out: [x_hat]}
  invert:  {in: [x], optimize: z, terms: [rec], steps: 40, lr: 0.05, out: [z, x_hat]}
  inpaint:
    in: [x, mask]
    inputs: {mask: {shape: [1, 28, 28], meaning: mask}}
    optimize: z
    terms: [{term: masked_recon, in: [x_hat, x, mask]}]
    steps: 40
    starts: 2
    out: [x_hat]
"""

LOOP_SPEC = """\
latentspec: 1
name: loop_tiny
seed: 0
data:
  dataset: {hands: {size: 48}}
  split: {train: 32, test: 16}
  fields: {x: {from: image}, p: {from: joints_flat}}
  batch: 16
nodes:
  predictor: {module: conv_encoder, in: x, out: p0, channels: [4, 8], dim: 42}
  synth:     {module: conv_decoder, in: p, out: x_syn, shape: [1, 64, 64], channels: [8, 4]}
  p_prime:   {op: perturb, in: [p0, p], sigma: 0.05, detach: true}
  synth_pp:  {use: synth, in: p_prime, out: x_syn_pp}
  updater:   {module: conv_encoder, in: [x, x_syn_pp], out: dp, channels: [4, 8], dim: 42}
  p_dd:      {op: add, in: [p_prime, dp]}
  refine:
    op: loop
    steps: 2
    state: {q: p0}
    body:
      x_q:  {use: synth, in: q}
      d_q:  {use: updater, in: [x, x_q]}
      q:    {op: add, in: [q, d_q]}
    out: p_refined
objective:
  pose:  {term: mse, in: [p0, p]}
  synth: {term: mse, in: [x_syn, x]}
  hinge: {term: hinge_update, in: [p_dd, p_prime, p], lambda: 0.6}
train:
  stages:
    - {name: predictor, trainable: [predictor], terms: [pose],  epochs: 1}
    - {name: synth,     trainable: [synth],     terms: [synth], epochs: 1}
    - {name: updater,   trainable: [updater],   terms: [hinge], epochs: 1}
export:
  predict: {in: [x], out: [p0]}
  refine:  {in: [x], out: [p_refined], iterations: 3}
"""


# GLO with an objective that mixes the examples of a batch (a KL to a target activation rate
# of the batch mean): it has no loss per example, so an optimize entry over it is refused.
GLO_MIXING_SPEC = GLO_SPEC.replace(
    "invert:  {in: [x], optimize: z, terms: [rec], steps: 40, lr: 0.05, out: [z, x_hat]}",
    "invert:  {in: [x], optimize: z, terms: [{term: activation_sparsity, in: [x_hat], kind: kl}], out: [z]}",
)
