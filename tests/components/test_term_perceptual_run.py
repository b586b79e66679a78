"""term: perceptual with `run:` — Φ is a trained run's conv_encoder (a classifier's), frozen: one
feature map per conv block, then its linear output; the run is loaded by build_term."""

from __future__ import annotations

import os
import re

import pytest
import torch
from _tiny import tiny_run

from latentspec.components._kinds import TERMS
from latentspec.components._node import ShapeError
from latentspec.errors import RunError
from latentspec.run import build_term, load_run
from latentspec.spec import load_spec

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = os.path.join(ROOT, "specs", "ae_perceptual_mnist.yaml")
PERCEPTUAL = TERMS["perceptual"]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> str:
    return tiny_run("runs/classifier_mnist", str(tmp_path_factory.mktemp("classifier")))


def term(classifier: str, *sets: str):
    spec = load_spec(SPEC, [f"objective.rec.run={classifier}", *sets])
    return build_term(spec, spec.objective["rec"])


@pytest.mark.slow
def test_features_are_the_classifier_conv_blocks_and_linear_output(classifier):
    t = term(classifier, "objective.rec.layer_weights=[0.5, 2.0, 3.0]", "objective.rec.pixel_weight=1.5")
    _, model = load_run(classifier)
    conv = model.layers.conv  # specs/classifier_mnist.yaml: conv_encoder [64, 128] -> 256
    x, x_hat = torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28, requires_grad=True)

    def feats(v):
        h0 = conv.convs[:3](v)
        h1 = conv.convs[3:](h0)
        return h0, h1, conv.fc(h1.flatten(1))

    with torch.no_grad():
        want = 1.5 * (x_hat - x).abs().mean() + sum(
            w * (a - b).abs().mean() for w, a, b in zip((0.5, 2.0, 3.0), feats(x_hat), feats(x), strict=True)
        )
    got = t(x_hat, x)
    assert torch.allclose(got, want, atol=1e-5)
    got.backward()
    assert x_hat.grad is not None and x_hat.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in t.net.parameters())  # Φ stays frozen
    t.train()
    assert not t.net.training


@pytest.mark.slow
def test_a_node_that_is_no_conv_encoder_is_refused(classifier):
    with pytest.raises(RunError, match=re.escape("has no conv_encoder node 'head'; its conv_encoder nodes are: conv")):
        term(classifier, "objective.rec.node=head")
    with pytest.raises(ShapeError, match=re.escape("perceptual: layers [3] out of range for 3 blocks")):
        term(classifier, "objective.rec.layers=[3]", "objective.rec.layer_weights=[1.0]")


def test_one_feature_net_weights_or_run(make):
    images = {"x_hat": (1, 8, 8), "x": (1, 8, 8)}
    for cfg, msg in [
        ({}, "perceptual needs one feature net: `weights` (a file) or `run` (a trained run)"),
        ({"weights": "f.safetensors", "run": "runs/c", "channels": [4]}, "perceptual needs one feature net"),
        ({"run": "runs/c", "channels": [4]}, "perceptual: `channels` describes a `weights` file"),
        ({"weights": "f.safetensors"}, "perceptual needs at least one entry in `channels`"),
    ]:
        comp, ctx = make(PERCEPTUAL, cfg, images)
        with pytest.raises(ShapeError, match=re.escape(msg)):
            comp.infer(ctx)


def test_a_missing_run_is_a_one_line_run_error(tmp_path):
    spec = load_spec(SPEC, [f"objective.rec.run={tmp_path / 'nowhere'}"])
    with pytest.raises(RunError, match="is not a run directory"):
        build_term(spec, spec.objective["rec"])
