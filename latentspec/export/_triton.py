"""``--format triton``: a Triton Inference Server model repository inside the bundle.

``triton/<entry>/config.pbtxt`` + ``triton/<entry>/1/model.onnx`` for every entry of kind
"graph" (optimize entries need the runtime's loop around their graph). Entries batch along axis
0 (``max_batch_size`` 64, ``dynamic_batching``); an input or output whose only axis is the batch
is given as ``dims: [ 1 ]`` with ``reshape: { shape: [ ] }`` (Triton's rule). An entry with a
0-d input (the ``steps`` trip count of a loop) or a noise input with a batch factor cannot be
batched by Triton: it gets ``max_batch_size: 0``, full dims with -1 for the batch axis, no
dynamic batcher, and its 0-d input as ``dims: [ 1 ]`` with ``reshape: { shape: [ ] }``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from typing import Any

from latentspec_runtime._atomic import atomic_path, write_text


def max_batch() -> int:
    """``max_batch_size`` of batching entries: the triton export target's default (64)."""
    from latentspec.components import EXPORTS, load_all

    load_all()
    return int(EXPORTS["triton"].param("max_batch_size").default)


DATA_TYPES = {"float32": "TYPE_FP32", "int64": "TYPE_INT64", "float64": "TYPE_FP64", "bool": "TYPE_BOOL"}


def batchable(entry: dict) -> bool:
    """Whether Triton can batch the entry: every input and output has the plain batch axis first."""
    tensors = entry["inputs"] + entry["outputs"]
    return all(t["shape"] and t["shape"][0] == "batch" for t in tensors)


def _tensor(t: dict, batched: bool) -> list[str]:
    shape = t["shape"]
    if batched:
        dims, model_shape = list(shape[1:]), None
    else:
        dims, model_shape = [-1 if isinstance(d, str) else d for d in shape], None
    if not dims:  # Triton needs a non-empty dims: [1] reshaped to what the model takes
        dims, model_shape = [1], []
    lines = [
        "  {",
        f'    name: "{t["name"]}"',
        f"    data_type: {DATA_TYPES[t['dtype']]}",
        f"    dims: [ {', '.join(str(d) for d in dims)} ]",
    ]
    if model_shape is not None:
        lines.append(f"    reshape: {{ shape: [ {', '.join(str(d) for d in model_shape)} ] }}")
    lines.append("  }")
    return lines


def _block(key: str, tensors: Sequence[dict], batched: bool) -> list[str]:
    lines = [f"{key} ["]
    for i, t in enumerate(tensors):
        body = _tensor(t, batched)
        if i + 1 < len(tensors):
            body[-1] += ","
        lines += body
    lines.append("]")
    return lines


def config_text(name: str, entry: dict) -> str:
    """The config.pbtxt of one entry point, from its manifest entry."""
    batched = batchable(entry)
    lines = [
        f'name: "{name}"',
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {max_batch() if batched else 0}",
        *_block("input", entry["inputs"], batched),
        *_block("output", entry["outputs"], batched),
    ]
    if batched:
        lines.append("dynamic_batching { }")
    lines += ["instance_group [", "  {", "    kind: KIND_GPU", "  }", "]"]
    return "\n".join(lines) + "\n"


def write_repository(root: str, entries: dict[str, dict]) -> list[str]:
    """Write ``triton/`` for the graph entries; return the files written (relative paths)."""
    written = []
    for name, entry in entries.items():
        if entry["kind"] != "graph":
            continue
        folder = os.path.join(root, "triton", name)
        os.makedirs(os.path.join(folder, "1"), exist_ok=True)
        write_text(os.path.join(folder, "config.pbtxt"), config_text(name, entry))
        with atomic_path(os.path.join(folder, "1", "model.onnx")) as tmp:
            shutil.copyfile(os.path.join(root, entry["file"]), tmp)
        written += [f"triton/{name}/config.pbtxt", f"triton/{name}/1/model.onnx"]
    return written


# -- a parser for the protobuf text format subset config.pbtxt uses ------------------------------

_TOKEN = re.compile(
    r'\s*(?:#[^\n]*\n?|("(?:[^"\\]|\\.)*")|([-+]?\d+\.\d*(?:[eE][-+]?\d+)?|[-+]?\d+)|([A-Za-z_][\w.]*)|(.))'
)


def _tokens(text: str) -> list[tuple[str, Any]]:
    out = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            break
        pos = m.end()
        string, number, name, punct = m.groups()
        if string is not None:
            out.append(("value", bytes(string[1:-1], "utf-8").decode("unicode_escape")))
        elif number is not None:
            out.append(("value", float(number) if "." in number or "e" in number.lower() else int(number)))
        elif name is not None:
            out.append(("name", name))
        elif punct is not None and not punct.isspace():
            out.append(("punct", punct))
    return out


def parse_pbtxt(text: str) -> dict[str, Any]:
    """Parse protobuf text format (fields, nested messages, lists) into dicts and lists.

    A field that appears several times, or is written with ``[ ... ]``, becomes a list. Enum
    values and bare words are strings; ``true``/``false`` are booleans.
    """
    tokens = _tokens(text)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else ("end", None)

    def take(kind, value=None):
        nonlocal pos
        tok = peek()
        if tok[0] != kind or (value is not None and tok[1] != value):
            raise ValueError(f"config.pbtxt: expected {value or kind}, found {tok[1]!r}")
        pos += 1
        return tok[1]

    def scalar():
        kind, value = peek()
        if kind == "value":
            take("value")
            return value
        if kind == "name":
            take("name")
            return {"true": True, "false": False}.get(value, value)
        raise ValueError(f"config.pbtxt: expected a value, found {value!r}")

    def value():
        if peek() == ("punct", "{"):
            take("punct", "{")
            body = message("}")
            take("punct", "}")
            return body
        if peek() == ("punct", "["):
            take("punct", "[")
            items = []
            while peek() != ("punct", "]"):
                items.append(value())
                if peek() == ("punct", ","):
                    take("punct", ",")
            take("punct", "]")
            return items
        return scalar()

    def message(end):
        fields: dict[str, Any] = {}
        while peek()[0] != "end" and peek() != ("punct", end):
            key = take("name")
            if peek() == ("punct", ":"):
                take("punct", ":")
            v = value()
            if key in fields:
                old = fields[key]
                fields[key] = (old if isinstance(old, list) else [old]) + (v if isinstance(v, list) else [v])
            else:
                fields[key] = v
            if peek() in (("punct", ","), ("punct", ";")):
                take("punct", peek()[1])
        return fields

    result = message(None)
    if pos != len(tokens):
        raise ValueError(f"config.pbtxt: unexpected {peek()[1]!r}")
    return result
