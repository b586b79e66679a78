"""`claims:` — validated against the metric paths `eval` declares (``spec._evalkeys``), checked
by `latentspec check RUN`, copied into the bundle's manifest, printed by `latentspec-runtime info`.

The declarations are kept honest here: eval runs on tiny runs with every flag, and every key it
writes must be declared, and every key declared must be written."""

from __future__ import annotations

import json
import os

import pytest
from _tinyvae import tiny_vae

from latentspec.cli import main
from latentspec.spec import load_spec, validate_text
from latentspec.spec._evalkeys import ANY, eval_keys, lookup, written_paths
from latentspec.train.evaluate import evaluate_run
from latentspec.train.trainer import train

VAE = tiny_vae(
    "tiny_claims",
    labels=True,
    train="  epochs: 1\n",
    export="  sample: {in: [], out: [x_mean]}\n  invert: {in: [x], optimize: z, terms: [recon], steps: 2, out: [z, x_mean]}\n",
)

CLAIMS = """\
claims:
  - {name: iwae_tighter, metric: test.iwae_nll, le: test.neg_elbo, doc: the IWAE bound is at least as tight}
  - {name: few_units, metric: test.active_units, le: {of: test.latent_dim, plus: 0}}
  - {name: impossible, metric: test.neg_elbo, lt: {of: test.neg_elbo, times: 0.5}}
"""

SHAPES = """\
latentspec: 1
name: tiny_shapes
data:
  dataset: {shapes: {size: 120}}
  split: {train: 80, test: 40}
  fields: {x: {from: image}}
  batch: 20
latents:
  z: {dim: 3}
nodes:
  enc:    {module: mlp, in: x, out: h, hidden: [16]}
  post:   {module: gaussian_head, in: h, out: [z_mu, z_logvar], latent: z}
  draw:   {op: reparameterize, in: [z_mu, z_logvar], out: z}
  dec:    {module: mlp, in: z, out: x_logits, hidden: [16], shape: [1, 32, 32]}
objective:
  recon: {term: bernoulli_nll, in: [x_logits, x]}
  kl:    {term: gaussian_kl, in: [z_mu, z_logvar]}
train:
  epochs: 1
"""


def _run(tmp_path_factory, name: str, text: str) -> str:
    folder = tmp_path_factory.mktemp(name)
    path = folder / "spec.yaml"
    path.write_text(text)
    run = str(folder / "run")
    train(load_spec(str(path)), run, quiet=True)
    return run


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    return _run(tmp_path_factory, "claims", VAE + CLAIMS)


def _errors(text: str) -> list[str]:
    spec, diags = validate_text(text, "s.yaml")
    assert spec is None
    return [str(d) for d in diags]


def _assert_honest(spec, result: dict) -> None:
    keys = eval_keys(spec)
    written = written_paths(result)
    undeclared = [p for p in written if lookup(keys, p) is None]
    assert not undeclared, f"eval writes keys spec._evalkeys does not declare: {undeclared}"
    unwritten = [k.path for k in keys if not any(k.matches(p) for p in written)]
    assert not unwritten, f"spec._evalkeys declares keys eval did not write: {unwritten}"


def test_every_key_eval_writes_is_declared(vae):
    # the run is its own feature network (its encoder mean): only the key set matters here
    result = evaluate_run(vae, iwae=2, probe="y", features=vae, feature_tensor="z_mu", samples=16)
    _assert_honest(load_spec(os.path.join(vae, "spec.yaml")), result)


@pytest.mark.slow
def test_disentanglement_keys_are_declared(tmp_path_factory):
    run = _run(tmp_path_factory, "shapes", SHAPES)
    result = evaluate_run(run, disentanglement=True, iwae=2)
    assert any(p.startswith("disentanglement.factors.") for p in written_paths(result))
    _assert_honest(load_spec(os.path.join(run, "spec.yaml")), result)
    assert lookup(eval_keys(load_spec(os.path.join(run, "spec.yaml"))), f"disentanglement.factors.{ANY}.spearman")


def test_check_before_eval_says_to_run_eval(vae, capsys):
    if os.path.exists(os.path.join(vae, "eval.json")):
        os.remove(os.path.join(vae, "eval.json"))
    assert main(["check", vae]) == 1
    out, err = capsys.readouterr()
    assert f"no eval.json: run `latentspec eval {vae}` first" in out
    assert "3 of 3 claims unchecked" in err


def test_check_names_the_flag_of_a_missing_metric(vae, capsys):
    evaluate_run(vae)  # without --iwae
    assert main(["check", vae]) == 1
    out, err = capsys.readouterr()
    assert f"eval.json has no 'test.iwae_nll': run `latentspec eval {vae} --iwae K`" in out
    assert "claims unchecked (a number is missing): iwae_tighter" in err


