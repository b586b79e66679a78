"""Request bodies in (JSON, ``.npy``, PNG, multipart), responses out (JSON, PNG, ``.npy``).

Every problem is a :class:`RequestError` with an HTTP status, an error kind for the metrics,
and, where one input is at fault, that input's name.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from .._images import grid, read_image, to_uint8
from .._manifest import InputError
from ._entries import Entry, Tensor

NPY_MAGIC = b"\x93NUMPY"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JSON = "application/json"
PNG = "image/png"
NPY = "application/x-npy"
OPTIONS = ("seed", "n", "iterations")


class RequestError(Exception):
    """A request the server refuses: ``status`` (4xx), ``kind`` (metrics label), ``input``."""

    def __init__(self, status: int, kind: str, message: str, input: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.input = input

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": str(self), "kind": self.kind}
        if self.input is not None:
            out["input"] = self.input
        return out


def bad_input(message: str, name: str | None) -> RequestError:
    return RequestError(422, "invalid_input", message, name)


# -- options ---------------------------------------------------------------------------------


def parse_options(query: dict[str, str], body: dict[str, Any] | None = None) -> dict[str, int | None]:
    """``seed``, ``n`` and ``iterations`` from the query string and/or the JSON body."""
    out: dict[str, int | None] = {"seed": 0, "n": None, "iterations": None}
    low = {"seed": 0, "n": 1, "iterations": 0}
    for key in OPTIONS:
        value: Any = None
        if body is not None and key in body:
            value = body[key]
        elif key in query:
            text = query[key]
            try:
                value = int(text)
            except ValueError:
                raise RequestError(400, "bad_request", f"{key} must be an integer, got {text!r}") from None
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low[key] <= value < 2**63:
            raise RequestError(
                400, "bad_request", f"{key} must be an integer from {low[key]} to 2**63-1, got {value!r}", key
            )
        out[key] = value
    return out


# -- arrays from the wire --------------------------------------------------------------------


def from_npy(data: bytes, name: str) -> np.ndarray:
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError) as err:
        raise RequestError(400, "bad_request", f"input {name!r}: not a .npy array ({err})", name) from None


def from_image(data: bytes, t: Tensor) -> np.ndarray:
    """An uploaded image as one item of ``t``: channels converted, values mapped to its range."""
    if t.image is None:
        raise bad_input(f"input {t.name!r} ({t.describe()}) is not an image; send it as a JSON array or .npy", t.name)
    c, h, w = t.image
    try:
        image = read_image(io.BytesIO(data), c)  # type: ignore[arg-type]
    except (InputError, ImportError) as err:
        raise RequestError(400, "bad_request", f"input {t.name!r}: cannot read the upload as an image", t.name) from err
    if image.shape[1:] != (h, w):
        raise bad_input(
            f"input {t.name!r}: the image is {image.shape[2]}x{image.shape[1]} pixels, the entry takes {w}x{h}",
            t.name,
        )
    if t.range is not None and t.range != (0.0, 1.0):
        lo, hi = t.range
        image = (lo + (hi - lo) * image).astype(np.float32)
    return image.reshape(t.item) if len(t.item) == 1 else image


def _from_data_url(text: str, t: Tensor) -> np.ndarray:
    head, sep, payload = text.partition(",")
    if not (sep and head.startswith("data:") and head.endswith(";base64")):
        raise RequestError(
            400,
            "bad_request",
            f"input {t.name!r}: a string must be a base64 data URL (data:image/png;base64,...)",
            t.name,
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, "bad_request", f"input {t.name!r}: the data URL is not valid base64", t.name) from None
    return from_npy(data, t.name) if data.startswith(NPY_MAGIC) else from_image(data, t)


def from_json(value: Any, t: Tensor | None, name: str) -> np.ndarray:
    """A JSON value (nested lists, a number, a data URL or a list of them) as an array."""
    if isinstance(value, str) or (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
        if t is None:
            return np.asarray(value)  # an unknown input: Bundle.run names it
        if isinstance(value, str):
            return _from_data_url(value, t)
        return _stack([_from_data_url(v, t) for v in value], name)
    try:
        a = np.asarray(value)
    except (ValueError, TypeError):
        a = None
    if a is None or a.dtype.kind not in "biuf":
        raise RequestError(
            400, "bad_request", f"input {name!r}: expected numbers in nested lists of equal lengths", name
        )
    if a.dtype.kind == "f" and t is not None and t.dtype.kind == "f" and a.dtype != t.dtype:
        a = a.astype(t.dtype)
    return a


def _stack(items: list[np.ndarray], name: str) -> np.ndarray:
    if any(i.shape != items[0].shape for i in items):
        raise bad_input(f"input {name!r}: the items have different shapes", name)
    return np.stack(items)


def parse_json(body: bytes, entry: Entry) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``{"inputs": {name: value}, "seed": .., "n": .., "iterations": ..}``."""
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RequestError(400, "bad_request", f"the body is not valid JSON ({err})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs", {}), dict):
        raise RequestError(
            400, "bad_request", 'the body must be a JSON object {"inputs": {"name": array, ...}, "seed": 0}'
        )
    unknown = sorted(set(doc) - {"inputs", *OPTIONS})
    if unknown:
        raise RequestError(
            400,
            "bad_request",
            f"unknown key(s) {', '.join(map(repr, unknown))}; the body has inputs, seed, n, iterations",
        )
    given = {k: from_json(v, entry.input(k), k) for k, v in doc.get("inputs", {}).items()}
    return given, doc


