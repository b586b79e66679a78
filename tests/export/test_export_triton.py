"""``--format triton``: config.pbtxt per graph entry, parsed back and checked against the manifest."""

from __future__ import annotations

import filecmp
import os

import pytest

from latentspec.export._triton import parse_pbtxt

TYPES = {"float32": "TYPE_FP32", "int64": "TYPE_INT64"}


def _config(root: str, entry: str) -> dict:
    with open(os.path.join(root, "triton", entry, "config.pbtxt")) as f:
        return parse_pbtxt(f.read())


def test_parser_reads_the_text_format_subset():
    text = """
    name: "m"  # a comment
    max_batch_size: 8
    input [ { name: "a", data_type: TYPE_FP32, dims: [ 1, 2 ] reshape: { shape: [ ] } } ]
    dynamic_batching { }
    instance_group [ { count: 2 kind: KIND_GPU } ]
    parameters { key: "x" value: { string_value: "1.5" } }
    parameters { key: "y" value: { string_value: "z" } }
    flag: true
    """
    c = parse_pbtxt(text)
    assert c["name"] == "m" and c["max_batch_size"] == 8 and c["flag"] is True
    assert c["input"] == [{"name": "a", "data_type": "TYPE_FP32", "dims": [1, 2], "reshape": {"shape": []}}]
    assert c["dynamic_batching"] == {} and c["instance_group"] == [{"count": 2, "kind": "KIND_GPU"}]
    assert [p["key"] for p in c["parameters"]] == ["x", "y"]
    with pytest.raises(ValueError):
        parse_pbtxt("input [ { name: ")


def test_batching_entries_match_the_manifest(vae_bundle):
    root, manifest = vae_bundle
    for name, entry in manifest["entries"].items():
        c = _config(root, name)
        assert c["name"] == name and c["platform"] == "onnxruntime_onnx" and c["max_batch_size"] == 64
        assert c["dynamic_batching"] == {} and c["instance_group"] == [{"kind": "KIND_GPU"}]
        for key, tensors in (("input", entry["inputs"]), ("output", entry["outputs"])):
            got = c[key] if isinstance(c[key], list) else [c[key]]
            assert [t["name"] for t in got] == [t["name"] for t in tensors]
            for t, d in zip(got, tensors):
                assert t["data_type"] == TYPES[d["dtype"]]
                assert t["dims"] == d["shape"][1:]  # without the batch axis
        assert filecmp.cmp(os.path.join(root, "triton", name, "1", "model.onnx"), os.path.join(root, entry["file"]))
        assert f"triton/{name}/config.pbtxt" in manifest["files"]
        assert f"triton/{name}/1/model.onnx" in manifest["files"]


def test_a_loop_entry_cannot_batch_and_takes_steps_as_a_reshaped_scalar(loop_bundle):
    root, manifest = loop_bundle
    c = _config(root, "refine")
    assert c["max_batch_size"] == 0 and "dynamic_batching" not in c
    x, steps = c["input"]
    assert x == {"name": "x", "data_type": "TYPE_FP32", "dims": [-1, 1, 64, 64]}
    assert steps == {"name": "steps", "data_type": "TYPE_INT64", "dims": [1], "reshape": {"shape": []}}
    assert c["output"] == [{"name": "p_refined", "data_type": "TYPE_FP32", "dims": [-1, 42]}]
    predict = _config(root, "predict")
    assert predict["max_batch_size"] == 64 and predict["input"][0]["dims"] == [1, 64, 64]
    assert manifest["formats"]["triton"] == [
        "triton/predict/config.pbtxt",
        "triton/predict/1/model.onnx",
        "triton/refine/config.pbtxt",
        "triton/refine/1/model.onnx",
    ]
