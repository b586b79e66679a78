"""An ``optimize:`` entry whose term is ``bernoulli_nll`` (BCE with logits) exports to ONNX.

Regression: its gradient was traced through ATen's composite BCE-with-logits kernel, which builds
1 − x with ``aten.empty_permuted``, and the ONNX exporter has no translation for that op
(``latentspec export`` failed on ``ae_mnist`` with a `bernoulli_nll` inversion).
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from latentspec.export._optimize import OptimizeGraph, _PerExample

SPEC = """\
latentspec: 1
name: ae_bernoulli_invert
seed: 0
data:
  dataset: mnist5k
  split: {train: 64, test: 32}
  fields:
    x: {from: images, scale: [0, 1], shape: [1, 28, 28]}
  batch: 32
latents:
  z: {dim: 6, prior: none}
nodes:
  enc:    {module: mlp, in: x, out: z, hidden: [16], activation: relu, dim: 6}
  dec:    {module: mlp, in: z, out: x_logits, hidden: [16], activation: relu, shape: [1, 28, 28]}
  x_mean: {op: sigmoid, in: x_logits}
objective:
  recon: {term: bernoulli_nll, in: [x_logits, x]}
train:
  optimizer: {name: adam, lr: 1.0e-3}
  epochs: 1
export:
  encode: {in: [x], out: [z]}
  invert: {in: [x], optimize: z, terms: [recon], steps: 20, lr: 0.05, out: [z, x_mean]}
"""


@pytest.fixture(scope="module")
def bernoulli_bundle(tmp_path_factory):
    from latentspec.compiler import compile_spec
    from latentspec.export import export_model
    from latentspec.spec import load_spec

    spec = load_spec(SPEC, text=True)
    model = compile_spec(spec)
    out = str(tmp_path_factory.mktemp("bernoulli") / "bundle")
    return spec, model, out, export_model(spec, model, out, formats="onnx", entries=["invert"])


def test_the_step_graph_has_no_empty_permuted(bernoulli_bundle):
    spec, model, _, _ = bernoulli_bundle
    og = OptimizeGraph(model, spec.export["invert"])
    g = torch.Generator().manual_seed(0)
    z, x = torch.randn(3, 6, generator=g), torch.rand(3, 1, 28, 28, generator=g)
    targets = {str(n.target) for n in og.trace(z, [x]).graph.nodes if n.op == "call_function"}
    assert not any("empty_permuted" in t for t in targets), sorted(targets)


def test_loss_and_gradient_match_autograd(bernoulli_bundle):
    _, model, root, manifest = bernoulli_bundle
    assert manifest["entries"]["invert"]["kind"] == "optimize"
    g = torch.Generator().manual_seed(1)
    z, x = torch.randn(5, 6, generator=g), torch.rand(5, 1, 28, 28, generator=g)
    session = ort.InferenceSession(os.path.join(root, "invert.onnx"), providers=["CPUExecutionProvider"])
    loss, grad, x_mean = session.run(None, {"z": z.numpy(), "x": x.numpy()})
    zz = z.clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model.module_of("dec")(zz)
        per_example = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        (expected,) = torch.autograd.grad(per_example.sum(), zz)
    np.testing.assert_allclose(loss, per_example.detach().numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(grad, expected.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(x_mean, torch.sigmoid(logits).detach().numpy(), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"reduction": "sum"},
        {"reduction": "none"},
        {"pos_weight": torch.full((1, 4, 4), 3.0)},
        {"weight": torch.rand(1, 4, 4, generator=torch.Generator().manual_seed(2))},
    ],
)
def test_written_out_bce_with_logits_matches_torch(kwargs):
    g = torch.Generator().manual_seed(0)
    logits, x = 30 * torch.randn(4, 1, 4, 4, generator=g), torch.rand(4, 1, 4, 4, generator=g)  # large: stability
    with _PerExample():
        got = F.binary_cross_entropy_with_logits(logits, x, **kwargs)
    want = F.binary_cross_entropy_with_logits(logits, x, **{**kwargs, "reduction": "none"})
    reduction = kwargs.get("reduction", "mean")
    want = {"mean": want.flatten(1).mean(1), "sum": want.sum(), "none": want}[reduction]
    torch.testing.assert_close(got, want)
