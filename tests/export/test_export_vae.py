"""The VAE of specs/vae_mnist.yaml as a bundle: names, meanings, opsets, verification, files."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy as np
import onnx
import pytest
import torch

from latentspec.compiler import compile_spec
from latentspec.errors import ExportError
from latentspec.export import _onnx, export_model
from latentspec.export._verify import Check, compare, table


def _io(path: str) -> tuple[list[str], list[str]]:
    m = onnx.load(path)
    return [i.name for i in m.graph.input], [o.name for o in m.graph.output]


def test_every_entry_is_one_onnx_file_named_after_the_spec(vae, vae_bundle):
    spec, _ = vae
    root, manifest = vae_bundle
    assert list(manifest["entries"]) == ["encode", "decode", "sample"]
    expected = {"encode": (["x"], ["z_mu", "z_logvar"]), "decode": (["z"], ["x_mean"]), "sample": (["eps"], ["x_mean"])}
    for name, (ins, outs) in expected.items():
        entry = manifest["entries"][name]
        assert entry["file"] == f"{name}.onnx" and entry["kind"] == "graph" and entry["opset"] == 18
        assert _io(os.path.join(root, entry["file"])) == (ins, outs)
        assert [t["name"] for t in entry["inputs"]] == ins
        assert [t["name"] for t in entry["outputs"]] == outs
        assert list(spec.export[name].outputs) == outs
    # one self-contained file: no external data next to the graphs
    assert sorted(f for f in os.listdir(root) if not os.path.isdir(os.path.join(root, f))) == [
        "decode.onnx",
        "encode.onnx",
        "manifest.json",
        "model.pt2",
        "sample.onnx",
    ]


def test_meanings_ranges_and_code(vae_bundle):
    _, manifest = vae_bundle
    e = manifest["entries"]
    (eps,) = e["sample"]["inputs"]
    assert eps["meaning"] == "noise" and eps["distribution"] == "normal" and eps["shape"] == ["batch", 20]
    (z,) = e["decode"]["inputs"]
    assert (z["meaning"], z["latent"], z["range"]) == ("latent", "z", None)
    (x,) = e["encode"]["inputs"]
    assert (x["meaning"], x["range"], x["shape"]) == ("image", [0.0, 1.0], ["batch", 1, 28, 28])
    assert e["decode"]["outputs"][0]["meaning"] == "image" and e["decode"]["outputs"][0]["range"] == [0.0, 1.0]
    assert e["encode"]["code"] == "z_mu"
    assert [o["meaning"] for o in e["encode"]["outputs"]] == ["latent", "value"]
    assert e["decode"]["code"] is None and e["sample"]["optimize"] is None
    assert manifest["latents"]["z"]["dim"] == 20 and manifest["latents"]["z"]["prior"] == "normal"


def test_manifest_hashes_spec_and_verification(vae_bundle):
    root, manifest = vae_bundle
    with open(os.path.join(root, "manifest.json")) as f:
        assert json.load(f) == manifest
    assert manifest["format"] == "latentspec.bundle" and manifest["format_version"] == 1
    assert manifest["spec"]["sha256"] == hashlib.sha256(manifest["spec"]["text"].encode()).hexdigest()
    assert "name: vae_mnist" in manifest["spec"]["text"] and "train: 200" in manifest["spec"]["text"]
    on_disk = {
        os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/")
        for d, _, files in os.walk(root)
        for f in files
        if f != "manifest.json"
    }
    assert set(manifest["files"]) == on_disk
    for rel, digest in manifest["files"].items():
        with open(os.path.join(root, rel), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest
    for name, entry in manifest["entries"].items():
        assert entry["sha256"] == manifest["files"][entry["file"]]
        v = manifest["verified"][name]
        assert v["batches"] == [1, 64] and v["max_abs_diff"] <= 1e-4 and v["runtime_max_abs_diff"] <= 1e-4
        assert v["provider"] == "CPUExecutionProvider"
    assert manifest["directions"] == {} and manifest["metrics"] == {}


def test_runtime_runs_the_bundle_like_pytorch(vae, vae_bundle):
    import latentspec_runtime

    _, model = vae
    root, _ = vae_bundle
    bundle = latentspec_runtime.Bundle.load(root, device="cpu")
    z = np.random.default_rng(0).standard_normal((5, 20)).astype(np.float32)
    gm, _ = model.entry("decode")
    with torch.no_grad():
        expected = gm(torch.from_numpy(z)).numpy()
    np.testing.assert_allclose(bundle.decode(z), expected, atol=1e-5)
    assert bundle.sample(3, seed=1).shape == (3, 1, 28, 28)


@pytest.mark.parametrize("opset", [17, 18])
def test_opset_in_the_file_is_the_one_asked_for(vae, vae_bundle, tmp_path, opset):
    spec, model = vae
    if opset == 18:
        root = vae_bundle[0]
    else:
        root = str(tmp_path / "b")
        export_model(spec, model, root, opset=opset, entries=["decode"])
    m = onnx.load(os.path.join(root, "decode.onnx"))
    assert {o.domain: o.version for o in m.opset_import}[""] == opset
    with open(os.path.join(root, "manifest.json")) as f:
        assert json.load(f)["entries"]["decode"]["opset"] == opset


def test_a_tampered_file_is_refused_by_the_runtime(vae_bundle, tmp_path):
    import latentspec_runtime

    copy = tmp_path / "tampered"
    shutil.copytree(vae_bundle[0], copy)
    data = bytearray((copy / "decode.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / "decode.onnx").write_bytes(bytes(data))
    with pytest.raises(latentspec_runtime.BundleError, match=r"decode\.onnx"):
        latentspec_runtime.Bundle.load(copy, device="cpu")


def test_a_failed_verification_raises_a_table_and_leaves_no_bundle(vae, tmp_path, monkeypatch):
    spec, _ = vae
    model = compile_spec(spec)  # its own copy: a weight changes below
    real = _onnx.export_graph_entry

    def export_then_perturb(model, entry, root, opset):
        exported = real(model, entry, root, opset)
        with torch.no_grad():
            next(model.module_of("dec").parameters()).add_(0.5)  # PyTorch now differs from the file
        return exported

    monkeypatch.setattr(_onnx, "export_graph_entry", export_then_perturb)
    out = tmp_path / "bad.bundle"
    with pytest.raises(ExportError) as err:
        export_model(spec, model, str(out), verify=True, entries=["decode"])
    text = str(err.value)
    assert "verification failed" in text
    assert "entry" in text and "output" in text and "batch" in text and "max abs diff" in text
    assert "decode" in text and "x_mean" in text and "FAIL" in text
    assert not out.exists() and os.listdir(tmp_path) == []


def test_compare_and_table():
    assert compare(np.array([1.0, 100.0]), np.array([1.00005, 100.005]), 1e-4) == (pytest.approx(0.005), True)
    assert compare(np.zeros(3), np.full(3, 2e-4), 1e-4)[1] is False
    assert compare(np.zeros(3), np.zeros(4), 1e-4) == (float("inf"), False)
    text = table([Check("decode", "x_mean", 64, 0.25, False)], "title:")
    assert text.splitlines()[0] == "title:" and "decode" in text and "0.25" in text and "FAIL" in text


def test_pt2_holds_the_training_graph(vae, vae_bundle):
    _, model = vae
    root, manifest = vae_bundle
    block = manifest["formats"]["pt2"]
    assert block["file"] == "model.pt2" and [i["name"] for i in block["inputs"]] == ["x", "eps"]
    program = torch.export.load(os.path.join(root, "model.pt2")).module()
    x, eps = torch.rand(4, 1, 28, 28), torch.randn(4, 20)
    out = program(x, eps)
    gm, _ = model.training_graph
    with torch.no_grad():
        ref = gm(x, eps)
    assert set(out) == set(block["outputs"])
    for k in ref:
        torch.testing.assert_close(out[k], ref[k])


def test_torchscript_entries(vae_bundle):
    import warnings

    root, manifest = vae_bundle
    assert manifest["formats"]["torchscript"] == [f"torchscript/{n}.pt" for n in ("encode", "decode", "sample")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated
        decode = torch.jit.load(os.path.join(root, "torchscript", "decode.pt"))
        assert decode(torch.zeros(2, 20)).shape == (2, 1, 28, 28)


def test_usage_errors(vae, tmp_path):
    spec, model = vae
    with pytest.raises(ExportError, match="unknown export format 'onnxx'"):
        export_model(spec, model, str(tmp_path / "a"), formats="onnxx")
    with pytest.raises(ExportError, match=r"no entry point 'decoder'.*encode, decode, sample"):
        export_model(spec, model, str(tmp_path / "a"), entries=["decoder"])
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(ExportError, match="not a bundle"):
        export_model(spec, model, str(tmp_path / "notes"), entries=["decode"])
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"


def test_exporting_again_replaces_the_bundle(vae, tmp_path):
    spec, model = vae
    out = tmp_path / "b"
    export_model(spec, model, str(out), entries=["decode"])
    manifest = export_model(spec, model, str(out), entries=["sample"])
    assert list(manifest["entries"]) == ["sample"]
    assert sorted(os.listdir(out)) == ["manifest.json", "sample.onnx"]
    assert sorted(os.listdir(tmp_path)) == ["b"]


def test_verify_summary_says_what_was_checked(vae_bundle):
    from latentspec.cli import verified_summary

    _, manifest = vae_bundle
    text = verified_summary(manifest["verified"])
    lines = text.splitlines()
    assert lines[0].startswith("verified (ONNX Runtime against eager PyTorch")
    assert len(lines) == 1 + len(manifest["verified"])
    decode = next(line for line in lines if line.strip().startswith("decode:"))
    assert "batches 1, 64 on CPUExecutionProvider, max abs diff" in decode and "; runtime " in decode
