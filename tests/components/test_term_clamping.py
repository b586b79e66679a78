"""term: clamping — DC-IGN invariance: Σ_clamped (z − batch mean)², mean over the batch."""

import re

import pytest
import torch

from latentspec.components._kinds import TERMS
from latentspec.components._node import LatentInfo, ShapeError, TensorInfo

CLAMPING = TERMS["clamping"]
Z = LatentInfo("z", 4, groups={"rotation": (0,), "scale": (1,), "posx": (2,), "intrinsic": (3,)})
INPUTS = {"z": (4,), "vary": TensorInfo((), "int64")}


def test_value_and_gradient_intrinsic_pass(make):
    comp, ctx = make(CLAMPING, {"intrinsic": "pass"}, INPUTS, latents=[Z])
    comp.infer(ctx)
    z = torch.tensor([[1.0, 2.0, 3.0, 9.0], [3.0, 6.0, 5.0, 0.0]], requires_grad=True)
    # rotation varies: units 1 and 2 are clamped; deviations from the mean [4, 4] → ±2, ±1
    loss = comp.build(ctx)(z, torch.tensor([0, 0]))
    assert loss.item() == pytest.approx(((4 + 1) + (4 + 1)) / 2)
    loss.backward()
    torch.testing.assert_close(z.grad, torch.tensor([[0.0, -2.0, -1.0, 0.0], [0.0, 2.0, 1.0, 0.0]]))


def test_default_clamps_the_intrinsic_unit_too(make):
    comp, ctx = make(CLAMPING, {}, INPUTS, latents=[Z])
    z = torch.tensor([[1.0, 2.0, 3.0, 9.0], [3.0, 6.0, 5.0, 0.0]], requires_grad=True)
    # rotation varies: units 1, 2 and the intrinsic 3 are clamped; deviations ±2, ±1, ±4.5
    loss = comp.build(ctx)(z, torch.tensor([0, 0]))
    assert loss.item() == pytest.approx(((4 + 1 + 20.25) * 2) / 2)
    loss.backward()
    torch.testing.assert_close(z.grad, torch.tensor([[0.0, -2.0, -1.0, 4.5], [0.0, 2.0, 1.0, -4.5]]))


def test_infer_error(make):
    comp, ctx = make(CLAMPING, {}, {"h": (4,), "vary": INPUTS["vary"]}, latents=[Z])
    with pytest.raises(ShapeError, match=re.escape("clamping needs `latent:` naming the latent")):
        comp.infer(ctx)
