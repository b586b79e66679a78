"""`claims:`, checkable statements about a run's results.

A claim compares a metric of the run's ``eval.json`` (a dotted path, e.g. ``test.iwae_nll``)
with a number, another metric, or k times / c plus another metric::

    claims:
      - {name: iwae_tighter, metric: test.iwae_nll, lt: test.neg_elbo}
      - {metric: amortisation.invert.encode_optimize.loss, le: {of: amortisation.invert.encode.loss, times: 0.8}}
      - {metric: test.probe_accuracy, ge: 0.9}
      - {metric: sample_quality.fd, within: {of: 12.5, rel: 0.1}}

Validation checks every path against what `latentspec eval` can write for the spec
(``_evalkeys``); `latentspec check RUN` evaluates them on ``RUN/eval.json``; `export` copies the
checked claims into the bundle's manifest.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import TYPE_CHECKING, Any

from latentspec.errors import UserError
from latentspec.spec._diagnostics import Diagnostic, did_you_mean
from latentspec.spec._evalkeys import EvalKey, eval_keys, lookup, value_at, why_not
from latentspec.spec._sections import CLAIM, CLAIM_COMPARATORS

if TYPE_CHECKING:
    from latentspec.spec._model import Spec
    from latentspec.spec._yaml import Document


class ClaimError(UserError):
    """A claim cannot be checked: no eval.json, or a number it needs is not in it."""


@dataclasses.dataclass(frozen=True)
class Operand:
    """A number, or a metric path times ``times`` plus ``plus``."""

    value: float | None = None
    path: str | None = None
    times: float = 1.0
    plus: float = 0.0

    @classmethod
    def parse(cls, raw: Any) -> Operand:
        if isinstance(raw, dict):
            return cls(path=raw["of"], times=float(raw.get("times", 1.0)), plus=float(raw.get("plus", 0.0)))
        if isinstance(raw, str):
            return cls(path=raw)
        return cls(value=float(raw))

    def text(self) -> str:
        if self.path is None:
            return f"{self.value:g}"
        out = self.path if self.times == 1.0 else f"{self.times:g} × {self.path}"
        return out if self.plus == 0.0 else f"{out} {'+' if self.plus > 0 else '−'} {abs(self.plus):g}"

    def of(self, result: dict, need) -> float:
        return self.value if self.path is None else need(self.path) * self.times + self.plus


@dataclasses.dataclass(frozen=True)
class Claim:
    """One parsed claim: ``metric op operand`` (``within``: |metric − operand| ≤ tolerance)."""

    name: str
    metric: str
    op: str  # lt | le | gt | ge | within
    operand: Operand
    rel: float | None = None  # within: relative tolerance
    abs: float | None = None  # within: absolute tolerance
    doc: str | None = None

    def text(self) -> str:
        rhs = self.operand.text()
        if self.op != "within":
            return f"{self.metric} {CLAIM_COMPARATORS[self.op]} {rhs}"
        tol = f"{100 * self.rel:g}%" if self.rel is not None else f"{self.abs:g}"
        return f"{self.metric} ≈ {rhs} (± {tol})"


def _comparators(raw: dict) -> list[str]:
    return [op for op in CLAIM_COMPARATORS if op in raw]


def parse_claim(raw: dict, i: int) -> Claim:
    """A schema-valid claim with exactly one comparator."""
    c = CLAIM.resolve(raw)
    (op,) = _comparators(raw)
    if op == "within":
        w = raw["within"]
        return Claim(
            c["name"] or f"claim {i + 1}", c["metric"], op, Operand.parse(w["of"]), w.get("rel"), w.get("abs"), c["doc"]
        )
    return Claim(c["name"] or f"claim {i + 1}", c["metric"], op, Operand.parse(raw[op]), doc=c["doc"])


def claims_of(spec: Spec) -> list[Claim]:
    """The claims of a valid spec."""
    return [parse_claim(raw, i) for i, raw in enumerate(spec.raw.get("claims") or [])]


def check_claims(doc: Document, spec: Spec) -> list[Diagnostic]:
    """Located errors for the claims of a valid spec: one comparator each, distinct names, and
    every metric path one that `latentspec eval` writes for this spec, as a number."""
    raw_claims = doc.data.get("claims") or []
    diags: list[Diagnostic] = []
    keys = eval_keys(spec)
    numeric = [k.path for k in keys if k.numeric]
    names: set[str] = set()
    for i, raw in enumerate(raw_claims):
        path = ("claims", i)
        ops = _comparators(raw)
        if len(ops) != 1:
            have = f"it has {', '.join(ops)}" if ops else "it has none"
            diags.append(doc.diag(path, f"a claim needs exactly one of {', '.join(CLAIM_COMPARATORS)}; {have}"))
            continue
        if "within" in raw and ("rel" in raw["within"]) == ("abs" in raw["within"]):
            diags.append(doc.diag(path + ("within",), "`within` needs one tolerance: `rel` or `abs`"))
            continue
        claim = parse_claim(raw, i)
        if claim.name in names:
            diags.append(doc.diag(path + ("name",), f"two claims named '{claim.name}'"))
        names.add(claim.name)
        reads = [(claim.metric, path + ("metric",))]
        if claim.operand.path is not None:
            given = raw[claim.op]
            reads.append((claim.operand.path, path + (claim.op,) + (("of",) if isinstance(given, dict) else ())))
        for metric, where in reads:
            key = lookup(keys, metric)
            if key is None:
                reason = why_not(spec, metric)
                hint = f": {reason}" if reason else did_you_mean(metric, numeric)
                diags.append(doc.diag(where, f"`latentspec eval` writes no metric '{metric}' for this spec{hint}"))
            elif not key.numeric:
                diags.append(doc.diag(where, f"'{metric}' is text ({key.doc}), not a number a claim can compare"))
    return diags


@dataclasses.dataclass(frozen=True)
class Checked:
    """A claim, its two numbers and whether it holds; or why it could not be checked."""

    claim: Claim
    value: float | None
    target: float | None
    holds: bool | None  # None: unchecked (``missing`` says why)
    missing: str | None = None

    def as_dict(self) -> dict:
        """The manifest's record of the claim (docs/bundle-format.md)."""
        c = self.claim
        out = {"name": c.name, "claim": c.text(), "value": self.value, "target": self.target, "holds": self.holds}
        if self.missing:
            out["missing"] = self.missing
        if c.doc:
            out["doc"] = c.doc
        return out

    def line(self) -> str:
        """One line for `latentspec check` and `latentspec-runtime info`."""
        return claim_line(self.as_dict())


