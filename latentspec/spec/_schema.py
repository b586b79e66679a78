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
    load_all,
)
from latentspec.components._registry import Component, Registry

SCHEMA_ID = "https://latentspec.dev/schema/latentspec-1.schema.json"
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
SPEC_VERSION = 1

_NAME = {"type": "string", "pattern": NAME_PATTERN}
_NAMES = {"anyOf": [_NAME, {"type": "array", "items": _NAME}]}
_NUM = {"type": "number"}


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
    defs["schedule"] = sched_head
    weight = {"anyOf": [_NUM, {"$ref": "#/$defs/schedule"}]}

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

    term_head, d = _dispatch(
        TERMS,
        "term",
        {"in": _NAMES, "weight": weight, "stages": {"type": "array", "items": _NAME}, "doc": {"type": "string"}},
        ["in"],
    )
    defs.update(d)
    defs["term"] = term_head

    opt_head, d = _dispatch(OPTIMIZERS, "name", {}, ref_prefix="optimizer")
    defs.update(d)
    defs["optimizer"] = opt_head

    dataset, d = _named_choice(DATASETS)
    defs.update(d)
    sampler, d = _named_choice(SAMPLERS)
    defs.update(d)

    count = {"type": "number", "exclusiveMinimum": 0}
    field = _closed(
        {
            "from": {
                "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
                "description": "the dataset array, `index` (the row number), or a list of scalar arrays stacked into a vector",
            },
            "dtype": {"enum": ["float32", "int64"]},
            "scale": {
                "type": "array",
                "items": _NUM,
                "minItems": 2,
                "maxItems": 2,
                "description": "map the array's range onto [lo, hi]",
            },
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
            "classes": {"type": "integer", "minimum": 2},
            "one_hot": {"type": "boolean"},
            "encode": {"enum": ["sincos"]},
            "where": {
                "type": "object",
                "additionalProperties": {"type": ["string", "number", "boolean"]},
                "description": "keep rows whose arrays equal these values",
            },
        },
        ["from"],
    )
    data = _closed(
        {
            "dataset": dataset,
            "split": _closed({"train": count, "test": count, "val": count}, ["train"]),
            "fields": {"type": "object", "propertyNames": _NAME, "additionalProperties": field, "minProperties": 1},
            "batch": {"type": "integer", "minimum": 1},
            "test_batch": {"type": "integer", "minimum": 1},
            "sampler": sampler,
            "drop_last": {"type": "boolean"},
        },
        ["dataset", "fields"],
    )
    latent = _closed(
        {
            "dim": {"type": "integer", "minimum": 1},
            "prior": {"enum": ["normal", "uniform", "none"]},
            "table": {
                "anyOf": [{"type": "boolean"}, _closed({"index": _NAME, "size": {"type": "integer", "minimum": 1}})]
            },
            "project": {"enum": ["none", "unit_l2", "l2_ball"]},
            "radius": {"type": "number", "exclusiveMinimum": 0},
            "init": {"enum": ["pca", "normal", "zeros"]},
            "init_scale": {"type": "number", "minimum": 0},
            "candidates": {"type": "integer", "minimum": 1},
            "groups": {
                "type": "object",
                "propertyNames": _NAME,
                "additionalProperties": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1},
            },
        },
        ["dim"],
    )
    stage = _closed(
        {
            "name": _NAME,
            "trainable": {"type": "array", "items": _NAME},
            "terms": {"type": "array", "items": _NAME},
            "optimizer": {"$ref": "#/$defs/optimizer"},
            "epochs": {"type": "integer", "minimum": 0},
            "steps": {"type": "integer", "minimum": 0},
            "fit": {"enum": ["pca"]},
            "schedule": {"$ref": "#/$defs/schedule"},
            "clip_grad": {"type": "number", "exclusiveMinimum": 0},
        },
        ["name"],
    )
    train = _closed(
        {
            "optimizer": {"$ref": "#/$defs/optimizer"},
            "epochs": {"type": "integer", "minimum": 0},
            "steps": {"type": "integer", "minimum": 0},
            "schedule": {"$ref": "#/$defs/schedule"},
            "clip_grad": {"type": "number", "exclusiveMinimum": 0},
            "stages": {"type": "array", "items": stage, "minItems": 1},
            "amp": {"type": "boolean"},
            "compile": {"type": "boolean"},
            "eval_every": {
                "type": "integer",
                "minimum": 0,
                "description": "epochs between test evaluations (0 = only at the end)",
            },
            "samples_every": {"type": "integer", "minimum": 0, "description": "epochs between sample grids (0 = none)"},
            "log_every": {"type": "integer", "minimum": 1, "description": "steps between per-step metric rows"},
        }
    )
    entry = _closed(
        {
            "in": {"type": "array", "items": _NAME},
            "out": {"type": "array", "items": _NAME, "minItems": 1},
            "optimize": _NAME,
            "terms": {"type": "array", "items": {"anyOf": [_NAME, {"$ref": "#/$defs/term"}]}, "minItems": 1},
            "steps": {"type": "integer", "minimum": 0},
            "lr": {"type": "number", "exclusiveMinimum": 0},
            "starts": {"type": "integer", "minimum": 1},
            "iterations": {"type": "integer", "minimum": 0, "description": "default trip count of a loop entry"},
            "inputs": {
                "type": "object",
                "propertyNames": _NAME,
                "description": "tensors only this entry takes (e.g. an inpainting mask), with their shapes",
                "additionalProperties": _closed(
                    {
                        "shape": {"type": "array", "items": {"type": "integer", "minimum": 1}},
                        "dtype": {"enum": ["float32", "int64"]},
                        "meaning": {"enum": ["image", "mask", "latent", "label", "value"]},
                        "range": {"type": "array", "items": _NUM, "minItems": 2, "maxItems": 2},
                    },
                    ["shape"],
                ),
            },
            "doc": {"type": "string"},
        },
        ["in", "out"],
    )
    defs.update({"data": data, "latent": latent, "stage": stage, "train": train, "entry": entry})
    top = _closed(
        {
            "$schema": {"type": "string"},
            "latentspec": {"const": SPEC_VERSION, "description": "spec language version"},
            "name": _NAME,
            "description": {"type": "string"},
            "seed": {"type": "integer", "minimum": 0},
            "data": {"$ref": "#/$defs/data"},
            "latents": {"type": "object", "propertyNames": _NAME, "additionalProperties": {"$ref": "#/$defs/latent"}},
            "nodes": {
                "type": "object",
                "propertyNames": _NAME,
                "additionalProperties": {"$ref": "#/$defs/node"},
                "minProperties": 1,
            },
            "objective": {"type": "object", "propertyNames": _NAME, "additionalProperties": {"$ref": "#/$defs/term"}},
            "train": {"$ref": "#/$defs/train"},
            "export": {"type": "object", "propertyNames": _NAME, "additionalProperties": {"$ref": "#/$defs/entry"}},
        },
        ["latentspec", "name", "data", "nodes"],
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "latentspec spec, version 1",
        **top,
        "$defs": defs,
    }
