"""Loading a bundle: the manifest's format, schema and file hashes (docs/bundle-format.md)."""

from __future__ import annotations

import json
from pathlib import Path

import _bundles
import numpy as np
import pytest

from latentspec_runtime import Bundle, BundleError


def flip_byte(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_load_reads_entries_and_manifest(bundle_dir: Path) -> None:
    bundle = Bundle.load(bundle_dir, device="cpu")
    assert bundle.entries == (
        "decode",
        "encode",
        "sample",
        "generate",
        "swap",
        "refine",
        "invert",
        "inpaint",
    )
    assert bundle.name == "tiny"
    assert bundle.manifest["format_version"] == 1
    bundle.manifest["name"] = "changed"  # a copy: the bundle keeps its own
    assert bundle.manifest["name"] == "tiny"


def test_tampered_file_is_refused_naming_it(bundle_dir: Path) -> None:
    expected = json.loads((bundle_dir / "manifest.json").read_text())["files"]["decode.onnx"]
    flip_byte(bundle_dir / "decode.onnx")
    actual = _bundles.sha256(bundle_dir / "decode.onnx")
    with pytest.raises(BundleError) as err:
        Bundle.load(bundle_dir)
    message = str(err.value)
    assert "decode.onnx" in message
    assert expected in message and actual in message
    assert "the bundle was modified or corrupted; re-export it" in message
    assert "encode.onnx" not in message


def test_file_changed_after_load_is_refused_at_first_use(bundle_dir: Path) -> None:
    bundle = Bundle.load(bundle_dir, device="cpu")
    flip_byte(bundle_dir / "decode.onnx")
    with pytest.raises(BundleError, match=r"decode\.onnx.*modified or corrupted"):
        bundle.decode(np.zeros(4, np.float32))


def test_missing_file_is_refused(bundle_dir: Path) -> None:
    (bundle_dir / "encode.onnx").unlink()
    with pytest.raises(BundleError, match=r"encode\.onnx: missing"):
        Bundle.load(bundle_dir)


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"no manifest\.json"):
        Bundle.load(tmp_path)
    with pytest.raises(BundleError, match="not a bundle folder"):
        Bundle.load(tmp_path / "nowhere")


def test_unknown_format_version_is_refused(bundle_dir: Path) -> None:
    _bundles.edit_manifest(bundle_dir, lambda m: m.update(format_version=2))
    with pytest.raises(BundleError, match=r"format version 2 is not supported .* upgrade the runtime"):
        Bundle.load(bundle_dir)


def test_other_format_is_refused(bundle_dir: Path) -> None:
    _bundles.edit_manifest(bundle_dir, lambda m: m.update(format="something.else"))
    with pytest.raises(BundleError, match="not a latentspec bundle manifest"):
        Bundle.load(bundle_dir)


def test_schema_problems_are_all_reported_with_paths(bundle_dir: Path) -> None:
    def break_it(m: dict) -> None:
        z = m["entries"]["decode"]["inputs"][0]
        z["dtype"] = "floaty"
        z["meaning"] = "picture"
        m["entries"]["sample"]["inputs"][0]["distribution"] = None
        m["entries"]["invert"]["optimize"]["optimizer"] = "sgd"

    _bundles.edit_manifest(bundle_dir, break_it)
    with pytest.raises(BundleError) as err:
        Bundle.load(bundle_dir)
    message = str(err.value)
    assert "(4 problems)" in message
    assert '$.entries.decode.inputs[0].dtype: "floaty" is not a numpy dtype name' in message
    assert '$.entries.decode.inputs[0].meaning: unknown meaning "picture"' in message
    assert "$.entries.sample.inputs[0].distribution: a noise input needs a distribution" in message
    assert '$.entries.invert.optimize.optimizer: "sgd" is not supported' in message


def test_entry_file_must_be_listed_and_paths_stay_inside(bundle_dir: Path) -> None:
    def break_it(m: dict) -> None:
        del m["files"]["swap.onnx"]
        m["files"]["../outside.bin"] = "0" * 64

    _bundles.edit_manifest(bundle_dir, break_it)
    with pytest.raises(BundleError) as err:
        Bundle.load(bundle_dir)
    assert '$.entries.swap.file: "swap.onnx" is not listed in $.files' in str(err.value)
    assert "relative paths inside the bundle folder" in str(err.value)


def test_spec_text_hash_is_checked(bundle_dir: Path) -> None:
    _bundles.edit_manifest(bundle_dir, lambda m: m["spec"].update(text="changed"))
    with pytest.raises(BundleError, match=r"\$\.spec\.sha256: the spec text hashes to"):
        Bundle.load(bundle_dir)


def test_graph_not_matching_the_manifest_is_refused(bundle_dir: Path) -> None:
    _bundles.edit_manifest(bundle_dir, lambda m: m["entries"]["decode"]["inputs"][0].update(name="w"))
    bundle = Bundle.load(bundle_dir, device="cpu")
    with pytest.raises(BundleError, match=r"does not match entry 'decode'.*inputs are \['z'\]"):
        bundle.run("decode", w=np.zeros((1, 4), np.float32))


def test_preload_creates_every_session(bundle_dir: Path) -> None:
    bundle = Bundle.load(bundle_dir, device="cpu", preload=True)
    assert all(entry.session is not None for entry in bundle._entries.values())


def test_info_lists_entries_signatures_and_providers(bundle: Bundle) -> None:
    text = bundle.info()
    assert text.splitlines()[0].startswith("tiny  (")
    assert "exported by latentspec 0.1.0" in text
    assert "in  z       float32 [batch, 4]  latent z" in text
    assert "out x_mean  float32 [batch, 1, 4, 4]  image in [0, 1]" in text
    assert "out z_mu      float32 [batch, 4]  latent z  <- code" in text
    assert "iterations (default 3)" in text
    assert "adam on 'z' (dim 4), 300 steps" in text
    assert "up  (latent z, 4 numbers)" in text
    assert "test: neg_elbo 12.5" in text
    assert text.splitlines()[-1] == "providers: CPUExecutionProvider (device cpu)"