def claim_line(d: dict) -> str:
    """``holds  name: claim  (value vs target)`` from a manifest claim record."""
    status = {True: "holds", False: "FAILS", None: "unchecked"}[d.get("holds")]
    if d.get("holds") is None:
        return f"{status:9}  {d['name']}: {d['claim']}  ({d.get('missing') or 'not checked'})"
    return f"{status:9}  {d['name']}: {d['claim']}  ({d['value']:.6g} vs {d['target']:.6g})"


class _Missing(Exception):
    pass


def evaluate(claim: Claim, keys: tuple[EvalKey, ...], result: dict, run: str = "RUN") -> Checked:
    """The claim against an eval.json object (``keys``: the spec's :func:`eval_keys`)."""

    def need(path: str) -> float:
        try:
            value = value_at(result, path)
        except KeyError:
            key = lookup(keys, path)
            flag = f" {key.flag}" if key is not None and key.flag else ""
            raise _Missing(f"eval.json has no '{path}': run `latentspec eval {run}{flag}`") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Missing(f"eval.json's '{path}' is {value!r}, not a number")
        return float(value)

    try:
        value = need(claim.metric)
        target = claim.operand.of(result, need)
    except _Missing as exc:
        return Checked(claim, None, None, None, str(exc))
    if claim.op == "within":
        tol = claim.abs if claim.abs is not None else claim.rel * abs(target)
        holds = abs(value - target) <= tol
    else:
        holds = {"lt": value < target, "le": value <= target, "gt": value > target, "ge": value >= target}[claim.op]
    return Checked(claim, value, target, bool(holds and math.isfinite(value) and math.isfinite(target)))


def check_claims_of_run(spec: Spec, run: str) -> list[Checked]:
    """Every claim of ``spec`` against ``run``'s eval.json (all unchecked when it has none)."""
    claims = claims_of(spec)
    path = os.path.join(run, "eval.json")
    if not claims:
        return []
    if not os.path.exists(path):
        return [Checked(c, None, None, None, f"no eval.json: run `latentspec eval {run}` first") for c in claims]
    try:
        with open(path) as f:
            result = json.load(f)
    except (OSError, ValueError) as exc:
        raise ClaimError(f"{path}: cannot read it ({exc}); run `latentspec eval {run}` again") from None
    keys = eval_keys(spec)
    return [evaluate(c, keys, result, run) for c in claims]


def check_run(run: str) -> tuple[Spec, list[Checked]]:
    """`latentspec check RUN`: the run's spec and its checked claims."""
    from latentspec.spec import load_spec

    path = os.path.join(run, "spec.yaml")
    if not os.path.exists(path):
        raise ClaimError(
            f"{run}: not a run directory (no spec.yaml); train one with `latentspec train SPEC --out {run}`"
        )
    spec = load_spec(path)
    return spec, check_claims_of_run(spec, run)