def single_input(entry: Entry, chosen: str | None) -> Tensor:
    """The input a bare ``.npy`` or image body is for (``?input=name`` picks one)."""
    if chosen is not None:
        t = entry.input(chosen)
        if t is None:
            raise bad_input(
                f"entry {entry.name!r}: unknown input {chosen!r}; it takes: {', '.join(t.name for t in entry.inputs)}",
                chosen,
            )
        return t
    if len(entry.data_inputs) != 1:
        names = ", ".join(t.name for t in entry.data_inputs) or "none"
        raise RequestError(
            415,
            "unsupported_media_type",
            f"entry {entry.name!r} takes several inputs ({names}): send JSON or multipart/form-data, "
            "or name the input of a bare body with ?input=NAME",
        )
    return entry.data_inputs[0]


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def parse_multipart(body: bytes, headers: Headers, entry: Entry) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Form fields named by input: files (PNG or .npy; repeated names stack a batch) or JSON text."""
    try:
        form = await MultiPartParser(headers, _once(body)).parse()
    except MultiPartException as err:
        raise RequestError(400, "bad_request", f"cannot read the multipart body ({err.message})") from None
    given: dict[str, np.ndarray] = {}
    options: dict[str, str] = {}
    try:
        for name in dict.fromkeys(form.keys()):
            values = form.getlist(name)
            if name in OPTIONS and all(isinstance(v, str) for v in values):
                options[name] = str(values[-1])
                continue
            t = entry.input(name)
            arrays = []
            for v in values:
                if isinstance(v, UploadFile):
                    data = await v.read()
                    if data.startswith(NPY_MAGIC):
                        arrays.append(from_npy(data, name))
                    elif t is None:
                        arrays.append(np.zeros(0))  # an unknown input: Bundle.run names it
                    else:
                        arrays.append(from_image(data, t))
                else:
                    try:
                        value = json.loads(v)
                    except json.JSONDecodeError:
                        raise RequestError(
                            400, "bad_request", f"input {name!r}: a text field must hold a JSON array", name
                        ) from None
                    arrays.append(from_json(value, t, name))
            given[name] = arrays[0] if len(arrays) == 1 else _stack(arrays, name)
    finally:
        await form.close()
    return given, options


# -- responses -------------------------------------------------------------------------------


def choose_type(accept: str | None) -> str:
    """The response type for an ``Accept`` header: JSON, PNG or .npy (406 otherwise)."""
    if not accept:
        return JSON
    best, best_q = None, 0.0
    for part in accept.split(","):
        media, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        match = {JSON: JSON, PNG: PNG, NPY: NPY, "image/*": PNG, "application/*": JSON, "*/*": JSON}.get(media.lower())
        if match is not None and q > best_q:
            best, best_q = match, q
    if best is None:
        raise RequestError(406, "not_acceptable", f"cannot answer with {accept!r}; ask for {JSON}, {PNG} or {NPY}")
    return best


def json_body(out: dict[str, np.ndarray]) -> bytes:
    """``{"outputs": {name: nested lists}}``; non-finite numbers become null."""
    lists = {}
    for k, v in out.items():
        if v.dtype.kind == "f" and not np.isfinite(v).all():
            lists[k] = np.where(np.isfinite(v), v, None).tolist()
        else:
            lists[k] = v.tolist()
    return json.dumps({"outputs": lists}, separators=(",", ":")).encode()


def pick_output(entry: Entry, out: dict[str, np.ndarray], chosen: str | None, want_image: bool) -> str:
    """The output a PNG or .npy answer holds: ``?output=name``, else the first image output."""
    if chosen is not None:
        if chosen not in out:
            raise RequestError(
                400, "bad_request", f"entry {entry.name!r} has no output {chosen!r}; it has: {', '.join(out)}"
            )
        return chosen
    if want_image:
        for t in entry.outputs:
            if t.name in out and t.image is not None and t.meaning != "latent":
                return t.name
        for t in entry.outputs:
            if t.name in out and t.image is not None:
                return t.name
        raise RequestError(
            406,
            "not_acceptable",
            f"entry {entry.name!r} has no image output (outputs: {', '.join(out)}); ask for {JSON} or {NPY}",
        )
    return next(iter(out))


def png_body(entry: Entry, name: str, array: np.ndarray, rows: int | None) -> bytes:
    """One image, or a grid of several (``rows`` rows), as PNG bytes."""
    t = entry.output(name)
    if t is None or t.image is None:
        raise RequestError(406, "not_acceptable", f"output {name!r} is not an image; ask for {JSON} or {NPY}")
    item = math.prod(t.image)
    if array.size % item:
        raise RequestError(406, "not_acceptable", f"output {name!r} of shape {list(array.shape)} is not an image")
    images = array.reshape(-1, *t.image)
    value_range = t.range if t.meaning == "image" or t.range is not None else None
    tiled = to_uint8(grid(images, rows), value_range)  # (C, H, W)
    pixels = tiled[0] if tiled.shape[0] == 1 else tiled.transpose(1, 2, 0)
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def npy_body(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()
