"""op: clamp_latents — DC-IGN clamping with its custom backward rule (training only)."""

import re

import pytest
import torch

from latentspec.components._kinds import OPS
from latentspec.components._node import LatentInfo, ShapeError, TensorInfo

CLAMP = OPS["clamp_latents"]
# 5 units: factors rotation 0, scale 1, posx 2; intrinsic 3; unit 4 in no group (intrinsic too).
Z = LatentInfo("z", 5, groups={"rotation": (0,), "scale": (1,), "posx": (2,), "intrinsic": (3,)})
VARY = TensorInfo((), "int64", classes=3)
INPUTS = {"z": (5,), "vary": VARY}
BATCH = torch.tensor([[1.0, 2, 3, 4, 5], [3.0, 6, 9, 12, 15]])  # batch mean [2, 4, 6, 8, 10]


def test_default_clamps_every_unit_but_the_varying_group(make):
    # Kulkarni et al.: only the varying factor's units pass; intrinsic (3) and ungrouped (4) too are clamped
    comp, ctx = make(CLAMP, {}, INPUTS, ("z_c",), [Z])
    clamp = comp.build(ctx)
    rotation_varies = clamp(BATCH, torch.tensor([0, 0]))
    expected = torch.tensor([[1.0, 4, 6, 8, 10], [3.0, 4, 6, 8, 10]])
    torch.testing.assert_close(rotation_varies, expected)
    posx_varies = clamp(BATCH, torch.tensor([2, 2]))
    torch.testing.assert_close(posx_varies, torch.tensor([[2.0, 4, 3, 8, 10], [2.0, 4, 9, 8, 10]]))


def test_intrinsic_pass_clamps_only_the_other_factors(make):
    comp, ctx = make(CLAMP, {"intrinsic": "pass"}, INPUTS, ("z_c",), [Z])
    assert comp.infer(ctx) == [TensorInfo((5,))]
    assert comp.training_only(ctx) is True and comp.noise(ctx) == []
    clamp = comp.build(ctx)
    rotation_varies = clamp(BATCH, torch.tensor([0, 0]))
    expected = torch.tensor([[1.0, 4, 6, 4, 5], [3.0, 4, 6, 12, 15]])
    torch.testing.assert_close(rotation_varies, expected)
    scale_varies = clamp(BATCH, torch.tensor([1, 1]))
    torch.testing.assert_close(scale_varies[:, :3], torch.tensor([[2.0, 2, 6], [2.0, 6, 6]]))


def test_to_first_uses_the_first_example(make):
    comp, ctx = make(CLAMP, {"to": "first", "intrinsic": "pass"}, INPUTS, latents=[Z])
    out = comp.build(ctx)(BATCH, torch.tensor([0, 0]))
    torch.testing.assert_close(out[1], torch.tensor([3.0, 2, 3, 12, 15]))


def test_backward_toward_mean(make):
    comp, ctx = make(
        CLAMP, {"grad": {"rule": "toward_mean", "strength": 2.0}, "intrinsic": "pass"}, INPUTS, latents=[Z]
    )
    z = BATCH.clone().requires_grad_(True)
    weight = torch.arange(10.0).reshape(2, 5)
    (comp.build(ctx)(z, torch.tensor([0, 0])) * weight).sum().backward()
    # kept units (0, 3, 4): the downstream gradient; clamped (1, 2): 2·(z − mean)/B
    expected = torch.tensor(
        [
            [0.0, 2 * (2 - 4) / 2, 2 * (3 - 6) / 2, 3, 4],
            [5.0, 2 * (6 - 4) / 2, 2 * (9 - 6) / 2, 8, 9],
        ]
    )
    torch.testing.assert_close(z.grad, expected)


def test_backward_zero(make):
    comp, ctx = make(CLAMP, {"grad": {"rule": "zero"}, "intrinsic": "pass"}, INPUTS, latents=[Z])
    z = BATCH.clone().requires_grad_(True)
    comp.build(ctx)(z, torch.tensor([1, 1])).sum().backward()
    torch.testing.assert_close(z.grad, torch.tensor([[0.0, 1, 0, 1, 1]]).expand(2, 5))


def test_vary_order_param_and_latent_param(make):
    cfg = {"latent": "z", "vary": ["scale", "rotation", "posx"]}
    comp, ctx = make(CLAMP, cfg, {"z_s": (5,), "vary": VARY}, latents=[Z])
    out = comp.build(ctx)(BATCH, torch.tensor([0, 0]))  # index 0 is now "scale"
    torch.testing.assert_close(out[0, :2], torch.tensor([2.0, 2.0]))


@pytest.mark.parametrize(
    ("cfg", "inputs", "message"),
    [
        (
            {},
            {"z_s": (5,), "vary": VARY},
            "clamp_latents needs `latent:` naming the latent whose groups to use (its input 'z_s' is not a latent)",
        ),
        ({"latent": "w"}, INPUTS, "clamp_latents: unknown latent 'w'; declared latents: ['z']"),
        (
            {"vary": ["light"]},
            INPUTS,
            "clamp_latents: `vary` names ['light'], which are not groups of latent 'z'",
        ),
        (
            {},
            {"z": (4,), "vary": VARY},
            "clamp_latents expects 'z' of shape [5] (latent 'z'), got [4]",
        ),
        (
            {},
            {"z": (5,), "vary": (1,)},
            "clamp_latents expects 'vary' to be an int64 group index per example, got float32",
        ),
        (
            {},
            {"z": (5,), "vary": TensorInfo((), "int64", classes=2)},
            "clamp_latents: 'vary' has 2 classes but latent 'z' varies 3 groups",
        ),
        ({"grad": {"rule": "sideways"}}, INPUTS, "clamp_latents: grad must be {rule: zero"),
    ],
)
def test_infer_errors(make, cfg, inputs, message):
    comp, ctx = make(CLAMP, cfg, inputs, latents=[Z])
    with pytest.raises(ShapeError, match=re.escape(message)):
        comp.infer(ctx)
