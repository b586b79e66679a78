"""`claims:`, checkable statements about a run's results.

A claim compares a metric of the run's ``eval.json`` (a dotted path, e.g. ``test.iwae_nll``)
with a number, another metric, or k times / c plus another metric::

    claims:
      - {name: iwae_tighter, metric: test.iwae_nll, lt: test.neg_elbo}
      - {metric: amortisation.invert.encode_optimize.loss, le: {of: amortisation.invert.encode.loss, times: 0.8}}
      - {metric: test.probe_accuracy, ge: 0.9}
      - {metric: sample_quality.fd, within: {of: 12.5, rel: 0.1}}

A claim can compare the run with another run: the spec declares it under ``baselines:`` and a
path written ``NAME:path`` is read from that run's eval.json, given as ``latentspec check RUN
--baseline NAME=OTHER_RUN``::

    baselines:
      vae: {doc: the same networks trained on the ELBO, spec: specs/vae_mnist.yaml}
    claims:
      - {name: iwae_beats_vae, metric: test.iwae_nll, lt: vae:test.iwae_nll}

Validation checks every path against what `latentspec eval` can write for the spec
(``_evalkeys``), and that a ``NAME:`` names a declared baseline (its path is checked against the
other run's spec when `check` is given it); `latentspec check RUN` evaluates them on
``RUN/eval.json`` and records the result in ``RUN/claims.json``; `export` copies the checked
claims into the bundle's manifest (a claim on a baseline from ``claims.json``, when neither
run's eval.json has changed since).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Mapping
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


#: The path part of ``NAME:path``: dot-separated, non-empty names without spaces or colons.
_DOTTED = re.compile(r"^[^.\s:]+(\.[^.\s:]+)*$")
#: The record `latentspec check RUN` writes: the checked claims and the baseline runs they read.
RECORD = "claims.json"


def split_ref(path: str) -> tuple[str | None, str]:
    """(baseline, path) of a claim's metric: ``("vae", "test.iwae_nll")`` for
    ``vae:test.iwae_nll``, ``(None, path)`` for a path into the run's own eval.json."""
    name, sep, rest = path.partition(":")
    return (name, rest) if sep else (None, path)


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

    def paths(self) -> list[str]:
        """The metric paths the claim reads: its metric, and its operand's when that is one."""
        return [self.metric] + ([self.operand.path] if self.operand.path is not None else [])

    def baselines(self) -> list[str]:
        """The baselines the claim reads (``NAME:`` of its metric and operand), in order."""
        return list(dict.fromkeys(b for b, _ in map(split_ref, self.paths()) if b is not None))

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


def _unwritten_hint(spec: Spec, path: str, keys: tuple[EvalKey, ...]) -> str:
    """For a path `latentspec eval` does not write for ``spec``: why not, or a did-you-mean
    among the numeric paths of ``keys`` (its :func:`eval_keys`)."""
    reason = why_not(spec, path)
    return f": {reason}" if reason else did_you_mean(path, [k.path for k in keys if k.numeric])


def check_claims(doc: Document, spec: Spec) -> list[Diagnostic]:
    """Located errors for the claims of a valid spec: one comparator each, distinct names, and
    every metric path one that `latentspec eval` writes for this spec, as a number."""
    raw_claims = doc.data.get("claims") or []
    diags: list[Diagnostic] = []
    keys = eval_keys(spec)
    declared = doc.data.get("baselines") or {}
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
            base, sub = split_ref(metric)
            if base is not None:  # another run's: its spec is known only to `check --baseline`
                if base not in declared:
                    hint = did_you_mean(base, declared) or (
                        f"; declare it: `baselines: {{{base}: {{doc: what that run is}}}}`" if not declared else ""
                    )
                    listed = f" (baselines: {', '.join(declared)})" if declared and not hint else ""
                    diags.append(
                        doc.diag(where, f"'{base}' in '{metric}' is not a baseline of this spec{hint}{listed}")
                    )
                elif not _DOTTED.match(sub):
                    diags.append(
                        doc.diag(
                            where, f"'{sub}' in '{metric}' is not a dotted path into eval.json (e.g. test.iwae_nll)"
                        )
                    )
                continue
            key = lookup(keys, metric)
            if key is None:
                hint = _unwritten_hint(spec, metric, keys)
                diags.append(doc.diag(where, f"`latentspec eval` writes no metric '{metric}' for this spec{hint}"))
            elif not key.numeric:
                diags.append(doc.diag(where, f"'{metric}' is text ({key.doc}), not a number a claim can compare"))
    return diags


