"""module: latent_table — one code per example (GLO): z = W[i], projected after each step."""

import re

import pytest
import torch

from latentspec.components._kinds import MODULES
from latentspec.components._node import ShapeError, TensorInfo

TABLE = MODULES["latent_table"]
INDEX = TensorInfo((), "int64", classes=100)


def test_lookup_and_gradient_to_selected_rows(make):
    comp, ctx = make(TABLE, {"size": 100, "dim": 8}, {"i": INDEX})
    assert comp.infer(ctx) == [TensorInfo((8,))]
    table = comp.build(ctx)
    assert [n for n, _ in table.named_parameters()] == ["weight"]
    i = torch.tensor([3, 5, 3])
    z = table(i)
    torch.testing.assert_close(z, table.weight[[3, 5, 3]])
    z.sum().backward()
    assert table.weight.grad[3].eq(2).all() and table.weight.grad[5].eq(1).all()
    assert table.weight.grad[0].eq(0).all()


def test_unit_l2_projection(make):
    comp, ctx = make(TABLE, {"size": 10, "dim": 4, "project": "unit_l2"}, {"i": INDEX})
    table = comp.build(ctx)
    torch.testing.assert_close(table.weight.norm(dim=1), torch.ones(10))  # init is projected
    with torch.no_grad():
        table.weight.mul_(3.0)
    table.project_()
    torch.testing.assert_close(table.weight.norm(dim=1), torch.ones(10))


def test_l2_ball_clips_only_outside_points(make):
    cfg = {"size": 2, "dim": 2, "project": "l2_ball", "radius": 2.0, "init": "zeros"}
    comp, ctx = make(TABLE, cfg, {"i": INDEX})
    table = comp.build(ctx)
    torch.testing.assert_close(table.weight, torch.zeros(2, 2))
    with torch.no_grad():
        table.weight.copy_(torch.tensor([[3.0, 4.0], [0.6, 0.8]]))
    table.project_()
    torch.testing.assert_close(table.weight, torch.tensor([[1.2, 1.6], [0.6, 0.8]]))


def test_init_from_codes_then_projects(make):
    cfg = {"size": 2, "dim": 2, "project": "unit_l2", "init": "pca"}
    comp, ctx = make(TABLE, cfg, {"i": INDEX})
    table = comp.build(ctx)
    table.init_from(torch.tensor([[3.0, 4.0], [0.0, 2.0]]))
    torch.testing.assert_close(table.weight, torch.tensor([[0.6, 0.8], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=re.escape("expects codes of shape [2, 2], got [3, 2]")):
        table.init_from(torch.zeros(3, 2))


def test_normal_init_scale(make):
    comp, ctx = make(TABLE, {"size": 4000, "dim": 4, "init_scale": 0.1}, {"i": INDEX})
    assert abs(comp.build(ctx).weight.std().item() - 0.1) < 0.01


@pytest.mark.parametrize(
    ("info", "message"),
    [
        (TensorInfo((1,)), "latent_table expects an int64 index, got float32 'i'"),
        (INDEX, "latent_table: the index 'i' takes 100 values but the table has size 50"),
    ],
)
def test_infer_errors(make, info, message):
    comp, ctx = make(TABLE, {"size": 50, "dim": 4}, {"i": info})
    with pytest.raises(ShapeError, match=re.escape(message)):
        comp.infer(ctx)