def test_check_prints_each_claim_and_fails_naming_it(vae, capsys):
    result = evaluate_run(vae, iwae=4)
    assert main(["check", vae]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    t = result["test"]
    assert lines[0].startswith("holds") and "iwae_tighter: test.iwae_nll ≤ test.neg_elbo" in lines[0]
    assert f"({t['iwae_nll']:.6g} vs {t['neg_elbo']:.6g})" in lines[0]
    assert lines[1].startswith("holds") and "few_units: test.active_units ≤ test.latent_dim" in lines[1]
    assert lines[2].startswith("FAILS") and "impossible: test.neg_elbo < 0.5 × test.neg_elbo" in lines[2]
    assert f"({t['neg_elbo']:.6g} vs {0.5 * t['neg_elbo']:.6g})" in lines[2]
    assert "1 of 3 claims fail: impossible" in err


def test_check_passes_when_every_claim_holds(tmp_path_factory, capsys):
    run = _run(tmp_path_factory, "holds", VAE + CLAIMS.rsplit("  - {name: impossible", 1)[0])
    evaluate_run(run, iwae=2)
    assert main(["check", run]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["holds", "holds"]


def test_export_copies_checked_claims_and_info_prints_them(vae, tmp_path, capsys):
    from latentspec.export import export_run
    from latentspec_runtime.cli import main as runtime_main

    result = evaluate_run(vae, iwae=2)
    manifest = export_run(vae, str(tmp_path / "bundle"), entries=["sample"])
    claims = manifest["claims"]
    assert [(c["name"], c["holds"]) for c in claims] == [
        ("iwae_tighter", True),
        ("few_units", True),
        ("impossible", False),
    ]
    assert claims[2]["value"] == result["test"]["neg_elbo"]
    assert claims[2]["target"] == 0.5 * result["test"]["neg_elbo"]
    assert claims[0]["doc"] == "the IWAE bound is at least as tight"
    with open(tmp_path / "bundle" / "manifest.json") as f:
        assert json.load(f)["claims"] == claims
    assert runtime_main(["info", str(tmp_path / "bundle")]) == 0
    out = capsys.readouterr().out
    assert "claims:" in out
    assert "FAILS      impossible: test.neg_elbo < 0.5 × test.neg_elbo" in out


@pytest.mark.parametrize(
    ("claim", "message"),
    [
        (
            "{metric: test.neg_elbow, lt: 100}",
            "s.yaml:27:14: error: $.claims[0].metric: `latentspec eval` writes no metric 'test.neg_elbow' "
            "for this spec (did you mean 'test.neg_elbo'?)",
        ),
        (
            "{metric: test.neg_elbo, le: {of: test.iwae, times: 0.8}}",
            "$.claims[0].le.of: `latentspec eval` writes no metric 'test.iwae' for this spec (did you mean 'test.iwae_nll'?)",
        ),
        ("{metric: checkpoint, lt: 1}", "'checkpoint' is text (the checkpoint evaluated (last or best))"),
        ("{metric: test.recon, lt: 1, gt: 0}", "a claim needs exactly one of lt, le, gt, ge, within; it has lt, gt"),
        ("{metric: test.recon}", "a claim needs exactly one of lt, le, gt, ge, within; it has none"),
        ("{metric: test.recon, within: {of: 1}}", "`within` needs one tolerance: `rel` or `abs`"),
        (
            "{metric: disentanglement.mig, gt: 0.5}",
            "writes no metric 'disentanglement.mig' for this spec: `eval --disentanglement` needs a dataset "
            "with ground-truth factors (shapes, hands, faces)",
        ),
    ],
)
def test_bad_claims_are_located_errors(claim, message):
    errors = _errors(VAE + f"claims:\n  - {claim}\n")
    assert any(message in e for e in errors), errors


def test_unknown_claim_key_is_a_schema_error():
    errors = _errors(VAE + "claims:\n  - {metric: test.recon, lte: 1}\n")
    assert any("$.claims[0].lte: unknown key 'lte' (did you mean 'lt'?)" in e for e in errors), errors


def test_within_tolerances():
    from latentspec.spec._claims import claims_of, evaluate

    spec = load_spec(
        VAE
        + "claims:\n"
        + "  - {metric: test.recon, within: {of: 100, rel: 0.02}}\n"
        + "  - {metric: test.recon, within: {of: test.kl, abs: 5}}\n",
        text=True,
    )
    keys = eval_keys(spec)
    rel, ab = claims_of(spec)
    assert evaluate(rel, keys, {"test": {"recon": 101.9}}).holds
    assert not evaluate(rel, keys, {"test": {"recon": 102.1}}).holds
    assert evaluate(ab, keys, {"test": {"recon": 14.0, "kl": 10.0}}).holds
    assert not evaluate(ab, keys, {"test": {"recon": 15.5, "kl": 10.0}}).holds
    assert rel.text() == "test.recon ≈ 100 (± 2%)"


def test_check_of_a_spec_without_claims_says_so(tmp_path, capsys):
    (tmp_path / "spec.yaml").write_text(VAE)  # `check` reads the run's spec and eval.json only
    assert main(["check", str(tmp_path)]) == 0
    assert "the spec states no claims" in capsys.readouterr().out


def test_check_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["check", str(tmp_path)]) == 1
    assert "not a run directory (no spec.yaml)" in capsys.readouterr().err