@dataclasses.dataclass(frozen=True)
class Checked:
    """A claim, its two numbers and whether it holds; or why it could not be checked.
    ``value_from`` / ``target_from``: the run each number came from, for a claim that reads a
    baseline (``RUN`` or ``NAME=OTHER_RUN``)."""

    claim: Claim
    value: float | None
    target: float | None
    holds: bool | None  # None: unchecked (``missing`` says why)
    missing: str | None = None
    value_from: str | None = None
    target_from: str | None = None

    def as_dict(self) -> dict:
        """The manifest's record of the claim (docs/bundle-format.md)."""
        c = self.claim
        out = {"name": c.name, "claim": c.text(), "value": self.value, "target": self.target, "holds": self.holds}
        if self.missing:
            out["missing"] = self.missing
        if c.doc:
            out["doc"] = c.doc
        if c.baselines():
            out["baselines"] = c.baselines()
            if self.holds is not None:
                out["value_from"], out["target_from"] = self.value_from, self.target_from
        return out

    def line(self) -> str:
        """One line for `latentspec check` and `latentspec-runtime info`."""
        return claim_line(self.as_dict())


def claim_line(d: dict) -> str:
    """``holds  name: claim  (value vs target)`` from a manifest claim record; a claim on a
    baseline says which run each number came from (``value from RUN vs target from NAME=RUN``)."""
    status = {True: "holds", False: "FAILS", None: "unchecked"}[d.get("holds")]
    if d.get("holds") is None:
        return f"{status:9}  {d['name']}: {d['claim']}  ({d.get('missing') or 'not checked'})"
    value, target = f"{d['value']:.6g}", f"{d['target']:.6g}"
    if d.get("value_from"):
        value += f" from {d['value_from']}"
    if d.get("target_from"):
        target += f" from {d['target_from']}"
    return f"{status:9}  {d['name']}: {d['claim']}  ({value} vs {target})"


@dataclasses.dataclass(frozen=True)
class Baseline:
    """A run given as ``--baseline NAME=RUN``: its spec, eval keys and eval.json (None: none yet)."""

    name: str
    run: str
    spec: Spec
    keys: tuple[EvalKey, ...]
    result: dict | None
    sha256: str | None

    def label(self) -> str:
        return f"{self.name}={self.run}"

    def record(self) -> dict:
        """Its entry in ``claims.json``: where it is, its spec's name, its eval.json's sha256."""
        return {"run": os.path.abspath(self.run), "spec": self.spec.name, "eval_sha256": self.sha256}


class _Missing(Exception):
    pass


