"""Each manifest entry records its task (the spec entry's `kind`); the runtime's methods find
entries by it, whatever their names."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["data.split.train=200", "data.split.test=100", "train.epochs=1", "train.samples_every=0"]


def test_the_manifest_records_each_entry_task(vae_bundle, glo_bundle):
    for _, manifest in (vae_bundle, glo_bundle):
        for name, entry in manifest["entries"].items():
            assert entry["task"] == name  # entries named after their kind


def test_entries_with_other_names_run_by_their_kind(tmp_path: Path):
    from latentspec.compiler import compile_spec
    from latentspec.export import export_model
    from latentspec.spec import load_spec
    from latentspec_runtime import Bundle

    text = (ROOT / "specs" / "vae_mnist.yaml").read_text()
    text = text.replace("  encode:      {in: [x]", "  embed:       {kind: encode, in: [x]")
    text = text.replace("  decode:      {in: [z]", "  render:      {kind: decode, in: [z]")
    path = tmp_path / "vae_renamed.yaml"
    path.write_text(text)
    spec = load_spec(str(path), SMALL)
    manifest = export_model(spec, compile_spec(spec), str(tmp_path / "b"), verify=True)
    assert {n: e["task"] for n, e in manifest["entries"].items()} == {
        "embed": "encode",
        "render": "decode",
        "sample": "sample",
    }
    assert manifest["entries"]["embed"]["code"] == "z_mu"  # the code of the encode entry, by kind
    bundle = Bundle.load(tmp_path / "b")
    z = np.zeros((2, 20), np.float32)
    np.testing.assert_allclose(bundle.decode(z), bundle.run("render", z=z)["x_mean"])
    x = np.random.default_rng(0).random((2, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(bundle.code(x), bundle.run("embed", x=x)["z_mu"])
