"""The `sweep:` section: a search space over spec paths, checked like `--set` (torch-free, Optuna-free).

>>> from latentspec.spec._sweep import Dist
>>> Dist("loguniform", (1e-4, 1e-2)).values()
(0.0001, 0.01)
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from typing import Any

from latentspec.components._registry import MAX_INT, REQUIRED
from latentspec.spec._diagnostics import Diagnostic, SpecError, json_path
from latentspec.spec._sections import Section, _p
from latentspec.spec._yaml import Document

DISTRIBUTIONS = {
    "uniform": "a float drawn uniformly from [low, high]",
    "loguniform": "a float drawn log-uniformly from [low, high] (low > 0)",
    "int": "an integer drawn uniformly from [low, high]",
    "choice": "one of the listed values",
}
PATH_PATTERN = r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$"


@dataclasses.dataclass(frozen=True)
class Dist:
    """One searched value: its distribution and the bounds or choices."""

    kind: str  # a key of DISTRIBUTIONS
    args: tuple

    def values(self) -> tuple:
        """The values checked against the spec: both bounds, or every choice."""
        return self.args


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """The validated `sweep:` section (with `--param` and CLI options merged in)."""

    params: dict[str, Dist]
    metric: str = ""
    direction: str = "minimize"
    trials: int = 20
    seeds: int = 1
    sampler: str = "tpe"
    pruner: str = "median"
    iwae: int | None = None
    probe: str | None = None


def _dist_schema() -> dict:
    bounds = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
    return {
        "type": "object",
        "properties": {
            "uniform": {**bounds, "description": DISTRIBUTIONS["uniform"]},
            "loguniform": {**bounds, "description": DISTRIBUTIONS["loguniform"]},
            "int": {
                **bounds,
                "items": {"type": "integer", "minimum": -MAX_INT, "maximum": MAX_INT},
                "description": DISTRIBUTIONS["int"],
            },
            "choice": {
                "type": "array",
                "minItems": 1,
                "description": DISTRIBUTIONS["choice"],
            },
        },
        "additionalProperties": False,
        "minProperties": 1,
        "maxProperties": 1,
    }


SWEEP = Section(
    "sweep",
    "A hyperparameter search run by `latentspec sweep` (`latentspec train` ignores it).",
    (
        _p(
            "params",
            "any",
            {},
            "spec paths (as for --set) and the distribution each is searched over",
            schema={
                "type": "object",
                "propertyNames": {"pattern": PATH_PATTERN},
                "additionalProperties": _dist_schema(),
            },
        ),
        _p("metric", "str", REQUIRED, "the value optimised: a path into the run's eval.json, e.g. test.neg_elbo"),
        _p(
            "direction",
            "any",
            "minimize",
            "whether the metric is minimised or maximised",
            choices=("minimize", "maximize"),
        ),
        _p("trials", "int", 20, "trials the study runs to (all workers together)", minimum=1),
        _p("seeds", "int", 1, "runs per trial, each with its own seed; the trial's value is their mean", minimum=1),
        _p("sampler", "any", "tpe", "Optuna's sampler", choices=("tpe", "random")),
        _p(
            "pruner",
            "any",
            "median",
            "stop trials whose per-epoch test value is below the median",
            choices=("median", "none"),
        ),
        _p("iwae", "int", doc="evaluate each run with the IWAE bound (K samples)", minimum=1),
        _p("probe", "str", doc="evaluate each run with a linear probe on this label field"),
    ),
)


def sweep_schema() -> dict:
    """The JSON Schema of the `sweep:` section (part of the spec's schema)."""
    return SWEEP.json_schema()


def _dist(raw: dict) -> Dist:
    ((kind, args),) = raw.items()
    return Dist(kind, tuple(args))


def trial_document(doc: Document, values: dict[str, Any]) -> Document:
    """A copy of ``doc`` without its `sweep:` section and with ``values`` set at their paths."""
    from latentspec.spec import apply_overrides

    data = copy.deepcopy(doc.data)
    data.pop("sweep", None)
    out = copy.copy(doc)
    out.data = data
    if hasattr(doc, "overrides"):  # where each overridden value came from: not shared with ``doc``
        out.overrides = dict(doc.overrides)
    for path, value in values.items():
        # the same places as `--set PATH=...`; the value itself is set as is (no YAML round trip)
        apply_overrides(out, [f"{path}=0"])
        parts = [int(p) if p.isdigit() else p for p in path.split(".")]
        cur = out.data
        for p in parts[:-1]:
            cur = cur[p]
        cur[parts[-1]] = value
    return out


def _base_dir(doc: Document) -> str:
    return os.path.dirname(os.path.abspath(doc.file)) if not doc.file.startswith("<") else os.getcwd()


def check_sweep(doc: Document, params: dict[str, Any] | None = None) -> tuple[SweepSpec | None, list[Diagnostic]]:
    """Check the schema-valid `sweep:` section of a valid spec: bounds, and every path and value
    tried against the spec like `--set`. ``params`` (from `--param`) replace or add entries;
    their diagnostics are located at ``--param``."""
    from latentspec.spec import check_document

    raw = doc.data.get("sweep") or {}
    diags: list[Diagnostic] = []
    given = dict(raw.get("params") or {})
    origin = dict.fromkeys(given, "spec")
    for path, d in (params or {}).items():
        given[path] = d
        origin[path] = "--param"
    space: dict[str, Dist] = {}
    for path, rd in given.items():

        def err(msg: str, path=path) -> None:
            if origin[path] == "spec":
                diags.append(doc.diag(("sweep", "params", path), msg, key=True))
            else:
                diags.append(Diagnostic(0, 0, "error", json_path(("sweep", "params", path)), msg, "--param"))

        dist = _dist(rd)
        if dist.kind in ("uniform", "loguniform", "int") and not dist.args[0] < dist.args[1]:
            err(f"{dist.kind}: the low bound {dist.args[0]} must be below the high bound {dist.args[1]}")
            continue
        if dist.kind == "loguniform" and dist.args[0] <= 0:
            err(f"loguniform: the low bound must be positive, not {dist.args[0]}")
            continue
        bad = False
        for value in dist.values():
            try:
                _, found = check_document(trial_document(doc, {path: value}), _base_dir(doc))
            except SpecError as exc:
                found = exc.diagnostics
            errors = [d for d in found if d.severity == "error"]
            if errors:
                first = errors[0]
                err(f"with {path}={json.dumps(value)}: {first.path}: {first.message}")
                bad = True
                break
        if not bad:
            space[path] = dist
    if not given:
        diags.append(
            doc.diag(
                ("sweep",), "nothing to search: add `params:` to the sweep section, or --param PATH=DIST", key=True
            )
        )
    if diags:
        return None, diags
    values = SWEEP.resolve({k: v for k, v in raw.items() if k != "params"})
    values.pop("params")
    return SweepSpec(space, **values), []


def parse_param(item: str) -> tuple[str, dict]:
    """``PATH={loguniform: [1e-4, 1e-2]}`` from the command line -> (path, distribution)."""
    import re

    import jsonschema
    import yaml

    path, sep, value = item.partition("=")
    where = Diagnostic(0, 0, "error", "$.sweep.params", "", "--param")

    def fail(msg: str) -> SpecError:
        return SpecError([dataclasses.replace(where, message=f"--param {item!r}: {msg}")])

    if not sep or not re.match(PATH_PATTERN, path):
        raise fail("expected PATH={DIST: [...]}, e.g. train.optimizer.lr={loguniform: [1.0e-4, 1.0e-2]}")
    try:
        dist = yaml.safe_load(value)
    except yaml.YAMLError:
        raise fail("the distribution is not valid YAML") from None
    schema = _dist_schema()
    try:
        jsonschema.validate(dist, schema)
    except jsonschema.ValidationError:
        raise fail(f"expected one of {', '.join('{' + k + ': [...]}' for k in DISTRIBUTIONS)}") from None
    return path, dist
