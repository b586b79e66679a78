"""Claims across runs: a spec's ``baselines:`` and claims on ``NAME:path``, validated with located
errors, checked by `latentspec check RUN --baseline NAME=OTHER_RUN`, recorded in ``RUN/claims.json``
and carried into the bundle's manifest by `export` (while both runs' eval.json are unchanged).

`check` reads a run's spec.yaml and eval.json only, so most runs here are written by hand; the
export test trains the tiny VAE for one epoch."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from _tinyvae import tiny_vae

from latentspec.cli import main
from latentspec.spec import load_spec, validate_text

VAE = tiny_vae("tiny_cross", export="  sample: {in: [], out: [x_mean]}\n")
BASELINES = "baselines:\n  vae: {doc: the same VAE trained longer, spec: specs/vae_mnist.yaml}\n"
CLAIMS = """\
claims:
  - {name: beats_vae, metric: test.neg_elbo, lt: vae:test.neg_elbo, doc: lower bound than the baseline}
  - {name: codes_used, metric: test.active_units, ge: {of: vae:test.active_units, times: 0.5}}
  - {name: own, metric: test.recon, lt: 1.0e6}
"""
SPEC = VAE + BASELINES + CLAIMS


def _errors(text: str) -> list[str]:
    spec, diags = validate_text(text, "s.yaml")
    assert spec is None
    return [str(d) for d in diags]


def _fake_run(folder, text: str, result: dict | None) -> str:
    """A run directory as `check` reads it: spec.yaml and (when given) eval.json."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "spec.yaml"), "w") as f:
        f.write(text)
    if result is not None:
        with open(os.path.join(folder, "eval.json"), "w") as f:
            json.dump(result, f)
    return str(folder)


def _eval(neg_elbo: float, units: int = 4, recon: float = 80.0) -> dict:
    return {"checkpoint": "last", "test": {"neg_elbo": neg_elbo, "active_units": units, "recon": recon}}


# -- validation ---------------------------------------------------------------------------------


def test_a_spec_with_baselines_and_claims_on_them_is_valid():
    spec = load_spec(SPEC, text=True)
    assert spec.raw["baselines"]["vae"]["doc"] == "the same VAE trained longer"


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        (
            "  - {metric: test.neg_elbo, lt: vea:test.neg_elbo}\n",
            "s.yaml:28:33: error: $.claims[0].lt: 'vea' in 'vea:test.neg_elbo' is not a baseline of this spec "
            "(did you mean 'vae'?)",
        ),
        (
            "  - {metric: ae:test.neg_elbo, lt: 1}\n",
            "$.claims[0].metric: 'ae' in 'ae:test.neg_elbo' is not a baseline of this spec (did you mean 'vae'?)",
        ),
        (
            "  - {metric: test.neg_elbo, le: {of: vae:test..neg_elbo, times: 2}}\n",
            "$.claims[0].le.of: 'test..neg_elbo' in 'vae:test..neg_elbo' is not a dotted path into eval.json",
        ),
        (
            "  - {metric: 'vae:', lt: 1}\n",
            "$.claims[0].metric: '' in 'vae:' is not a dotted path into eval.json",
        ),
        (  # the unprefixed side is validated as before
            "  - {metric: test.neg_elbow, lt: vae:test.neg_elbo}\n",
            "$.claims[0].metric: `latentspec eval` writes no metric 'test.neg_elbow' for this spec "
            "(did you mean 'test.neg_elbo'?)",
        ),
    ],
)
def test_bad_claims_on_baselines_are_located_errors(claims, message):
    errors = _errors(VAE + BASELINES + "claims:\n" + claims)
    assert any(message in e for e in errors), errors


def test_a_claim_on_a_baseline_the_spec_does_not_declare():
    (error,) = _errors(VAE + "claims:\n  - {metric: test.neg_elbo, lt: vae:test.neg_elbo}\n")
    assert "$.claims[0].lt: 'vae' in 'vae:test.neg_elbo' is not a baseline of this spec" in error
    assert "declare it: `baselines: {vae: {doc: what that run is}}`" in error


