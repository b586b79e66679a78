"""module: mlp — perceptron over the flattened, concatenated inputs."""

import re

import pytest
import torch
from torch import nn

from latentspec.components._kinds import MODULES
from latentspec.components._node import LatentInfo, ShapeError, TensorInfo

MLP = MODULES["mlp"]


def test_encoder_is_linear_relu_over_flattened_image(make):
    comp, ctx = make(MLP, {"hidden": [400]}, {"x": (1, 28, 28)})
    assert comp.infer(ctx) == [TensorInfo((400,))]
    enc = comp.build(ctx)
    h = enc(torch.rand(5, 1, 28, 28))
    assert h.shape == (5, 400)
    assert (h >= 0).all()  # ends with its activation
    assert sum(p.numel() for p in enc.parameters()) == 784 * 400 + 400


def test_decoder_reshapes_to_shape(make):
    comp, ctx = make(MLP, {"hidden": [400], "shape": [1, 28, 28]}, {"z": (20,)})
    assert comp.infer(ctx) == [TensorInfo((1, 28, 28))]
    assert comp.build(ctx)(torch.randn(3, 20)).shape == (3, 1, 28, 28)


def test_parameter_count_equals_pytorch_examples_vae(make):
    class ExamplesVAE(nn.Module):  # pytorch/examples vae/main.py
        def __init__(self):
            super().__init__()
            self.fc1, self.fc21, self.fc22 = (
                nn.Linear(784, 400),
                nn.Linear(400, 20),
                nn.Linear(400, 20),
            )
            self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    enc = make(MLP, {"hidden": [400]}, {"x": (1, 28, 28)})
    post = make(MODULES["gaussian_head"], {"latent": "z"}, {"h": (400,)}, latents=[LatentInfo("z", 20)])
    dec = make(MLP, {"hidden": [400], "shape": [1, 28, 28]}, {"z": (20,)})
    ours = sum(p.numel() for comp, ctx in (enc, post, dec) for p in comp.build(ctx).parameters())
    assert ours == sum(p.numel() for p in ExamplesVAE().parameters()) == 652824


def test_value_matches_hand_computation(make):
    comp, ctx = make(MLP, {"hidden": [2], "dim": 1, "activation": "tanh"}, {"x": (3,)})
    mlp = comp.build(ctx)
    w1, w2 = torch.tensor([[1.0, 0, -1], [0.5, 0.5, 0.5]]), torch.tensor([[2.0, -1.0]])
    with torch.no_grad():
        mlp.net[0].weight.copy_(w1), mlp.net[0].bias.zero_()
        mlp.net[2].weight.copy_(w2), mlp.net[2].bias.fill_(0.25)
    x = torch.tensor([[1.0, 2.0, 3.0]])
    # h = tanh([1 − 3, 0.5 + 1 + 1.5]) = tanh([−2, 3]); y = 2 tanh(−2) − tanh(3) + 0.25
    expected = 2 * torch.tanh(torch.tensor(-2.0)) - torch.tanh(torch.tensor(3.0)) + 0.25
    torch.testing.assert_close(mlp(x), expected.reshape(1, 1))


def test_several_inputs_and_class_inputs_are_concatenated(make):
    comp, ctx = make(MLP, {"hidden": [8]}, {"c": TensorInfo((), "int64", classes=4), "v": (2,), "t": (3, 1)})
    mlp = comp.build(ctx)
    assert mlp.net[0].in_features == 4 + 2 + 3  # the class is one-hot encoded
    c, v, t = torch.tensor([0, 3]), torch.randn(2, 2), torch.randn(2, 3, 1)
    assert mlp(c, v, t).shape == (2, 8)


def test_norm_dropout_and_out_activation(make):
    cfg = {
        "hidden": [16, 16],
        "norm": "layer",
        "dropout": 0.1,
        "dim": 4,
        "out_activation": "sigmoid",
    }
    comp, ctx = make(MLP, cfg, {"x": (5,)})
    assert comp.infer(ctx) == [TensorInfo((4,), range=(0.0, 1.0))]
    mlp = comp.build(ctx).eval()
    kinds = [type(m).__name__ for m in mlp.net]
    assert kinds == ["Linear", "LayerNorm", "ReLU", "Dropout"] * 2 + ["Linear", "Sigmoid"]
    y = mlp(torch.randn(6, 5))
    assert ((y > 0) & (y < 1)).all()


def test_gradient_reaches_input_and_parameters(make):
    comp, ctx = make(MLP, {"hidden": [8], "dim": 3}, {"x": (4,)})
    mlp = comp.build(ctx)
    x = torch.randn(2, 4, requires_grad=True)
    mlp(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in mlp.parameters())


def test_unknown_input_shape_is_tolerated(make):
    comp, ctx = make(MLP, {"hidden": [8], "dim": 3}, {"x": None})
    assert comp.infer(ctx) == [TensorInfo((3,))]
    with pytest.raises(ShapeError, match="cannot be built"):
        comp.build(ctx)


@pytest.mark.parametrize(
    ("cfg", "inputs", "message"),
    [
        ({}, {"x": (4,)}, "mlp needs `dim`, `shape` or a non-empty `hidden`"),
        (
            {"dim": 10, "shape": [1, 3, 3]},
            {"x": (4,)},
            "mlp: dim 10 and shape [1, 3, 3] (9 elements) disagree; give one of them",
        ),
        (
            {"hidden": [4], "out_activation": "tanh"},
            {"x": (4,)},
            "mlp: `out_activation` needs an output layer (`dim` or `shape`)",
        ),
        (
            {"dim": 2},
            {"y": TensorInfo((), "int64")},
            "mlp got the integer tensor 'y' without a class count",
        ),
    ],
)
def test_infer_errors(make, cfg, inputs, message):
    comp, ctx = make(MLP, cfg, inputs)
    with pytest.raises(ShapeError, match=re.escape(message)):
        comp.infer(ctx)
