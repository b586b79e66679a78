"""module: python — a user's nn.Module class, pkg.module:Class(**args)."""

import re

import pytest
import torch

from latentspec.components._kinds import MODULES
from latentspec.components._node import ShapeError, TensorInfo

PY = MODULES["python"]


def test_builds_the_class_with_args(make):
    cfg = {"class": "torch.nn:Linear", "args": {"in_features": 3, "out_features": 2}, "shape": [2]}
    comp, ctx = make(PY, cfg, {"x": (3,)})
    assert comp.infer(ctx) == [TensorInfo((2,))]
    module = comp.build(ctx)
    assert isinstance(module, torch.nn.Linear)
    assert module(torch.randn(4, 3)).shape == (4, 2)


def test_shape_unknown_unless_declared(make):
    comp, ctx = make(PY, {"class": "torch.nn:Identity"}, {"x": (3,)})
    assert comp.infer(ctx) == [TensorInfo()]


def test_bad_class_path(make):
    comp, ctx = make(PY, {"class": "torch.nn.Linear"}, {"x": (3,)})
    with pytest.raises(
        ShapeError,
        match=re.escape("python: `class` must look like pkg.module:Class, got 'torch.nn.Linear'"),
    ):
        comp.infer(ctx)


def test_missing_class_is_an_import_error(make):
    comp, ctx = make(PY, {"class": "torch.nn:NoSuchModule"}, {"x": (3,)})
    with pytest.raises(ImportError, match=re.escape("cannot load 'torch.nn:NoSuchModule'")):
        comp.build(ctx)
