"""Conditional sampling: an entry's `prior:` (draw a latent even where the inputs reach its
encoder), its located errors, named inputs from both command lines and the runtime API, class
names through the manifest, and `eval` of a model whose encoder reads a label."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from _tiny import tiny_spec
from PIL import Image

from latentspec.cli import main
from latentspec.spec import load_spec, validate_text
from latentspec_runtime import Bundle, InputError
from latentspec_runtime.cli import main as runtime_main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CVAE = os.path.join(ROOT, "specs", "cvae_mnist.yaml")
with open(CVAE) as _f:
    CVAE_TEXT = _f.read()
SAMPLE = '  sample:      {in: [y], prior: [z], out: [x_mean], doc: "digits of class y, z drawn from N(0, I)"}\n'
assert SAMPLE in CVAE_TEXT


def errors(text: str) -> list[str]:
    spec, diags = validate_text(text, "cvae.yaml")
    assert spec is None
    return [str(d) for d in diags if d.severity == "error"]


def with_sample(entry: str) -> str:
    # without the spec's class-fidelity claim, which needs a sampler of one class label
    text = CVAE_TEXT[: CVAE_TEXT.index("claims:\n")] + CVAE_TEXT[CVAE_TEXT.index("export:\n") :]
    return text.replace(SAMPLE, f"  sample:      {entry}\n")


def test_prior_draws_a_latent_whose_encoder_the_inputs_reach():
    spec = load_spec(CVAE)
    assert spec.export["sample"].prior == ("z",)
    from latentspec.graph import plan

    p = plan(spec.graph, ["x_mean"], ["y"], training=False, prior=["z"])
    assert p.prior_cut == {"z"}
    assert [(ph.name, ph.kind) for ph in p.placeholders] == [("y", "input"), ("eps", "noise")]
    assert "enc" not in p.nodes and "dec" in p.nodes


def test_without_prior_the_error_offers_it():
    text = with_sample("{in: [y], out: [x_mean]}")
    line = text.splitlines().index("  sample:      {in: [y], out: [x_mean]}") + 1
    (msg,) = errors(text)
    assert msg == (
        f"cvae.yaml:{line}:21: error: $.export.sample.in: entry 'sample' needs data field 'x' but it is not "
        "among its inputs; add `prior: [z]` to draw z from its prior, or add `x` to `in`"
    )


def test_a_reconstruct_that_forgot_the_label_is_not_made_a_sampler():
    # y feeds the decoder too: drawing z would not help, so the fix is to give y
    text = CVAE_TEXT.replace("reconstruct: {in: [x, y]", "reconstruct: {in: [x]")
    (msg,) = errors(text)
    assert msg.endswith("entry 'reconstruct' needs data field 'y' but it is not among its inputs; add it to `in`")


def test_a_label_only_the_encoder_reads_offers_prior():
    text = CVAE_TEXT.replace("in: [z, y_1h], out: x_logits", "in: [z], out: x_logits").replace(
        "reconstruct: {in: [x, y]", "reconstruct: {in: [x]"
    )
    (msg,) = errors(text)
    assert msg.endswith("add `prior: [z]` to draw z from its prior, or add `y` to `in`")


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            "{in: [y], prior: [zz], out: [x_mean]}",
            "$.export.sample.prior[0]: prior: 'zz' is not a latent (did you mean 'z'?)",
        ),
        (
            "{in: [y, z], prior: [z], out: [x_mean]}",
            "$.export.sample.prior[0]: prior: latent 'z' is also an input of this entry; drop it from one",
        ),
        ("{in: [y], prior: [z, z], out: [x_mean]}", "$.export.sample.prior[1]: prior: latent 'z' is listed twice"),
        ("{in: [z, y], prior: [], out: [x_mean]}", None),
        ("{in: [y], prior: z, out: [x_mean]}", "$.export.sample.prior: expected a list, got 'z'"),
    ],
)
def test_prior_is_checked(entry, message):
    spec, diags = validate_text(with_sample(entry), "cvae.yaml")
    if message is None:
        assert spec is not None, diags
        return
    assert message in [str(d).split(": error: ", 1)[1] for d in diags if d.severity == "error"], diags


def test_prior_of_a_latent_without_one_or_unused():
    text = CVAE_TEXT.replace("z: {dim: 2, prior: normal}", "z: {dim: 2, prior: normal}\n  w: {dim: 2, prior: none}")
    text = text.replace(SAMPLE, "  sample:      {in: [y], prior: [w], out: [x_mean]}\n")
    (msg,) = errors(text)
    assert msg.endswith(
        "$.export.sample.prior[0]: prior: latent 'w' has no prior to draw from (declared with `prior: none`)"
    )
    text = CVAE_TEXT.replace(SAMPLE, "  sample:      {in: [z, y], prior: [], out: [x_mean]}\n").replace(
        "decode:      {in: [z, y], out: [x_mean]}", "decode:      {in: [y], prior: [z], out: [y_1h]}"
    )
    (msg,) = errors(text)
    assert msg.endswith(
        "$.export.decode.prior[0]: prior: entry 'decode' never uses latent 'z' (its outputs do not depend on it)"
    )


@pytest.mark.parametrize(
    "old, new, expected",
    [
        # a schema error in a term, an undefined tensor in a node (sorted by line)
        (
            "kl:    {term: gaussian_kl, in: [z_mu, z_logvar]}",
            "kl:    {term: gaussian_kll, in: [z_mu, z_logvar]}",
            ["$.nodes.dec.in[0]: undefined tensor 'zz'", "$.objective.kl.term: unknown term 'gaussian_kll'"],
        ),
        # a schema error in an entry; its own name is not reported again
        (
            "encode:      {in: [x, y], out: [z_mu, z_logvar]}",
            "encode:      {in: [x, y], out: [z_mu, z_logvar], steps: -1}",
            ["$.nodes.dec.in[0]: undefined tensor 'zz'", "$.export.encode.steps: must be ≥ 0"],
        ),
    ],
)
def test_every_pass_reports_in_one_run(old, new, expected):
    text = CVAE_TEXT.replace(old, new).replace("in: [z, y_1h], out: x_logits", "in: [zz, y_1h], out: x_logits")
    assert new in text
    found = errors(text)
    assert len(found) == len(expected), found
    for msg, want in zip(found, expected, strict=True):
        assert want in msg, found


def test_a_broken_data_section_stops_at_the_schema():
    text = CVAE_TEXT.replace("batch: 100", "batch: many").replace(
        "in: [z, y_1h], out: x_logits", "in: [zz, y_1h], out: x_logits"
    )
    (msg,) = errors(text)
    assert "$.data.batch: expected an integer" in msg


# -- end to end on a tiny CVAE ---------------------------------------------------------------


@pytest.fixture(scope="module")
def cvae_run(tmp_path_factory) -> str:
    from latentspec.train.trainer import train

    tmp = tmp_path_factory.mktemp("cvae")
    spec = load_spec(tiny_spec(CVAE, str(tmp), rows=160, epochs=1))
    run = str(tmp / "run")
    train(spec, run, quiet=True, device="cpu")
    return run


@pytest.fixture(scope="module")
def cvae_bundle(cvae_run, tmp_path_factory) -> str:
    from latentspec.export import export_run

    out = str(tmp_path_factory.mktemp("cvae_bundle") / "bundle")
    manifest = export_run(cvae_run, out, verify=True)
    assert set(manifest["verified"]) == {"encode", "decode", "reconstruct", "sample"}
    return out


def test_eval_feeds_the_label_to_the_encoder(cvae_run):
    from latentspec.train.evaluate import evaluate_run

    result = evaluate_run(cvae_run, probe="y")["test"]
    assert np.isfinite(result["neg_elbo"]) and result["neg_elbo"] > 0
    assert result["neg_elbo"] == pytest.approx(result["neg_elbo_recon"] + result["neg_elbo_kl"])
    assert 0 <= result["probe_accuracy"] <= 1


def test_cli_sample_of_a_class(cvae_run, tmp_path, capsys):
    assert main(["sample", cvae_run, "-n", "4", "--input", "y=7", "-o", str(tmp_path / "sevens.png")]) == 0
    assert main(["sample", cvae_run, "-n", "4", "-o", str(tmp_path / "rows.png")]) == 0  # a row per class
    with Image.open(tmp_path / "sevens.png") as one, Image.open(tmp_path / "rows.png") as rows:
        assert rows.size[1] > 4 * one.size[1]  # ten labelled rows of 4 against a 2 x 2 grid
    capsys.readouterr()
    for bad, msg in [
        ("y=12", "--input y: class 12 is out of range; 'y' has classes 0..9"),
        ("yy=1", "--input yy: entry 'sample' has no input 'yy' (did you mean 'y'?); it takes: y"),
        ("y=seven", "--input y: 'seven' is not a class of 'y'; it takes an index 0..9"),
    ]:
        assert main(["sample", cvae_run, "-n", "4", "--input", bad, "-o", str(tmp_path / "x.png")]) == 1
        err = capsys.readouterr().err
        assert err.strip() == f"latentspec: error: {msg}", err


def test_sample_images_of_a_class_match_the_graph(cvae_run):
    import torch

    from latentspec.run import load_run
    from latentspec.train.pictures import run_entry, sample_images

    _, model = load_run(cvae_run)
    sevens = sample_images(model, 3, seed=1, inputs={"y": 7})
    (ref,) = run_entry(model, "sample", {"y": torch.full((3,), 7)}, 3, 1)[:1]
    np.testing.assert_array_equal(sevens, ref.numpy())
    assert not np.allclose(sevens, sample_images(model, 3, seed=1, inputs={"y": 1}))


def test_runtime_sample_of_a_class(cvae_bundle, tmp_path, capsys):
    b = Bundle.load(cvae_bundle)
    sevens = b.sample(4, seed=0, y=7)
    assert sevens.shape == (4, 1, 28, 28)
    np.testing.assert_array_equal(sevens, b.sample(4, seed=0, y=np.full(4, 7)))
    assert not np.allclose(sevens, b.sample(4, seed=0, y=3))
    with pytest.raises(InputError, match=r"input 'y' \(label\) must lie in \[0, 9\]; found values in \[10, 10\]"):
        b.sample(4, y=10)
    with pytest.raises(InputError, match="input 'y' takes class indices, not names like 'seven'"):
        b.sample(4, y="seven")
    png = str(tmp_path / "s.png")
    assert runtime_main(["sample", cvae_bundle, "-n", "4", "y=7", "-o", png]) == 0
    assert runtime_main(["sample", cvae_bundle, "-n", "4", "--input", "y=7", "-o", str(tmp_path / "t.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "t.npy"), sevens)
    capsys.readouterr()
    assert runtime_main(["sample", cvae_bundle, "-n", "4", "-o", png]) == 2
    assert capsys.readouterr().err.strip() == (
        "latentspec-runtime: error: entry 'sample' samples given y (int64 [batch]  label in [0, 9]): pass y=VALUE"
    )
    assert runtime_main(["sample", cvae_bundle, "-n", "4", "y=12", "-o", png]) == 1
    assert "input 'y' (label) must lie in [0, 9]" in capsys.readouterr().err


SHAPES = """
latentspec: 1
name: cvae_shapes
data:
  dataset: {shapes: {size: 64}}
  split: {train: 48, test: 16}
  fields:
    x: {from: image}
    c: {from: class}
  batch: 16
