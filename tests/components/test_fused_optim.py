"""Fused optimizers by default: the same training trajectory as torch's per-tensor loop up to
float rounding, and only where the parameters allow it."""

from __future__ import annotations

import pytest
import torch

from latentspec.components import OPTIMIZERS, load_all
from latentspec.nn import optim


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(32, 24), torch.nn.ReLU(), torch.nn.Linear(24, 32))


def _train(opt_for, steps: int = 50) -> tuple[torch.Tensor, list[float]]:
    net = _net()
    opt = opt_for(net)
    x = torch.rand(64, 32, generator=torch.Generator().manual_seed(1))
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return torch.cat([p.detach().flatten() for p in net.parameters()]), losses


@pytest.mark.parametrize("name", ["adam", "adamw", "adagrad"])
def test_registry_optimizers_are_fused_and_follow_the_plain_loop(name):
    load_all()
    choice = OPTIMIZERS.choose(name, {"lr": 1e-2})
    component, cfg = choice.instance, choice.config

    def built(net):
        return component.build([{"params": list(net.parameters())}], cfg)

    probe = built(_net())
    assert probe.defaults["fused"] is True
    kw = component.kwargs(cfg)
    if "betas" in kw:
        kw["betas"] = tuple(kw["betas"])
    plain_cls = getattr(torch.optim, component.torch_name)
    fused_params, fused_losses = _train(built)
    plain_params, plain_losses = _train(lambda net: plain_cls(net.parameters(), foreach=False, **kw))
    assert fused_losses[-1] < fused_losses[0]
    torch.testing.assert_close(fused_params, plain_params, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.tensor(fused_losses), torch.tensor(plain_losses), rtol=1e-4, atol=1e-5)


def test_not_fused_where_torch_has_no_kernel_or_the_parameters_forbid_it():
    net = _net()
    assert not optim.optimizer("SGD", [{"params": list(net.parameters())}], {"lr": 0.1}).defaults.get("fused")
    assert not optim.optimizer("RMSprop", [{"params": list(net.parameters())}], {"lr": 0.1}).defaults.get("fused")
    assert not optim.fusable([{"params": [torch.zeros(2, dtype=torch.float64), torch.zeros(2, device="meta")]}])
    chosen = optim.optimizer("Adam", [{"params": list(net.parameters())}], {"lr": 0.1, "foreach": True})
    assert not chosen.defaults.get("fused")
