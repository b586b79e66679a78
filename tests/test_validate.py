"""`latentspec validate`: every bad spec gives its pinned diagnostics; good specs pass."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import jsonschema
import pytest
import yaml

from latentspec.cli import main
from latentspec.spec import spec_schema, validate_file, validate_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BAD = os.path.join(ROOT, "tests", "bad_specs")
GOOD = sorted(
    glob.glob(os.path.join(ROOT, "specs", "*.yaml")) + glob.glob(os.path.join(ROOT, "tests", "gallery", "*.yaml"))
)
BAD_SPECS = sorted(glob.glob(os.path.join(BAD, "*.yaml")))


def test_there_are_enough_bad_specs():
    assert len(BAD_SPECS) >= 25


@pytest.mark.parametrize("path", BAD_SPECS, ids=os.path.basename)
def test_bad_spec_gives_pinned_diagnostics(path, monkeypatch, capsys):
    monkeypatch.chdir(BAD)
    name = os.path.basename(path)
    rc = main(["validate", name])
    out = capsys.readouterr()
    with open(path[: -len(".yaml")] + ".expected") as f:
        expected = f.read()
    assert rc == 1
    assert out.out == expected
    assert "Traceback" not in out.out + out.err


@pytest.mark.parametrize("path", GOOD, ids=os.path.basename)
def test_shipped_specs_are_valid(path):
    spec, diags = validate_file(path)
    assert spec is not None, "\n".join(map(str, diags))
    assert not [d for d in diags if d.severity == "error"]


@pytest.mark.parametrize("path", GOOD, ids=os.path.basename)
def test_schema_alone_accepts_shipped_specs(path):
    with open(path) as f:
        data = yaml.safe_load(f)
    jsonschema.Draft202012Validator(spec_schema()).validate(data)


def test_published_schema_file_is_in_sync():
    with open(os.path.join(ROOT, "latentspec", "schema", "latentspec.schema.json")) as f:
        assert json.load(f) == spec_schema(), "run `latentspec schema > latentspec/schema/latentspec.schema.json`"


def test_schema_is_closed_everywhere():
    def walk(s, path):
        if isinstance(s, dict):
            if (
                s.get("type") == "object"
                and "properties" in s
                and "allOf" not in s
                and "$ref" not in s
                and "anyOf" not in s
            ):
                # open objects only where entries are dispatched by if/then to closed sub-schemas
                assert s.get("additionalProperties") is False or "patternProperties" in s, path
            for k, v in s.items():
                walk(v, f"{path}.{k}")
        elif isinstance(s, list):
            for i, v in enumerate(s):
                walk(v, f"{path}[{i}]")

    schema = spec_schema()
    for name, d in schema["$defs"].items():
        if name in ("node", "term", "optimizer", "schedule") or name.startswith(("dataset.", "sampler.")):
            continue
        walk(d, name)


TYPO_LINES = [("enc", "hidden", "hiden"), ("post", "latent", "latnt"), ("dec", "activation", "activaton")]


@pytest.mark.parametrize(("node", "key", "typo"), TYPO_LINES)
def test_key_typo_anywhere_is_located_with_suggestion(node, key, typo):
    with open(os.path.join(ROOT, "specs", "vae_mnist.yaml")) as f:
        text = f.read()
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if line.lstrip().startswith(f"{node}:"))
    col = lines[i].index(f"{key}:") + 1
    lines[i] = lines[i].replace(f"{key}:", f"{typo}:", 1)
    _, diags = validate_text("\n".join(lines), "vae.yaml")
    typo_diags = [d for d in diags if d.message.startswith("unknown key")]
    assert len(typo_diags) == 1
    (d,) = typo_diags
    assert (d.line, d.col) == (i + 1, col)
    assert d.message == f"unknown key '{typo}' (did you mean '{key}'?)"
    assert d.path == f"$.nodes.{node}.{typo}"


def test_json_format(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(BAD)
    assert main(["validate", "--format", "json", "key_typo_hiden.yaml"]) == 1
    (d,) = json.loads(capsys.readouterr().out)
    assert d == {
        "file": "key_typo_hiden.yaml",
        "line": 19,
        "col": 47,
        "severity": "error",
        "path": "$.nodes.dec.hiden",
        "message": "unknown key 'hiden' (did you mean 'hidden'?)",
    }


def test_missing_file_is_a_usage_error(capsys):
    assert main(["validate", "does/not/exist.yaml"]) == 2
    assert "cannot read spec" in capsys.readouterr().err


def test_warnings_alone_exit_zero(tmp_path):
    with open(os.path.join(ROOT, "specs", "vae_mnist.yaml")) as f:
        text = f.read().replace(
            "  x_mean: {op: sigmoid, in: x_logits}",
            "  x_mean: {op: sigmoid, in: x_logits}\n  spare:  {op: tanh, in: h}",
        )
    p = tmp_path / "warn.yaml"
    p.write_text(text)
    assert main(["validate", str(p)]) == 0


def test_validate_imports_no_torch():
    code = (
        "import sys; from latentspec.cli import main; rc = main(['validate', 'specs/vae_mnist.yaml']);"
        "assert 'torch' not in sys.modules, 'validate imported torch'; sys.exit(rc)"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_set_override_is_validated(tmp_path, capsys):
    spec, diags = validate_file(os.path.join(ROOT, "specs", "vae_mnist.yaml"), ["data.batch=0"])
    assert spec is None
    assert any(d.path == "$.data.batch" and "must be ≥ 1" in d.message for d in diags)
    spec, _ = validate_file(os.path.join(ROOT, "specs", "vae_mnist.yaml"), ["data.batch=64", "train.epochs=2"])
    assert spec.data.batch == 64 and spec.train.stages[0].epochs == 2