latents:
  z: {dim: 4}
nodes:
  c1:   {module: one_hot, in: c}
  enc:  {module: mlp, in: [x, c1], out: h, hidden: [16]}
  post: {module: gaussian_head, in: h, out: [mu, logvar], latent: z}
  draw: {op: reparameterize, in: [mu, logvar], out: z}
  dec:  {module: mlp, in: [z, c1], out: x_hat, hidden: [16], shape: [1, 32, 32]}
objective:
  rec: {term: mse, in: [x_hat, x]}
  kl:  {term: gaussian_kl, in: [mu, logvar]}
train: {optimizer: {name: adam, lr: 0.001}, epochs: 1}
export:
  sample: {in: [c], prior: [z], out: [x_hat]}
"""


def test_class_names_travel_into_the_bundle(tmp_path, capsys):
    from latentspec.export import export_run
    from latentspec.train.trainer import train

    (tmp_path / "s.yaml").write_text(SHAPES)
    run, bundle = str(tmp_path / "run"), str(tmp_path / "bundle")
    train(load_spec(str(tmp_path / "s.yaml")), run, quiet=True, device="cpu")
    export_run(run, bundle)
    with open(os.path.join(bundle, "manifest.json")) as f:
        (c,) = [t for t in json.load(f)["entries"]["sample"]["inputs"] if t["name"] == "c"]
    assert c["classes"] == ["square", "ellipse", "triangle", "heart"] and c["range"] == [0, 3]
    b = Bundle.load(bundle)
    np.testing.assert_array_equal(b.sample(2, c="heart"), b.sample(2, c=3))
    with pytest.raises(InputError, match=r"unknown class 'hert' \(did you mean 'heart'\?\); classes: square, "):
        b.sample(2, c="hert")
    assert runtime_main(["sample", bundle, "-n", "2", "c=heart", "-o", str(tmp_path / "h.png")]) == 0
    assert main(["sample", run, "-n", "2", "--input", "c=heart", "-o", str(tmp_path / "g.png")]) == 0
    capsys.readouterr()
    assert main(["sample", run, "-n", "2", "--input", "c=hart", "-o", str(tmp_path / "g.png")]) == 1
    assert capsys.readouterr().err.strip() == (
        "latentspec: error: --input c: 'hart' is not a class of 'c' (did you mean 'heart'?); "
        "it takes square, ellipse, triangle, heart or an index 0..3"
    )


def test_manifest_class_names_are_checked(cvae_bundle, tmp_path):
    import shutil

    from latentspec_runtime import BundleError

    copy = tmp_path / "b"
    shutil.copytree(cvae_bundle, copy)
    path = copy / "manifest.json"
    manifest = json.loads(path.read_text())
    y = manifest["entries"]["sample"]["inputs"][0]
    assert y["name"] == "y" and "classes" not in y  # mnist's labels have no names
    y["classes"] = ["zero", "one"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"inputs\[0\]\.classes: class names belong to a label input, one per class"):
        Bundle.load(str(copy))
    y["classes"] = [f"digit{i}" for i in range(10)]
    path.write_text(json.dumps(manifest))
    b = Bundle.load(str(copy))
    np.testing.assert_array_equal(b.sample(2, y="digit7"), b.sample(2, y=7))
