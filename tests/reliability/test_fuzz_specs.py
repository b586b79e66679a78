"""Property-based fuzzing of every spec in specs/ and tests/gallery/: deleted, renamed and
retyped keys, huge and negative numbers, unicode, deep nesting and anchors. `validate` answers
valid or located diagnostics, never a traceback, in under a second; a spec that validates compiles."""

from __future__ import annotations

import copy
import glob
import os
import time

import pytest
import yaml
from _reliability import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentspec.cli import main
from latentspec.spec import validate_text

SPECS = sorted(
    glob.glob(os.path.join(ROOT, "specs", "*.yaml")) + glob.glob(os.path.join(ROOT, "tests", "gallery", "*.yaml"))
)
MUTATIONS = ("delete", "rename", "retype", "huge", "negative", "unicode", "deep", "alias", "typo")


def paths(data, prefix=()):
    """Every path into nested dicts and lists."""
    yield prefix
    if isinstance(data, dict):
        for k, v in data.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from paths(v, (*prefix, i))


def get(data, path):
    for p in path:
        data = data[p]
    return data


any_value = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)


@st.composite
def mutated(draw, data):
    """``data`` with 1-3 mutations, as YAML text."""
    data = copy.deepcopy(data)
    for _ in range(draw(st.integers(1, 3))):
        every = [p for p in paths(data) if p]
        if not every:
            break
        path = draw(st.sampled_from(every))
        parent, key = get(data, path[:-1]), path[-1]
        kind = draw(st.sampled_from(MUTATIONS))
        if kind == "delete":
            del parent[key]
        elif kind == "rename" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = parent.pop(key)
        elif kind == "typo" and isinstance(parent, dict) and isinstance(key, str) and key:
            i = draw(st.integers(0, len(key) - 1))
            parent[key[:i] + key[i + 1 :]] = parent.pop(key)
        elif kind == "retype":
            parent[key] = draw(any_value)
        elif kind == "huge":
            parent[key] = draw(st.sampled_from([10**30, 2**64, 2**63, 2**31, 10**9, 1e308, -(10**30)]))
        elif kind == "negative":
            value = parent[key]
            parent[key] = -abs(value) - 1 if isinstance(value, (int, float)) and not isinstance(value, bool) else -1
        elif kind == "unicode":
            parent[key] = draw(st.text(alphabet=st.characters(min_codepoint=128, max_codepoint=0x10FFFF), max_size=8))
        elif kind == "deep":
            value = parent[key]
            for _ in range(draw(st.integers(10, 80))):
                value = [value]
            parent[key] = value
        elif kind == "alias":  # the same object twice: YAML writes an anchor and an alias
            other = draw(st.sampled_from(every))
            if other[: len(path)] != path[: len(other)]:  # neither holds the other: no cycle
                parent[key] = get(data, other)
                break  # the data now shares an object: no further mutations walk it
    try:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    except RecursionError:  # an alias made the data recursive
        return yaml.safe_dump({"latentspec": 1}, sort_keys=False)


def check(text: str, name: str):
    t0 = time.process_time()  # CPU time: other processes on the machine do not count
    spec, diags = validate_text(text, name)
    elapsed = time.process_time() - t0
    assert elapsed < 1.0, f"validate took {elapsed:.2f}s of CPU"
    assert (spec is None) == any(d.severity == "error" for d in diags)
    for d in diags:
        assert d.file == name and d.line >= 1 and d.col >= 1 and d.path.startswith("$") and d.message, d
        assert len(str(d).splitlines()) == 1, d
    return spec


def compiles(spec) -> None:
    """A spec that validates compiles (on torch's meta device: no memory for the weights)."""
    import torch

    from latentspec.compiler import compile_spec

    with torch.device("meta"):
        compile_spec(spec)


@pytest.mark.parametrize("path", SPECS, ids=os.path.basename)
def test_every_spec_validates_and_compiles(path):
    with open(path) as f:
        spec = check(f.read(), path)
    assert spec is not None
    compiles(spec)


@pytest.mark.parametrize("path", SPECS, ids=os.path.basename)
def test_mutated_specs_give_located_diagnostics_or_compile(path):
    with open(path) as f:
        data = yaml.safe_load(f)

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
    @given(mutated(data))
    def run(text):
        spec = check(text, os.path.basename(path))
        if spec is not None:
            compiles(spec)

    run()


@settings(max_examples=20, deadline=None, derandomize=True)
@given(st.binary(max_size=200))
def test_random_bytes_are_located_diagnostics(raw):
    check(raw.decode("utf-8", "replace"), "bytes.yaml")


def test_the_cli_exit_status_is_0_or_1(tmp_path, capsys):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    with open(SPECS[0]) as f:
        good.write_text(f.read())
    bad.write_text("latentspec: 1\nname: [\n")
    assert main(["validate", str(good)]) == 0
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr()
    assert f"{bad}:3:1: error:" in out.out + out.err and "Traceback" not in out.err
