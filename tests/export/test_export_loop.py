"""A feedback-loop entry (``op: loop``) exports as an ONNX Loop whose trip count is an input."""

from __future__ import annotations

import os

import numpy as np
import onnx
import torch


def test_refine_is_an_onnx_loop_with_steps_as_an_input(loop_bundle):
    root, manifest = loop_bundle
    m = onnx.load(os.path.join(root, "refine.onnx"))
    assert "Loop" in [n.op_type for n in m.graph.node]
    inputs = {i.name: i for i in m.graph.input}
    assert list(inputs) == ["x", "steps"] and [o.name for o in m.graph.output] == ["p_refined"]
    steps = inputs["steps"].type.tensor_type
    assert steps.elem_type == onnx.TensorProto.INT64 and len(steps.shape.dim) == 0
    assert inputs["x"].type.tensor_type.shape.dim[0].dim_param == "batch"
    described = manifest["entries"]["refine"]["inputs"]
    assert [(d["name"], d["meaning"]) for d in described] == [("x", "image"), ("steps", "iterations")]
    assert described[1]["shape"] == [] and described[1]["dtype"] == "int64" and described[1]["default"] == 3


def test_zero_steps_give_the_initial_value_and_k_steps_match_eager(loop, loop_bundle):
    import latentspec_runtime

    _, model = loop
    bundle = latentspec_runtime.Bundle.load(loop_bundle[0], device="cpu")
    x = torch.rand(4, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    gm, _ = model.entry("refine")
    with torch.no_grad():
        p0 = model.module_of("predictor")(x)
        for k in (0, 1, 4):
            got = bundle.refine(x.numpy(), iterations=k)
            np.testing.assert_allclose(got, gm(x, torch.tensor(k)).numpy(), atol=1e-5)
            if k == 0:
                np.testing.assert_allclose(got, p0.numpy(), atol=1e-5)
        # the default trip count is the entry's `iterations`
        np.testing.assert_allclose(bundle.refine(x.numpy()), gm(x, torch.tensor(3)).numpy(), atol=1e-5)


def test_verification_ran_both_trip_counts(loop_bundle):
    v = loop_bundle[1]["verified"]["refine"]
    assert v["max_abs_diff"] <= 1e-4 and v["batches"] == [1, 64]
