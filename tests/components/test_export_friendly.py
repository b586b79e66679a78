"""Modules and deterministic ops export with torch.export under a dynamic batch dimension."""

import inspect

import pytest
import torch

from latentspec.components._kinds import MODULES, OPS
from latentspec.components._node import LatentInfo, TensorInfo

LABEL = TensorInfo((), "int64", classes=10)
CASES = {
    "mlp": (MODULES["mlp"], {"hidden": [16], "shape": [1, 4, 4]}, {"z": (1, 2, 3), "c": LABEL}),
    "conv_encoder": (MODULES["conv_encoder"], {"channels": [4, 8], "dim": 5}, {"x": (1, 16, 16)}),
    "conv_decoder_transposed": (
        MODULES["conv_decoder"],
        {"shape": [1, 8, 8], "channels": [8, 4]},
        {"z": (3,)},
    ),
    "conv_decoder_nearest": (
        MODULES["conv_decoder"],
        {"shape": [1, 8, 8], "channels": [8, 4], "upsample": "nearest"},
        {"z": (3,)},
    ),
    "conv_decoder_unpool": (
        MODULES["conv_decoder"],
        {"shape": [1, 8, 8], "channels": [8, 4], "upsample": "unpool"},
        {"z": (3,)},
    ),
    "gaussian_head": (MODULES["gaussian_head"], {"dim": 3}, {"h": (6,)}),
    "linear": (MODULES["linear"], {"dim": 3}, {"x": (2, 3)}),
    "embedding": (MODULES["embedding"], {"dim": 3}, {"y": LABEL}),
    "one_hot": (MODULES["one_hot"], {}, {"y": LABEL}),
    "pca": (MODULES["pca"], {"dim": 2, "whiten": True}, {"x": (1, 2, 3)}),
    "latent_table": (
        MODULES["latent_table"],
        {"size": 10, "dim": 4, "project": "unit_l2"},
        {"i": LABEL},
    ),
    "reparameterize": (OPS["reparameterize"], {}, {"mu": (3,), "logvar": (3,)}),
    "reparameterize_k": (OPS["reparameterize"], {"samples": 2}, {"mu": (3,), "logvar": (3,)}),
    "sigmoid": (OPS["sigmoid"], {}, {"x": (1, 4, 4)}),
    "concat": (OPS["concat"], {}, {"a": (2, 4, 4), "b": (1, 4, 4)}),
    "split": (OPS["split"], {"sizes": [3, 1]}, {"y": (4, 2, 2)}),
    "corrupt_exported": (
        OPS["corrupt"],
        {"kind": "salt_pepper", "level": 0.2, "export": True},
        {"x": (1, 4, 4)},
    ),
}


def _example(info: TensorInfo, batch: int) -> torch.Tensor:
    if info.dtype == "int64":
        return torch.randint(0, info.classes, (batch, *info.shape))
    return torch.randn(batch, *info.shape)


@pytest.mark.parametrize("case", list(CASES))
def test_exports_with_dynamic_batch(make, case):
    cls, cfg, inputs = CASES[case]
    outputs = ("x_hat", "m_hat") if case == "split" else ("out",)
    comp, ctx = make(cls, cfg, inputs, outputs, latents=[LatentInfo("z", 3)])
    module = comp.build(ctx).eval()
    infos = list(ctx.in_info) + [TensorInfo(n.shape) for n in comp.noise(ctx)]
    factors = [1] * len(ctx.in_info) + [n.batch_factor for n in comp.noise(ctx)]
    args = tuple(_example(i, 3 * f) for i, f in zip(infos, factors, strict=True))
    batch = torch.export.Dim("batch", min=2)
    dynamic = tuple({0: batch * f if f > 1 else batch} for f in factors)
    params = list(inspect.signature(module.forward).parameters.values())
    if params[0].kind is inspect.Parameter.VAR_POSITIONAL:  # forward(*xs): one tuple
        dynamic = (dynamic,)
    program = torch.export.export(module, args, dynamic_shapes=dynamic)
    args5 = tuple(_example(i, 5 * f) for i, f in zip(infos, factors, strict=True))
    expected, got = module(*args5), program.module()(*args5)
    for e, g in zip(torch.utils._pytree.tree_leaves(expected), torch.utils._pytree.tree_leaves(got), strict=True):
        torch.testing.assert_close(g, e)
    outs = comp.infer(ctx)
    leaves = torch.utils._pytree.tree_leaves(expected)
    assert [tuple(t.shape[1:]) for t in leaves] == [o.shape for o in outs]
