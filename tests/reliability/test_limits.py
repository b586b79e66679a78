"""Limits checked before work: the cost estimate refuses what cannot fit, every numeric field
has bounds in the schema, and no value crashes validation."""

from __future__ import annotations

import pytest
from _reliability import VAE
from hypothesis import given, settings
from hypothesis import strategies as st

from latentspec.components._registry import MAX_DIM, MAX_INT, MAX_SEED
from latentspec.spec import load_spec, spec_schema, validate_file, validate_text
from latentspec.spec._limits import estimate, human, machine_memory


def errors(path_or_text: str, overrides=(), text: bool = False):
    spec, diags = (
        validate_text(path_or_text, "s.yaml", list(overrides)) if text else validate_file(path_or_text, list(overrides))
    )
    return spec, [d for d in diags if d.severity == "error"]


def test_the_estimate_counts_parameters_like_torch():
    from latentspec.compiler import compile_spec

    spec = load_spec(VAE)
    model = compile_spec(spec)
    assert estimate(spec).params == sum(p.numel() for p in model.parameters())


def test_a_spec_bigger_than_the_machine_is_refused_with_the_estimate():
    spec, errs = errors(VAE, ["nodes.enc.hidden=[1000000, 1000000]"])
    assert spec is None and len(errs) == 1
    d = errs[0]
    assert str(d).startswith("--set nodes.enc.hidden: error: $.nodes.enc.hidden: training this spec needs about")
    with open(VAE) as f:
        text = f.read().replace("hidden: [400]", "hidden: [1000000, 1000000]", 1)
    spec, errs = errors(text, text=True)
    assert spec is None and str(errs[0]).startswith("s.yaml:17:11: error: $.nodes.enc: training this spec")
    assert "1,000,8" in d.message and "parameters" in d.message and human(machine_memory()) in d.message


def test_the_limit_is_this_machines_memory(monkeypatch):
    monkeypatch.setenv("LATENTSPEC_MEMORY_BYTES", str(16 << 20))
    spec, errs = errors(VAE)
    assert spec is None and "more than this machine's 16.0 MiB" in errs[0].message
    monkeypatch.setenv("LATENTSPEC_MEMORY_BYTES", str(64 << 30))
    assert errors(VAE)[0] is not None


def test_latent_tables_count():
    from _reliability import ROOT

    spec = load_spec(f"{ROOT}/tests/gallery/glo.yaml")
    lat = next(lat for lat in spec.latents.values() if lat.table)
    assert estimate(spec).tables >= spec.data.split["train"] * lat.dim * 4


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("latents.z.dim=0", "must be ≥ 1"),
        (f"latents.z.dim={MAX_INT + 1}", f"must be ≤ {MAX_INT}"),
        (f"nodes.enc.hidden=[{MAX_DIM + 1}]", f"must be ≤ {MAX_DIM}"),
        ("nodes.enc.hidden=[0]", "must be ≥ 1"),
        (f"seed={MAX_SEED + 1}", f"must be ≤ {MAX_SEED}"),
        ("seed=-1", "must be ≥ 0"),
        ("data.batch=0", "must be ≥ 1"),
        (f"data.batch={MAX_INT + 1}", f"must be ≤ {MAX_INT}"),
        (f"train.epochs={10**30}", f"must be ≤ {MAX_INT}"),
    ],
)
def test_numeric_fields_are_bounded_in_the_schema(override, message):
    spec, errs = errors(VAE, [override])
    assert spec is None and any(message in d.message for d in errs), errs


def test_the_largest_seed_is_valid():
    assert errors(VAE, [f"seed={MAX_SEED}"])[0] is not None


def test_every_integer_in_the_schema_has_bounds():
    missing = []

    def walk(node, path):
        if isinstance(node, dict):
            if node.get("type") == "integer" and "maximum" not in node and "enum" not in node and "const" not in node:
                missing.append(path)
            for k, v in node.items():
                walk(v, f"{path}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}/{i}")

    walk(spec_schema(), "#")
    assert missing == []


def test_pyramid_levels_must_fit_the_image():
    with open(VAE) as f:
        text = f.read().replace(
            "objective:\n", "objective:\n  pyr: {term: laplacian_l1, in: [x_mean, x], levels: 7, weight: 0.1}\n"
        )
    spec, errs = errors(text, text=True)
    assert spec is None and any("too small for 7 levels" in d.message for d in errs), errs


@settings(max_examples=40, deadline=2000)
@given(
    key=st.sampled_from(
        [
            "latents.z.dim",
            "nodes.enc.hidden",
            "data.batch",
            "seed",
            "train.epochs",
            "data.split.train",
            "train.optimizer.lr",
        ]
    ),
    value=st.one_of(
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.lists(st.integers(-(2**40), 2**40), max_size=3),
    ),
)
def test_no_value_crashes_validation(key, value):
    spec, diags = validate_file(VAE, [f"{key}={value!r}".replace("'", "")])
    assert all(d.line >= 0 and d.message for d in diags)
    assert (spec is None) == any(d.severity == "error" for d in diags)


@pytest.mark.parametrize("item", ["data.split.train=1e300", "data.split.train=10000000000000000000000000000000"])
def test_absurd_sizes_are_refused_not_crashed_on(item):
    spec, errs = errors(VAE, [item])
    assert spec is None and errs and all(len(str(d).splitlines()) == 1 for d in errs)
