"""The OpenAPI description of each entry endpoint, generated from the manifest.

Each tensor becomes a nested-array JSON Schema with its shape (``minItems``/``maxItems`` per
fixed axis, the batch axis free), dtype (``number``/``integer``/``boolean``), value range
(``minimum``/``maximum``) and meaning; image inputs may also be PNG data URLs.
"""

from __future__ import annotations

from typing import Any

from ._entries import Entry, Tensor

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "one line: what is wrong and how to fix it"},
        "kind": {"type": "string", "description": "the error kind counted in /metrics"},
        "input": {"type": "string", "description": "the input at fault, where there is one"},
    },
    "required": ["error", "kind"],
}


def tensor_schema(t: Tensor, *, single: bool = False) -> dict[str, Any]:
    """Nested arrays for ``t`` (one item when ``single``), described by its manifest line."""
    if t.dtype.kind == "f":
        leaf: dict[str, Any] = {"type": "number"}
    elif t.dtype.kind == "b":
        leaf = {"type": "boolean"}
    else:
        leaf = {"type": "integer"}
    if t.range is not None and t.dtype.kind != "b":
        leaf["minimum"], leaf["maximum"] = t.range
    schema = leaf
    dims = t.item if single else t.shape
    for d in reversed(dims):
        schema = {"type": "array", "items": schema}
        if isinstance(d, int):
            schema["minItems"] = schema["maxItems"] = d
    schema = {
        **schema,
        "description": t.describe(),
        "x-dtype": t.dtype.name,
        "x-shape": list(t.shape),
        "x-meaning": t.meaning,
    }
    return schema


def _input_schema(t: Tensor) -> dict[str, Any]:
    options = [tensor_schema(t)]
    if t.batched:
        options.append({**tensor_schema(t, single=True), "description": f"one item of {t.name} (no batch axis)"})
    if t.image is not None:
        c, h, w = t.image
        url = {"type": "string", "description": f"a {w}x{h} PNG ({c} channel(s)) as data:image/png;base64,..."}
        options += [url, {"type": "array", "items": url, "description": "a batch of PNG data URLs"}]
    return {"anyOf": options, "description": t.describe()}


def entry_operation(entry: Entry) -> dict[str, Any]:
    """``openapi_extra`` for ``POST /v1/{bundle}/{entry}``."""
    has_iterations = any(t.meaning == "iterations" for t in entry.inputs)
    params = [
        _query("seed", "integer", "seed of the noise inputs not given (default 0)", minimum=0),
        _query("n", "integer", "batch size when no batched input is given (e.g. samples)", minimum=1),
        _query("output", "string", "the output a PNG or .npy answer holds (default: the first image output)"),
        _query("rows", "integer", "rows of the PNG grid of a batch", minimum=1),
        _query("input", "string", "the input a bare .npy or PNG body is for (when the entry takes several)"),
    ]
    if has_iterations:
        params.insert(2, _query("iterations", "integer", "loop trip count (default: the manifest's)", minimum=0))
    required = [t.name for t in entry.data_inputs]
    json_body: dict[str, Any] = {
        "type": "object",
        "properties": {
            "inputs": {
                "type": "object",
                "properties": {t.name: _input_schema(t) for t in entry.inputs},
                "required": required,
                "additionalProperties": False,
            },
            "seed": {"type": "integer", "minimum": 0},
            "n": {"type": "integer", "minimum": 1},
            **({"iterations": {"type": "integer", "minimum": 0}} if has_iterations else {}),
        },
        "required": ["inputs"] if required else [],
    }
    content: dict[str, Any] = {"application/json": {"schema": json_body}}
    form_fields = {
        t.name: {
            "type": "string",
            "format": "binary",
            "description": f"{t.describe()}: a .npy file"
            + (", a PNG" if t.image is not None else "")
            + ", or a JSON array; repeat a file field for a batch",
        }
        for t in entry.inputs
    }
    content["multipart/form-data"] = {"schema": {"type": "object", "properties": form_fields, "required": required}}
    if len(entry.data_inputs) == 1:
        t = entry.data_inputs[0]
        content["application/x-npy"] = {"schema": {"type": "string", "format": "binary", "description": t.describe()}}
        if t.image is not None:
            content["image/png"] = {"schema": {"type": "string", "format": "binary", "description": t.describe()}}
    answers: dict[str, Any] = {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "outputs": {
                        "type": "object",
                        "properties": {t.name: tensor_schema(t) for t in entry.outputs},
                    }
                },
            }
        },
        "application/x-npy": {"schema": {"type": "string", "format": "binary"}},
    }
    if any(t.image is not None for t in entry.outputs):
        answers["image/png"] = {"schema": {"type": "string", "format": "binary"}}
    error = {"application/json": {"schema": ERROR_SCHEMA}}
    return {
        "parameters": params,
        "requestBody": {"required": bool(required), "content": content},
        "responses": {
            "200": {"description": "the entry's outputs", "content": answers},
            "400": {"description": "a body that cannot be read", "content": error},
            "401": {"description": "missing or wrong bearer token", "content": error},
            "406": {"description": "the Accept header asks for what the entry cannot give", "content": error},
            "413": {"description": "the body or the batch is too large", "content": error},
            "415": {"description": "an unsupported Content-Type", "content": error},
            "422": {"description": "an input fails the checks of the Python API", "content": error},
        },
    }


def entry_description(entry: Entry) -> str:
    task = "" if entry.task == entry.name else f"{entry.task}, "
    lines = [f"Entry point `{entry.name}` ({task}{entry.kind}) of bundle `{entry.bundle}`.", "", "Inputs:"]
    lines += [f"- `{t.name}`: {t.describe()}" for t in entry.inputs]
    lines += ["", "Outputs:"]
    lines += [f"- `{t.name}`: {t.describe()}" for t in entry.outputs]
    return "\n".join(lines)


def _query(name: str, kind: str, description: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": kind, **extra},
    }
