"""term: imle — mean_t min_i ‖z_t − ẑ_{t,i}‖² over m candidates per target (GLANN)."""

import re

import pytest
import torch

from latentspec.components._kinds import TERMS
from latentspec.components._node import ShapeError

IMLE = TERMS["imle"]


def test_nearest_candidate_per_target(make):
    comp, ctx = make(IMLE, {}, {"z_gen": (2,), "z": (2,)})
    comp.infer(ctx)
    z = torch.tensor([[0.0, 0.0], [10.0, 10.0]])
    z_gen = torch.tensor(
        [
            [1.0, 0.0],
            [3.0, 3.0],
            [0.0, 2.0],  # target 0: distances 1, 18, 4
            [10.0, 13.0],
            [9.0, 10.0],
            [0.0, 0.0],
        ],  # target 1: distances 9, 1, 200
        requires_grad=True,
    )
    loss = comp.build(ctx)(z_gen, z)  # m = 6 / 2 = 3 inferred
    assert loss.item() == pytest.approx((1 + 1) / 2)
    loss.backward()
    expected = torch.zeros(6, 2)
    expected[0], expected[4] = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.0])  # 2(ẑ − z)/B
    torch.testing.assert_close(z_gen.grad, expected)


def test_explicit_candidates(make):
    comp, ctx = make(IMLE, {"candidates": 2}, {"z_gen": (1,), "z": (1,)})
    loss = comp.build(ctx)(torch.tensor([[1.0], [3.0], [5.0], [6.0]]), torch.tensor([[2.5], [7.0]]))
    assert loss.item() == pytest.approx((0.25 + 1.0) / 2)


def test_pool_takes_the_nearest_of_every_candidate_in_the_batch(make):
    comp, ctx = make(IMLE, {"candidates": 2, "pool": True}, {"z_gen": (1,), "z": (1,)})
    z_gen = torch.tensor([[1.0], [3.0], [5.0], [6.5]], requires_grad=True)
    loss = comp.build(ctx)(z_gen, torch.tensor([[6.0], [7.0]]))  # own pairs would give 9 and 0.25
    assert loss.item() == pytest.approx((0.25 + 0.25) / 2)  # both take 6.5, target 0's from target 1's pair
    loss.backward()
    torch.testing.assert_close(z_gen.grad, torch.tensor([[0.0], [0.0], [0.0], [0.0]]))  # pulls cancel
    comp, ctx = make(IMLE, {"candidates": 2}, {"z_gen": (1,), "z": (1,)})
    assert comp.build(ctx)(z_gen, torch.tensor([[6.0], [7.0]])).item() == pytest.approx((9 + 0.25) / 2)


def test_infer_error(make):
    comp, ctx = make(IMLE, {}, {"z_gen": (32,), "z": (64,)})
    with pytest.raises(ShapeError, match=re.escape("imle: 'z_gen' has shape [32] but 'z' has shape [64]")):
        comp.infer(ctx)
