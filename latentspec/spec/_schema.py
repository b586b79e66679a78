"""The JSON Schema (draft 2020-12) of spec version 1, generated from the registries."""

from __future__ import annotations

import functools

from latentspec.components import (
    DATASETS,
    MODULES,
    OPS,
    OPTIMIZERS,
    SAMPLERS,
    SCHEDULES,
    TERMS,
    TRACKERS,
)
from latentspec.components._registry import Component, Registry
from latentspec.registries import load_all
from latentspec.spec._sections import (
    BASELINE,
    CLAIM,
    DATA,
    DEFAULT_OPTIMIZER,
    ENTRY,
    ENTRY_INPUT,
    FIELD,
    LATENT,
    NAME,
    NAMES,
    STAGE,
    TERM,
    TOP,
    TRAIN,
)
from latentspec.spec._sweep import SWEEP

SCHEMA_ID = "https://latentspec.dev/schema/latentspec-1.schema.json"

_NAME, _NAMES = NAME, NAMES


def _closed(props: dict, required: list[str] | tuple = (), doc: str = "") -> dict:
    s = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        s["required"] = list(required)
    if doc:
        s["description"] = doc
    return s


def _params(cls: type[Component]) -> tuple[dict, list[str]]:
    return {p.name: p.json_schema() for p in cls.params}, [p.name for p in cls.params if p.required]


def _dispatch(registry: Registry, key: str, common: dict, common_required=(), ref_prefix="") -> tuple[dict, dict]:
    """A schema dispatching on ``key`` via if/then (one closed sub-schema per entry)."""
    defs, branches = {}, []
    for name, cls in registry.items():
        props, req = _params(cls)
        defname = f"{ref_prefix or registry.kind}.{name}"
        defs[defname] = _closed({key: {"const": name}, **common, **props}, [key, *common_required, *req], cls.summary())
        branches.append(
            {"if": {"properties": {key: {"const": name}}, "required": [key]}, "then": {"$ref": f"#/$defs/{defname}"}}
        )
    head = {"type": "object", "properties": {key: {"enum": registry.names()}}, "allOf": branches}
    return head, defs


def _named_choice(registry: Registry, shorthand: str | None = None) -> tuple[dict, dict]:
    """``name`` or ``{name: {params}}`` (or ``{name: scalar}`` for a one-parameter shorthand)."""
    defs, props = {}, {}
    for name, cls in registry.items():
        p, req = _params(cls)
        defname = f"{registry.kind}.{name}"
        defs[defname] = _closed(p, req, cls.summary())
        short = getattr(cls, "shorthand", None)
        props[name] = (
            {"anyOf": [{"$ref": f"#/$defs/{defname}"}, {"type": "string"}]} if short else {"$ref": f"#/$defs/{defname}"}
        )
    schema = {
        "anyOf": [
            {"enum": registry.names()},
            {
                "type": "object",
                "properties": props,
                "additionalProperties": False,
                "minProperties": 1,
                "maxProperties": 1,
            },
        ]
    }
    return schema, defs


@functools.lru_cache(maxsize=1)
def spec_schema() -> dict:
    """The whole schema. Cached; the registries do not change after ``load_all``."""
    load_all()
    defs: dict = {}

    sched_head, d = _dispatch(SCHEDULES, "schedule", {})
    defs.update(d)
    defs["schedule"] = {**sched_head, "required": ["schedule"]}

    node_common = {"in": _NAMES, "out": _NAMES, "doc": {"type": "string"}}
    mod_head, d = _dispatch(MODULES, "module", node_common)
    defs.update(d)
    op_head, d = _dispatch(OPS, "op", node_common)
    defs.update(d)
    # the loop op's body holds nodes and its state maps state tensors to initial tensors
    loop = defs.get("op.loop")
    if loop is not None:
        loop["properties"]["body"] = {
            "type": "object",
            "propertyNames": _NAME,
            "additionalProperties": {"$ref": "#/$defs/node"},
        }
        loop["properties"]["state"] = {
            "type": "object",
            "propertyNames": _NAME,
            "additionalProperties": _NAME,
            "minProperties": 1,
        }
    defs["node.use"] = _closed(
        {
            "use": _NAME,
            "method": {"type": "string", "description": "a method of the shared module (e.g. pca's `inverse`)"},
            **node_common,
        },
        ["use"],
        "Apply another node's module again, sharing its weights.",
    )
    defs["node"] = {
        "type": "object",
        "properties": {"module": mod_head["properties"]["module"], "op": op_head["properties"]["op"], "use": _NAME},
        "oneOf": [{"required": ["module"]}, {"required": ["op"]}, {"required": ["use"]}],
        "allOf": mod_head["allOf"]
        + op_head["allOf"]
        + [{"if": {"required": ["use"]}, "then": {"$ref": "#/$defs/node.use"}}],
    }

    term_common = {p.name: p.json_schema() for p in TERM.params}
    term_head, d = _dispatch(TERMS, "term", term_common, [p.name for p in TERM.params if p.required])
    defs.update(d)
    defs["term"] = {**term_head, "required": ["term"]}  # no term kind: a located error, not a guess

    opt_head, d = _dispatch(OPTIMIZERS, "name", {}, ref_prefix="optimizer")
    defs.update(d)
    opt_head["properties"]["name"]["default"] = DEFAULT_OPTIMIZER
    defs["optimizer"] = opt_head

    dataset, d = _named_choice(DATASETS)
    defs.update(d)
    sampler, d = _named_choice(SAMPLERS)
    defs.update(d)

    tracker, d = _named_choice(TRACKERS)
    defs.update(d)

    defs.update({"dataset": dataset, "sampler": sampler, "tracker": tracker, "sweep": SWEEP.json_schema()})
    # the skeleton sections, from their declarations (defaults and descriptions included)
    for section, defname in (
        (DATA, "data"),
        (FIELD, "field"),
        (LATENT, "latent"),
        (TRAIN, "train"),
        (STAGE, "stage"),
        (ENTRY, "entry"),
        (ENTRY_INPUT, "entry_input"),
        (CLAIM, "claim"),
        (BASELINE, "baseline"),
    ):
        defs[defname] = section.json_schema()
    top = TOP.json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "latentspec spec, version 1",
        **top,
        "$defs": defs,
    }