def test_a_baseline_needs_its_doc_and_no_other_keys():
    errors = _errors(VAE + "baselines:\n  vae: {spec: a.yaml, run: x}\n")
    assert any("$.baselines.vae" in e and "doc" in e for e in errors), errors
    assert any("$.baselines.vae.run: unknown key 'run'" in e for e in errors), errors


# -- check --------------------------------------------------------------------------------------


def test_check_without_the_baseline_leaves_its_claims_unchecked(tmp_path, capsys):
    run = _fake_run(tmp_path / "run", SPEC, _eval(100.0))
    assert main(["check", run]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("unchecked") and "beats_vae: test.neg_elbo < vae:test.neg_elbo" in lines[0]
    assert "(needs --baseline vae=RUN)" in lines[0] and "(needs --baseline vae=RUN)" in lines[1]
    assert lines[2].startswith("holds") and "own: test.recon < 1e+06  (80 vs 1e+06)" in lines[2]
    assert "2 of 3 claims unchecked (a number or a --baseline run is missing): beats_vae, codes_used" in err


def test_check_with_the_baseline_says_where_each_number_came_from(tmp_path, capsys):
    run = _fake_run(tmp_path / "run", SPEC, _eval(100.0, units=3))
    other = _fake_run(tmp_path / "vae", VAE, _eval(110.0, units=4))
    assert main(["check", run, "--baseline", f"vae={other}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[0] == f"holds      beats_vae: test.neg_elbo < vae:test.neg_elbo  (100 from {run} vs 110 from vae={other})"
    )
    assert lines[1].startswith("holds") and f"(3 from {run} vs 2 from vae={other})" in lines[1]
    # the record: every claim, this run's and the baseline's eval.json by hash
    with open(os.path.join(run, "claims.json")) as f:
        record = json.load(f)
    with open(os.path.join(other, "eval.json"), "rb") as f:
        other_sha = hashlib.sha256(f.read()).hexdigest()
    assert record["spec"] == "tiny_cross"
    assert record["baselines"] == {
        "vae": {"run": os.path.abspath(other), "spec": "tiny_cross", "eval_sha256": other_sha}
    }
    assert [(c["name"], c["holds"]) for c in record["claims"]] == [
        ("beats_vae", True),
        ("codes_used", True),
        ("own", True),
    ]
    assert record["claims"][0]["value_from"] == run and record["claims"][0]["target_from"] == f"vae={other}"
    assert [n for n in os.listdir(run) if n.startswith(".")] == []  # written atomically: no temp file left


def test_a_failing_cross_run_claim_exits_1_naming_it(tmp_path, capsys):
    run = _fake_run(tmp_path / "run", SPEC, _eval(120.0))
    other = _fake_run(tmp_path / "vae", VAE, _eval(110.0))
    assert main(["check", run, "--baseline", f"vae={other}"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith("FAILS      beats_vae: test.neg_elbo < vae:test.neg_elbo  (120 from")
    assert "1 of 3 claims fail: beats_vae" in err
    with open(os.path.join(run, "claims.json")) as f:
        assert json.load(f)["claims"][0]["holds"] is False


def test_a_baseline_without_the_number_names_the_eval_flag(tmp_path, capsys):
    spec = VAE + BASELINES + "claims:\n  - {name: nll, metric: test.neg_elbo, ge: vae:test.iwae_nll}\n"
    run = _fake_run(tmp_path / "run", spec, _eval(100.0))
    other = _fake_run(tmp_path / "vae", VAE, _eval(110.0))
    assert main(["check", run, "--baseline", f"vae={other}"]) == 1
    out, _ = capsys.readouterr()
    assert f"baseline vae's eval.json has no 'test.iwae_nll': run `latentspec eval {other} --iwae K`" in out
    os.remove(os.path.join(other, "eval.json"))
    assert main(["check", run, "--baseline", f"vae={other}"]) == 1
    assert f"baseline vae: {other} has no eval.json: run `latentspec eval {other}` first" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--baseline", "vea={other}"],
            "--baseline vea={other}: the spec 'tiny_cross' has no baseline 'vea' "
            "(did you mean 'vae'?); its baselines are vae",
        ),
        (["--baseline", "vae={other}/nowhere"], "--baseline vae={other}/nowhere: not a run directory (no spec.yaml)"),
        (["--baseline", "vae"], "--baseline vae: expected NAME=RUN"),
        (["--baseline", "vae={other}", "--baseline", "vae={other}"], "baseline 'vae' is given twice"),
    ],
)
def test_bad_baselines_on_the_command_line(tmp_path, capsys, argv, message):
    run = _fake_run(tmp_path / "run", SPEC, _eval(100.0))
    other = _fake_run(tmp_path / "vae", VAE, _eval(110.0))
    assert main(["check", run, *(a.format(other=other) for a in argv)]) == 1
    err = capsys.readouterr().err
    assert message.format(other=other) in err and "Traceback" not in err
    assert not os.path.exists(os.path.join(run, "claims.json"))


def test_a_baseline_whose_spec_eval_writes_no_such_metric(tmp_path, capsys):
    """The other run's spec decides which paths exist: an AE's eval writes no test.neg_elbo."""
    ae = VAE.replace("  kl:    {term: gaussian_kl, in: [z_mu, z_logvar]}\n", "")
    run = _fake_run(tmp_path / "run", SPEC, _eval(100.0))
    other = _fake_run(tmp_path / "ae", ae, {"test": {"recon": 90.0}})
    assert main(["check", run, "--baseline", f"vae={other}"]) == 1
    err = capsys.readouterr().err
    assert (
        f"claim 'beats_vae' reads 'vae:test.neg_elbo', but `latentspec eval` writes no metric 'test.neg_elbo' "
        f"for {other} (spec 'tiny_cross'): eval writes it for a VAE"
    ) in err


# -- export -------------------------------------------------------------------------------------


def test_export_carries_the_checked_cross_run_claim(tmp_path, capsys):
    from latentspec.export import export_run
    from latentspec.train.evaluate import evaluate_run
    from latentspec.train.trainer import train
    from latentspec_runtime.cli import main as runtime_main

    run = str(tmp_path / "run")
    train(load_spec(SPEC, text=True), run, quiet=True)
    result = evaluate_run(run)
    t = result["test"]
    other = _fake_run(tmp_path / "vae", VAE, _eval(t["neg_elbo"] + 1.0, units=t["active_units"]))

    def exported(name: str) -> dict:
        manifest = export_run(run, str(tmp_path / name), entries=["sample"])
        return {c["name"]: c for c in manifest["claims"]}

    # not checked yet: the one-run claim is checked at export, the cross-run ones say what to run
    before = exported("b0")
    assert before["own"]["holds"] is True
    assert before["beats_vae"]["holds"] is None and "no claims.json" in before["beats_vae"]["missing"]

    assert main(["check", run, "--baseline", f"vae={other}"]) == 0
    capsys.readouterr()
    claims = exported("b1")
    beats = claims["beats_vae"]
    assert (beats["holds"], beats["value"], beats["target"]) == (True, t["neg_elbo"], t["neg_elbo"] + 1.0)
    assert beats["target_from"] == f"vae={other}" and beats["doc"] == "lower bound than the baseline"
    with open(tmp_path / "b1" / "manifest.json") as f:
        assert json.load(f)["claims"] == list(claims.values())
    assert runtime_main(["info", str(tmp_path / "b1")]) == 0
    assert "holds      beats_vae: test.neg_elbo < vae:test.neg_elbo  (" in (out := capsys.readouterr().out)
    assert f"from vae={other})" in out

    # the baseline's eval.json changed after check: the recorded verdict is not carried
    _fake_run(tmp_path / "vae", VAE, _eval(t["neg_elbo"] - 1.0))
    stale = exported("b2")["beats_vae"]
    assert stale["holds"] is None and "baseline vae's eval.json" in stale["missing"]
    assert "changed after `latentspec check`" in stale["missing"]
    assert exported("b2b")["own"]["holds"] is True
