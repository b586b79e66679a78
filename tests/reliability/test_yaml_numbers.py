"""YAML numbers as users write them: YAML 1.2 floats in spec files and in `--set`, whose
errors point at the argument."""

from __future__ import annotations

import pytest
from _reliability import VAE
from hypothesis import given, settings
from hypothesis import strategies as st

from latentspec.cli import main
from latentspec.spec import SpecError, load_spec, validate_file, validate_text
from latentspec.spec._yaml import parse_value


def vae_text(lr: str) -> str:
    with open(VAE) as f:
        text = f.read()
    assert "lr: 1.0e-3" in text
    return text.replace("lr: 1.0e-3", f"lr: {lr}")


@pytest.mark.parametrize(("text", "value"), [("5e-4", 5e-4), ("1E-2", 0.01), ("+2e-3", 0.002), (".5", 0.5)])
def test_scientific_notation_is_a_number_in_the_file(text, value):
    spec, diags = validate_text(vae_text(text), "vae.yaml")
    assert spec is not None, diags
    assert spec.raw["train"]["optimizer"]["lr"] == value
    assert isinstance(spec.raw["train"]["optimizer"]["lr"], float)


def test_scientific_notation_is_a_number_in_set():
    spec = load_spec(VAE, ["train.optimizer.lr=1e-3", "train.epochs=3"])
    assert spec.raw["train"]["optimizer"]["lr"] == 1e-3 and spec.raw["train"]["epochs"] == 3


def test_strings_that_are_not_numbers_stay_strings():
    for text in ("1e", "e5", "1.2.3", "abc", "0x"):
        assert isinstance(parse_value(text, "--set x"), str)


@pytest.mark.parametrize(
    ("item", "where"),
    [
        ("train.optimizer.lr=abc", "--set train.optimizer.lr: error: $.train.optimizer.lr: expected a number"),
        ("train.optimizer.lr=[1, 2", "--set train.optimizer.lr: error: $.train.optimizer.lr: YAML syntax error"),
        ("data.batch=-3", "--set data.batch: error: $.data.batch: must be ≥ 1"),
        ("nodes.enc.hiden=[1]", "--set nodes.enc.hiden: error: $.nodes.enc.hiden: unknown key"),
        ("train.epochs=!!python/object:os.system x", "--set train.epochs: error: $.train.epochs: tag"),
        ("noequals", "--set noequals: error: $: expected KEY.PATH=VALUE"),
        ("a..b=1", "--set a..b: error: $: 'a..b' is not a dotted key path"),
    ],
)
def test_set_errors_point_at_the_argument(item, where):
    spec, diags = validate_file(VAE, [item])
    assert spec is None
    assert any(str(d).startswith(where) for d in diags), [str(d) for d in diags]


def test_set_errors_in_the_cli(capsys):
    assert main(["validate", VAE, "--set", "train.optimizer.lr=fast"]) == 1
    out = capsys.readouterr()
    assert (out.out + out.err).strip().startswith("--set train.optimizer.lr: error:")


@settings(max_examples=60, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=1e-12, max_value=1e12))
def test_any_float_written_any_way_reads_back(x):
    for text in (repr(x), f"{x:e}", f"{x:E}", f"{x:.3e}"):
        assert parse_value(text, "--set x") == float(text)


def test_a_set_value_may_not_be_a_yaml_bomb():
    bomb = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefg", "bcdefgh")
    )
    with pytest.raises(SpecError, match="more than"):
        load_spec(VAE, [f"description={{{bomb.replace(chr(10), ', ')}}}"])


@pytest.mark.parametrize("item", ["data.batch=1e2", "latents.z.dim=2.0", "train.epochs=3.0"])
def test_a_float_is_not_an_integer(item):
    """JSON Schema counts 100.0 as an integer; a float batch size or dim would reach torch."""
    key = item.split("=")[0]
    spec, diags = validate_file(VAE, [item])
    assert spec is None and str(diags[0]).startswith(f"--set {key}: error: $.{key}: expected an integer, got ")
