"""Spec loading and validation: YAML with positions, the generated JSON Schema, semantics.

>>> from latentspec.spec import validate_text
>>> spec, diags = validate_text("latentspec: 1\\nname: x\\n")
>>> spec is None
True
"""

from __future__ import annotations

import os

import yaml

from latentspec.spec._diagnostics import Diagnostic, SpecError, did_you_mean, format_diagnostics, json_path
from latentspec.spec._model import DataSpec, EntrySpec, FieldSpec, NodeSpec, Spec, StageSpec, TermSpec, TrainSpec
from latentspec.spec._schema import spec_schema
from latentspec.spec._yaml import Document, load_file, load_text, parse_value


def apply_overrides(doc: Document, overrides: list[str]) -> None:
    """Apply ``key.path=value`` overrides to the loaded data in place. The value is read as the
    spec file reads YAML (``1e-3`` is a number); problems are located at ``--set KEY``."""
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        where = f"--set {key or item}"
        if not sep or not key:
            raise SpecError([Diagnostic(0, 0, "error", "$", f"expected KEY.PATH=VALUE, got {item!r}", where)])
        parts = [int(p) if p.isdigit() else p for p in key.split(".")]
        if any(p == "" for p in parts):
            raise SpecError([Diagnostic(0, 0, "error", "$", f"{key!r} is not a dotted key path", where)])
        parsed = parse_value(value, where, tuple(parts)) if value.strip() else ""
        cur = doc.data
        for i, p in enumerate(parts[:-1]):
            nxt = (
                cur[p]
                if (isinstance(cur, dict) and p in cur)
                or (isinstance(cur, list) and isinstance(p, int) and p < len(cur))
                else None
            )
            if nxt is None:
                if not isinstance(cur, dict):
                    msg = f"cannot descend into {type(cur).__name__}"
                    raise SpecError([Diagnostic(0, 0, "error", json_path(parts[: i + 1]), msg, where)])
                nxt = cur[p] = {}
            cur = nxt
        last = parts[-1]
        if isinstance(cur, list) and isinstance(last, int) and last < len(cur):
            cur[last] = parsed
        elif isinstance(cur, dict):
            cur[last] = parsed
        else:
            raise SpecError([Diagnostic(0, 0, "error", json_path(parts), "no such place in the spec", where)])
        doc.overrides[tuple(parts)] = where


def check_document(doc: Document, base_dir: str | None = None) -> tuple[Spec | None, list[Diagnostic]]:
    """Passes 2 (schema) and 3 (semantics) on a loaded document."""
    from latentspec.spec._errors import schema_diagnostics
    from latentspec.spec._validate import Checker

    diags, blocking = schema_diagnostics(doc, spec_schema())
    if base_dir is None:
        base_dir = os.path.dirname(os.path.abspath(doc.file)) if not doc.file.startswith("<") else os.getcwd()
    if blocking:
        return None, sorted(diags + _semantics_of_the_rest(doc, base_dir))
    checker = Checker(doc, base_dir)
    spec = checker.run()
    if spec is not None and not diags and isinstance(doc.data, dict) and doc.data.get("sweep"):
        from latentspec.spec._sweep import check_sweep

        # every searched path and value, tried on the spec like --set
        found = check_sweep(doc)[1]
        diags += found
        if found:
            spec = None
    if spec is not None and not diags and isinstance(doc.data, dict) and doc.data.get("claims"):
        from latentspec.spec._claims import check_claims

        found = check_claims(doc, spec)  # every metric path one that `eval` writes for this spec
        diags += found
        if found:
            spec = None
    if spec is not None and not diags and not any(d.severity == "error" for d in checker.diags):
        from latentspec.spec._limits import cost_diagnostics

        found = cost_diagnostics(doc, spec)  # refused before anything is allocated
        diags += found
        if found:
            spec = None
    every = sorted(diags + checker.diags)
    return (None if diags else spec), every


def _semantics_of_the_rest(doc: Document, base_dir: str) -> list[Diagnostic]:
    """The semantic pass on what the schema accepted (spec._partial): nodes, terms and entries
    it refused are set aside; [] when the refused part is not such an item."""
    from latentspec.spec._errors import blocking_paths
    from latentspec.spec._partial import set_aside
    from latentspec.spec._validate import Checker

    schema = spec_schema()
    rest = set_aside(doc, blocking_paths(doc.data, schema))
    if rest is None or blocking_paths(rest.doc.data, schema):
        return []
    checker = Checker(rest.doc, base_dir, neutral=rest.nodes, also_read=rest.reads)
    checker.run()
    return [d for d in checker.diags if rest.unrelated(d)]


def validate_text(
    text: str, file: str = "<spec>", overrides: list[str] | None = None
) -> tuple[Spec | None, list[Diagnostic]]:
    try:
        doc = load_text(text, file)
        apply_overrides(doc, overrides or [])
    except SpecError as exc:
        return None, exc.diagnostics
    return check_document(doc)


def validate_file(path: str, overrides: list[str] | None = None) -> tuple[Spec | None, list[Diagnostic]]:
    """Validate a spec file. Raises FileNotFoundError for an unreadable path (a usage error)."""
    try:
        doc = load_file(path)
        apply_overrides(doc, overrides or [])
    except SpecError as exc:
        return None, exc.diagnostics
    return check_document(doc)


def load_spec(path_or_text: str, overrides: list[str] | None = None, *, text: bool = False) -> Spec:
    """A valid :class:`Spec`, or :class:`SpecError` with every diagnostic."""
    spec, diags = validate_text(path_or_text, overrides=overrides) if text else validate_file(path_or_text, overrides)
    if spec is None:
        raise SpecError(diags)
    return spec


def dump_resolved(spec: Spec) -> str:
    """The spec as resolved (overrides applied, data paths made absolute), for run directories."""
    import copy

    raw = copy.deepcopy(spec.raw)
    ds = raw.get("data", {}).get("dataset")
    if isinstance(ds, dict):
        ((name, cfg),) = ds.items()
        if isinstance(cfg, str):
            cfg = {"path": cfg}
        if isinstance(cfg, dict) and isinstance(cfg.get("path"), str):
            cfg["path"] = os.path.join(spec.base_dir, os.path.expanduser(cfg["path"]))
            raw["data"]["dataset"] = {name: cfg}
    return yaml.safe_dump(raw, sort_keys=False)


__all__ = [
    "DataSpec",
    "Diagnostic",
    "Document",
    "EntrySpec",
    "FieldSpec",
    "NodeSpec",
    "Spec",
    "SpecError",
    "StageSpec",
    "TermSpec",
    "TrainSpec",
    "apply_overrides",
    "did_you_mean",
    "dump_resolved",
    "format_diagnostics",
    "load_file",
    "load_spec",
    "load_text",
    "spec_schema",
    "validate_file",
    "validate_text",
]