def evaluate(
    claim: Claim,
    keys: tuple[EvalKey, ...],
    result: dict,
    run: str = "RUN",
    baselines: Mapping[str, Baseline] | None = None,
) -> Checked:
    """The claim against an eval.json object (``keys``: the spec's :func:`eval_keys`); paths
    ``NAME:path`` against ``baselines[NAME]``'s (unchecked when it is not given)."""
    baselines = baselines or {}

    def need(ref: str) -> float:
        base, path = split_ref(ref)
        values, known, where, of = result, keys, "eval.json", run
        if base is not None:
            b = baselines.get(base)
            if b is None:
                raise _Missing(f"needs --baseline {base}=RUN")
            if b.result is None:
                raise _Missing(f"baseline {base}: {b.run} has no eval.json: run `latentspec eval {b.run}` first")
            values, known, where, of = b.result, b.keys, f"baseline {base}'s eval.json", b.run
        try:
            value = value_at(values, path)
        except KeyError:
            key = lookup(known, path)
            flag = f" {key.flag}" if key is not None and key.flag else ""
            raise _Missing(f"{where} has no '{path}': run `latentspec eval {of}{flag}`") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Missing(f"{where}'s '{path}' is {value!r}, not a number")
        return float(value)

    def source(ref: str | None) -> str | None:
        if ref is None:
            return None
        base = split_ref(ref)[0]
        return run if base is None else baselines[base].label()

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
    holds = bool(holds and math.isfinite(value) and math.isfinite(target))
    return Checked(claim, value, target, holds, None, source(claim.metric), source(claim.operand.path))


