"""Turn jsonschema errors into located, human diagnostics."""

from __future__ import annotations

import jsonschema
from jsonschema.exceptions import best_match

from latentspec.spec._diagnostics import Diagnostic, did_you_mean
from latentspec.spec._yaml import Document

_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}
_DISCRIMINATORS = {"module": "module", "op": "op", "term": "term", "name": "optimizer", "schedule": "schedule"}


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return repr(value)


def _expected(schema: dict) -> str:
    t = schema.get("type")
    if isinstance(t, list):
        return " or ".join(_TYPE_NAMES.get(x, x) for x in t)
    return _TYPE_NAMES.get(t, str(t))


# JSON Schema counts 100.0 as an integer; a spec does not (a float batch size or dim would reach torch)
_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, x: isinstance(x, int) and not isinstance(x, bool)
    ),
)


def schema_diagnostics(doc: Document, schema: dict) -> tuple[list[Diagnostic], bool]:
    """The schema's diagnostics, and whether they block the semantic pass (anything but
    unknown keys does: unknown keys are ignored by the model, so the graph can still be checked)."""
    validator = _Validator(schema)
    out: list[Diagnostic] = []
    blocking = False
    for err in validator.iter_errors(doc.data):
        out.extend(_convert(doc, err))
        blocking |= err.validator != "additionalProperties"
    # one diagnostic per place and message
    seen, unique = set(), []
    for d in sorted(out):
        key = (d.line, d.col, d.message)
        if key not in seen:
            seen.add(key)
            unique.append(d)
    return unique, blocking


def blocking_paths(data: object, schema: dict) -> list[tuple]:
    """Where the schema errors that block the semantic pass are (see :func:`schema_diagnostics`)."""
    return [
        tuple(e.absolute_path) for e in _Validator(schema).iter_errors(data) if e.validator != "additionalProperties"
    ]


def _convert(doc: Document, err: jsonschema.ValidationError) -> list[Diagnostic]:
    path = tuple(err.absolute_path)
    v = err.validator
    inst = err.instance
    if v == "additionalProperties":
        allowed = list(err.schema.get("properties", {}))
        extra = [k for k in inst if k not in allowed]
        kinds = [k for k in ("module", "op", "use") if k in inst]
        if len(kinds) > 1:  # reported once, as two discriminators
            extra = [k for k in extra if k not in kinds]
        return [
            doc.diag(
                path + (k,),
                f"unknown key '{k}'" + (did_you_mean(k, allowed) or f"; allowed keys: {', '.join(allowed)}"),
                key=True,
            )
            for k in extra
        ]
    if v == "enum":
        choices = [str(c) for c in err.validator_value]
        last = path[-1] if path else ""
        what = _DISCRIMINATORS.get(last, None) if isinstance(last, str) else None
        if what is None and isinstance(last, str):
            what = last
        hint = did_you_mean(str(inst), choices)
        listing = ", ".join(choices) if len(choices) <= 30 else ", ".join(choices[:30]) + ", ..."
        return [doc.diag(path, f"unknown {what or 'value'} {_describe(inst)}{hint}; expected one of: {listing}")]
    if v == "const":
        if path == ("latentspec",):
            return [
                doc.diag(
                    path,
                    f"unsupported spec version {_describe(inst)}; this latentspec reads version {err.validator_value}",
                )
            ]
        return [doc.diag(path, f"expected {err.validator_value!r}, got {_describe(inst)}")]
    if v == "type":
        return [doc.diag(path, f"expected {_expected(err.schema)}, got {_describe(inst)}")]
    if v == "required":
        missing = [r for r in err.validator_value if r not in inst]
        return [doc.diag(path, f"missing required key '{m}'") for m in missing[:1]] if missing else []
    if v == "pattern" or (v == "propertyNames"):
        return [
            doc.diag(
                path, f"{_describe(inst)} is not a valid name: use letters, digits and '_', not starting with a digit"
            )
        ]
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}[v]
        return [doc.diag(path, f"must be {op} {err.validator_value}, got {_describe(inst)}")]
    if v in ("minItems", "maxItems"):
        n = len(inst)
        lo, hi = err.schema.get("minItems"), err.schema.get("maxItems")
        want = f"exactly {lo}" if lo == hi else (f"at least {lo}" if v == "minItems" else f"at most {hi}")
        return [doc.diag(path, f"expected {want} item{'s' if (lo or hi) != 1 else ''}, got {n}")]
    if v in ("minProperties", "maxProperties"):
        if err.validator_value == 1 and v == "maxProperties":
            return [doc.diag(path, f"expected a single key (the name), got {len(inst)}: {', '.join(inst)}")]
        return [doc.diag(path, "must not be empty")]
    if v == "oneOf" and isinstance(inst, dict) and {"module", "op", "use"} & set(err.schema.get("properties", {})):
        present = [k for k in ("module", "op", "use") if k in inst]
        if not present:
            return [doc.diag(path, "a node needs one of 'module', 'op' or 'use'")]
        return [
            doc.diag(
                path + (present[1],),
                f"a node has exactly one of 'module', 'op' or 'use'; found {' and '.join(present)}",
                key=True,
            )
        ]
    if v in ("anyOf", "oneOf") and err.context:
        # pick the branch that matches the value's type best, and explain that one
        typed = [e for e in err.context if e.validator != "type" or len(e.relative_path) > 0]
        best = best_match(typed or err.context)
        if best is not None and not (best.validator == "enum" and isinstance(inst, dict)):
            return _convert(doc, best)
        if isinstance(inst, dict) and len(inst) == 1:
            # {name: params} with an unknown name
            props = {}
            for e in err.context:
                props.update(e.schema.get("properties", {}) if isinstance(e.schema, dict) else {})
            name = next(iter(inst))
            return [
                doc.diag(
                    path + (name,),
                    f"unknown {path[-1] if path else 'name'} '{name}'{did_you_mean(name, props)}; expected one of: {', '.join(props)}",
                    key=True,
                )
            ]
        return [doc.diag(path, f"{_describe(inst)} does not fit here")]
    return [doc.diag(path, err.message)]
