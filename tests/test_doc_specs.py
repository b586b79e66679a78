"""The README's spec snippets validate: its whole specs as they stand, and each fragment of spec
sections (e.g. the KL warm-up's `objective:`) merged into the README's first spec."""

from __future__ import annotations

import os
import re
import textwrap

import pytest
import yaml

from latentspec.spec import validate_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = {
    "latentspec",
    "name",
    "seed",
    "data",
    "latents",
    "nodes",
    "objective",
    "train",
    "export",
    "claims",
    "baselines",
}


def yaml_blocks(path: str) -> list[tuple[int, dict]]:
    """(line, mapping) of every ```yaml block of ``path`` (indented blocks in list items too)."""
    with open(path) as f:
        text = f.read()
    out = []
    for m in re.finditer(r"^([ \t]*)```yaml\n(.*?)^\1```", text, re.S | re.M):
        doc = yaml.safe_load(textwrap.dedent(m.group(2)))
        if isinstance(doc, dict):
            out.append((text[: m.start()].count("\n") + 1, doc))
    return out


def merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


README = os.path.join(ROOT, "README.md")
BLOCKS = yaml_blocks(README)
BASE = next(doc for _, doc in BLOCKS if "latentspec" in doc)
FRAGMENTS = [(line, doc) for line, doc in BLOCKS if "latentspec" not in doc and set(doc) <= SECTIONS]


def errors(doc: dict) -> list[str]:
    _, diags = validate_text(yaml.safe_dump(doc, sort_keys=False), "README.md")
    return [str(d) for d in diags if d.severity == "error"]


def test_readme_whole_specs_validate():
    for line, doc in BLOCKS:
        if "latentspec" in doc:
            assert errors(doc) == [], f"README.md:{line}"


def test_readme_has_a_scheduled_weight_example():
    scheduled = [
        (line, name)
        for line, doc in FRAGMENTS
        for name, term in (doc.get("objective") or {}).items()
        if isinstance(term.get("weight"), dict) and "schedule" in term["weight"]
    ]
    assert scheduled, "README.md shows no scheduled term weight (KL warm-up)"


def test_readme_has_claims_and_fitted_prior_examples():
    assert any("claims" in doc for _, doc in FRAGMENTS), "README.md shows no `claims:` example"
    assert any(
        "baselines" in doc and any(":" in str(c.get("lt", "")) for c in doc.get("claims") or []) for _, doc in FRAGMENTS
    ), "README.md shows no claim on a `baselines:` run"
    assert any(
        any(lat.get("prior") in ("gaussian", "gmm") for lat in (doc.get("latents") or {}).values())
        for _, doc in FRAGMENTS
    ), "README.md shows no fitted prior"


def test_a_broken_claim_is_caught():
    """A claim on a metric eval does not write for the README's spec is an error."""
    fragment = next(d for _, d in FRAGMENTS if "claims" in d)
    bad = {"claims": [*fragment["claims"], {"metric": "test.neg_elbow", "lt": 1}]}
    assert any("did you mean 'test.neg_elbo'" in e for e in errors(merge(BASE, bad)))


@pytest.mark.parametrize("line,fragment", FRAGMENTS, ids=[f"README.md:{line}" for line, _ in FRAGMENTS])
def test_readme_spec_fragments_validate_in_the_readme_spec(line, fragment):
    assert errors(merge(BASE, fragment)) == []


def test_a_broken_fragment_is_caught():
    """The check can fail: a misspelt schedule in the warm-up is an error."""
    fragment = next(d for _, d in FRAGMENTS if "objective" in d)
    bad = merge(fragment, {"objective": {"kl": {"weight": {"schedule": "lineer"}}}})
    assert errors(merge(BASE, bad))
