"""op: perturb — p' = p_pred with probability π, else p_true + σε (feedback loop)."""

import re

import pytest
import torch

from latentspec.components._kinds import OPS
from latentspec.components._node import Noise, ShapeError, TensorInfo

PERTURB = OPS["perturb"]


def test_pick_per_example(make):
    comp, ctx = make(PERTURB, {"sigma": 0.1}, {"p0": (2,), "p": (2,)}, ("p_prime",))
    assert comp.infer(ctx) == [TensorInfo((2,))]
    assert comp.noise(ctx) == [Noise("eps", (2,), "normal"), Noise("u", (1,), "uniform")]
    assert comp.training_only(ctx) is False
    pred, true = torch.tensor([[1.0, 1.0], [2.0, 2.0]]), torch.zeros(2, 2)
    eps, u = torch.tensor([[1.0, -1.0], [1.0, -1.0]]), torch.tensor([[0.3], [0.7]])
    out = comp.build(ctx)(pred, true, eps, u)  # u < 0.5: the prediction; else p + σε
    torch.testing.assert_close(out, torch.tensor([[1.0, 1.0], [0.1, -0.1]]))


def test_detach_and_gradient(make):
    pred = torch.ones(1, 3, requires_grad=True)
    args = (torch.zeros(1, 3), torch.zeros(1, 3), torch.zeros(1, 1))
    comp, ctx = make(PERTURB, {}, {"p0": (3,), "p": (3,)})
    assert not comp.build(ctx)(pred, *args).requires_grad
    comp, ctx = make(PERTURB, {"detach": False}, {"p0": (3,), "p": (3,)})
    comp.build(ctx)(pred, *args).sum().backward()
    torch.testing.assert_close(pred.grad, torch.ones(1, 3))


def test_joint_shapes(make):
    comp, ctx = make(PERTURB, {}, {"p0": (42,), "p": (21, 2)})
    assert comp.infer(ctx) == [TensorInfo((21, 2))]
    out = comp.build(ctx)(torch.zeros(4, 42), torch.zeros(4, 21, 2), torch.zeros(4, 21, 2), torch.rand(4, 1))
    assert out.shape == (4, 21, 2)


def test_infer_error(make):
    comp, ctx = make(PERTURB, {}, {"p0": (42,), "p": (40,)})
    with pytest.raises(ShapeError, match=re.escape("perturb: 'p0' has shape [42] but 'p' has shape [40]")):
        comp.infer(ctx)
