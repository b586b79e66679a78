"""term: perceptual — λ_px·mean|x̂ − x| + Σ_l λ_l·mean|Φ_l(x̂) − Φ_l(x)|, Φ frozen, from a file."""

import re

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from latentspec.components._kinds import TERMS
from latentspec.components._node import ShapeError

PERCEPTUAL = TERMS["perceptual"]
IMAGES = {"x_hat": (1, 8, 8), "x": (1, 8, 8)}


@pytest.fixture
def weights(tmp_path):
    state = {
        "blocks.0.weight": torch.randn(4, 3, 3, 3),
        "blocks.0.bias": torch.randn(4),
        "blocks.1.weight": torch.randn(5, 4, 3, 3),
        "blocks.1.bias": torch.randn(5),
    }
    path = tmp_path / "features.safetensors"
    save_file(state, str(path))
    return str(path), state


def _features(x, state):
    h0 = F.relu(F.conv2d(x, state["blocks.0.weight"], state["blocks.0.bias"], padding=1))
    h1 = F.relu(F.conv2d(F.avg_pool2d(h0, 2), state["blocks.1.weight"], state["blocks.1.bias"], padding=1))
    return h0, h1


def test_value_with_grayscale_repeated(make, weights):
    path, state = weights
    cfg = {"weights": path, "channels": [4, 5], "layer_weights": [0.5, 2.0], "pixel_weight": 3.0}
    comp, ctx = make(PERCEPTUAL, cfg, IMAGES)
    comp.infer(ctx)
    loss_fn = comp.build(ctx)
    pred, target = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)
    fp, ft = (
        _features(pred.expand(-1, 3, -1, -1), state),
        _features(target.expand(-1, 3, -1, -1), state),
    )
    expected = (
        3.0 * (pred - target).abs().mean() + 0.5 * (fp[0] - ft[0]).abs().mean() + 2.0 * (fp[1] - ft[1]).abs().mean()
    )
    torch.testing.assert_close(loss_fn(pred, target), expected)


def test_selected_layers_frozen_net_and_gradient(make, weights):
    path, state = weights
    comp, ctx = make(
        PERCEPTUAL,
        {"weights": path, "channels": [4, 5], "layers": [1], "pixel_weight": 0.0},
        {"x_hat": (3, 8, 8), "x": (3, 8, 8)},
    )
    loss_fn = comp.build(ctx).train()
    assert not any(p.requires_grad for p in loss_fn.parameters())
    assert not loss_fn.net.training
    pred, target = torch.rand(2, 3, 8, 8, requires_grad=True), torch.rand(2, 3, 8, 8)
    loss = loss_fn(pred, target)
    torch.testing.assert_close(loss, (_features(pred, state)[1] - _features(target, state)[1]).abs().mean())
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_missing_file(make, tmp_path):
    path = str(tmp_path / "none.safetensors")
    comp, ctx = make(PERCEPTUAL, {"weights": path, "channels": [4]}, IMAGES)
    with pytest.raises(FileNotFoundError, match=re.escape(f"perceptual: weights file {path!r} not found")):
        comp.build(ctx)


def test_file_that_does_not_fit_the_channels(make, weights):
    path, _ = weights
    comp, ctx = make(PERCEPTUAL, {"weights": path, "channels": [4, 6]}, IMAGES)
    with pytest.raises(ValueError, match=re.escape("does not fit channels [4, 6]: expected tensors")):
        comp.build(ctx)


def test_images_with_other_channel_counts(make, weights):
    path, _ = weights
    comp, ctx = make(PERCEPTUAL, {"weights": path, "channels": [4, 5]}, {"x_hat": (2, 8, 8), "x": (2, 8, 8)})
    with pytest.raises(ShapeError, match=re.escape("the feature net takes 3 channels, the images have 2")):
        comp.build(ctx)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"layers": [2]}, "perceptual: layers [2] out of range for 2 blocks"),
        ({"layer_weights": [1.0]}, "perceptual: 1 layer_weights for 2 layers [0, 1]"),
    ],
)
def test_infer_errors(make, cfg, message):
    comp, ctx = make(PERCEPTUAL, {"weights": "w.safetensors", "channels": [4, 5], **cfg}, IMAGES)
    with pytest.raises(ShapeError, match=re.escape(message)):
        comp.infer(ctx)