def _read_eval(run: str) -> dict | None:
    """``run``'s eval.json, None when it has none; ClaimError when it cannot be read."""
    path = os.path.join(run, "eval.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise ClaimError(f"{path}: cannot read it ({exc}); run `latentspec eval {run}` again") from None


def check_claims_of_run(spec: Spec, run: str, baselines: Mapping[str, Baseline] | None = None) -> list[Checked]:
    """Every claim of ``spec`` against ``run``'s eval.json (all unchecked when it has none), and
    the ``baselines`` runs' for paths ``NAME:path`` (unchecked when not given)."""
    claims = claims_of(spec)
    if not claims:
        return []
    result = _read_eval(run)
    if result is None:
        return [Checked(c, None, None, None, f"no eval.json: run `latentspec eval {run}` first") for c in claims]
    keys = eval_keys(spec)
    return [evaluate(c, keys, result, run, baselines) for c in claims]


def _sha256(path: str) -> str | None:
    from latentspec_runtime._atomic import sha256_file

    return sha256_file(path) if os.path.exists(path) else None


def _load_run_spec(run: str, what: str) -> Spec:
    from latentspec.spec import load_spec

    path = os.path.join(run, "spec.yaml")
    if not os.path.isfile(path):
        raise ClaimError(
            f"{what}{run}: not a run directory (no spec.yaml); train one with `latentspec train SPEC --out {run}`"
        )
    return load_spec(path)


def load_baselines(spec: Spec, given: Mapping[str, str]) -> dict[str, Baseline]:
    """The runs of ``--baseline NAME=RUN``: each NAME declared in the spec's ``baselines:``, each
    RUN a run directory, and every path a claim reads from it one that `latentspec eval` writes,
    as a number, for that run's spec (ClaimError naming the claim otherwise)."""
    declared = spec.raw.get("baselines") or {}
    out: dict[str, Baseline] = {}
    for name, run in given.items():
        if name not in declared:
            have = f"its baselines are {', '.join(declared)}" if declared else "it declares no `baselines:`"
            raise ClaimError(
                f"--baseline {name}={run}: the spec '{spec.name}' has no baseline '{name}'"
                f"{did_you_mean(name, declared)}; {have}"
            )
        other = _load_run_spec(run, f"--baseline {name}=")
        keys = eval_keys(other)
        for claim in claims_of(spec):
            for base, path in map(split_ref, claim.paths()):
                if base != name:
                    continue
                key = lookup(keys, path)
                if key is None:
                    raise ClaimError(
                        f"claim '{claim.name}' reads '{name}:{path}', but `latentspec eval` writes no metric "
                        f"'{path}' for {run} (spec '{other.name}'){_unwritten_hint(other, path, keys)}"
                    )
                if not key.numeric:
                    raise ClaimError(
                        f"claim '{claim.name}' reads '{name}:{path}', which is text for {run} ({key.doc}), not a number"
                    )
        out[name] = Baseline(name, run, other, keys, _read_eval(run), _sha256(os.path.join(run, "eval.json")))
    return out


def check_with_baselines(
    run: str, baselines: Mapping[str, str] | None = None
) -> tuple[Spec, list[Checked], dict[str, Baseline]]:
    """`latentspec check RUN [--baseline NAME=OTHER_RUN ...]`: the run's spec, its checked
    claims and the baseline runs they read."""
    spec = _load_run_spec(run, "")
    given = load_baselines(spec, baselines or {})
    return spec, check_claims_of_run(spec, run, given), given


def check_run(run: str) -> tuple[Spec, list[Checked]]:
    """`latentspec check RUN`: the run's spec and its checked claims (a claim on a baseline
    unchecked: :func:`check_with_baselines` gives the other runs)."""
    spec, checked, _ = check_with_baselines(run)
    return spec, checked


def write_record(run: str, spec: Spec, checked: list[Checked], baselines: Mapping[str, Baseline]) -> str:
    """``RUN/claims.json``, written atomically: every checked claim, the sha256 of the run's
    eval.json, and the baseline runs used (path, spec name, sha256 of their eval.json)."""
    from latentspec_runtime._atomic import write_text

    record = {
        "spec": spec.name,
        "eval_sha256": _sha256(os.path.join(run, "eval.json")),
        "baselines": {name: b.record() for name, b in baselines.items()},
        "claims": [c.as_dict() for c in checked],
    }
    path = os.path.join(run, RECORD)
    write_text(path, json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return path


def claims_for_export(spec: Spec, run: str) -> list[dict]:
    """The manifest's claims: each one-run claim checked now on ``run``'s eval.json; a claim
    that reads a baseline as `latentspec check` recorded it in ``RUN/claims.json``, provided
    this run's and the baseline runs' eval.json are still the files it read (same sha256);
    else unchecked, saying why."""
    checked = check_claims_of_run(spec, run)
    if not any(c.claim.baselines() for c in checked):
        return [c.as_dict() for c in checked]
    record, why = None, f"no {RECORD}: run `latentspec check {run} --baseline NAME=RUN` first"
    path = os.path.join(run, RECORD)
    if os.path.exists(path):
        try:
            with open(path) as f:
                record = json.load(f)
        except (OSError, ValueError) as exc:
            record, why = None, f"{path} cannot be read ({exc}); run `latentspec check` again"
    if record is not None and record.get("eval_sha256") != _sha256(os.path.join(run, "eval.json")):
        record, why = None, f"eval.json changed after `latentspec check`; run `latentspec check {run}` again"
    recorded = {c.get("name"): c for c in (record or {}).get("claims") or [] if isinstance(c, dict)}
    runs = (record or {}).get("baselines") or {}
    out = []
    for c in checked:
        names = c.claim.baselines()
        if not names:
            out.append(c.as_dict())
            continue
        reason, got = why, recorded.get(c.claim.name)
        if record is not None:
            reason = _stale(c.claim, got, runs)
        if reason is None:
            out.append(got)
        else:
            out.append(dataclasses.replace(c, holds=None, value=None, target=None, missing=reason).as_dict())
    return out


def _stale(claim: Claim, got: dict | None, runs: dict) -> str | None:
    """Why a recorded claim on a baseline cannot go into the manifest (None: it can)."""
    if got is None or got.get("claim") != claim.text():
        return f"`latentspec check` recorded no claim '{claim.name}': run it again with --baseline"
    for name in claim.baselines():
        used = runs.get(name)
        if used is None:
            return f"checked without baseline '{name}': run `latentspec check RUN --baseline {name}=RUN`"
        now = _sha256(os.path.join(used.get("run", ""), "eval.json"))
        if now is None or now != used.get("eval_sha256"):
            state = "is gone" if now is None else "changed after `latentspec check`"
            return f"baseline {name}'s eval.json ({used.get('run')}) {state}; run `latentspec check` again"
    return None
