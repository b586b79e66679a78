"""``latentspec data show``: a PNG grid of a dataset's items with their factors written under
each, so a person can check what a dataset holds.

Example::

    >>> show("shapes", {"channels": 3}, 16, "grid.png")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from latentspec.components._kinds import DATASETS
from latentspec.data._base import ArrayInfo
from latentspec.errors import DataError, did_you_mean
from latentspec_runtime._atomic import atomic_path

TILE = 96  # minimum tile width in pixels; small images are scaled up by an integer factor
PAD = 4
JOINT_COLOURS = [(255, 80, 80), (255, 200, 60), (80, 220, 80), (80, 180, 255), (220, 110, 255)]


class ParamError(DataError, ValueError):
    """A ``--set`` dataset parameter that cannot be used (also a ValueError, as it always was)."""


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["channels=3", "factors.rotation=[0,1]", "identities=A,B"]`` -> a params dict.

    Values are JSON where they parse as JSON, comma-separated lists of such values, or else
    strings; dotted keys build nested mappings.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ParamError(f"--set {pair!r}: expected key=value")
        *path, last = key.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ParamError(f"--set {key!r}: {part!r} is already set to a value")
        node[last] = _parse_value(text)
    return out


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if "," in text:
        return [_parse_value(t.strip()) for t in text.split(",")]
    return text


def _dataset(name: str) -> Any:
    import latentspec.data.datasets  # noqa: F401  (registers the built-in datasets)

    if name not in DATASETS:
        raise DataError(
            f"unknown dataset {name!r}{did_you_mean(name, DATASETS.names())}; the datasets are: {', '.join(DATASETS.names())}"
        )
    return DATASETS[name]()


def check_params(name: str, ds: Any, params: dict) -> None:
    """Refuse unknown or ill-typed dataset parameters the way the spec's schema would."""
    import jsonschema

    known = {p.name: p for p in ds.params}
    for key in params:
        if key not in known:
            raise DataError(
                f"--set {key}: dataset {name} has no parameter {key!r}{did_you_mean(key, known)}"
                f"; it has: {', '.join(known) or 'none'}"
            )
    schema = {"type": "object", "properties": {k: p.json_schema() for k, p in known.items()}}
    missing = [k for k, p in known.items() if p.required and k not in params]
    if missing:
        raise DataError(f"dataset {name} needs --set {missing[0]}=VALUE ({known[missing[0]].doc})")
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(params))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path)
        raise DataError(f"--set {where}: {error.message}")


def _caption(name: str, info: ArrayInfo, value: np.ndarray) -> str:
    if info.names is not None:
        return f"{name}={info.names[int(value)]}"
    if np.issubdtype(value.dtype, np.integer):
        return f"{name}={int(value)}"
    return f"{name}={float(value):.2f}"


def _wrap(words: list[str], width: float, font: Any, draw: ImageDraw.ImageDraw) -> list[str]:
    lines: list[str] = []
    for w in words:
        if lines and draw.textlength(lines[-1] + " " + w, font=font) <= width:
            lines[-1] += " " + w
        else:
            lines.append(w)
    return lines


def _to_rgb(image: np.ndarray, scale: int) -> np.ndarray:
    a = np.asarray(image, dtype=np.float32)
    a = a[None] if a.ndim == 2 else a
    a = np.repeat(a, 3, axis=0) if a.shape[0] == 1 else a[:3]
    a = np.clip(a.transpose(1, 2, 0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return a.repeat(scale, 0).repeat(scale, 1)


def show(name: str, params: dict, n: int, out: str) -> None:
    """Write a PNG grid of the first ``n`` items of dataset ``name`` (built with ``params``) to
    ``out``: every image-kind array side by side per item, ``joints`` as coloured dots, and the
    scalar factors and labels as captions."""
    ds = _dataset(name)
    user = dict(params)
    if ds.procedural:  # render only the items shown (`size` is their count)
        user["size"] = n
    if any(p.name == "cache" for p in ds.params):
        user.setdefault("cache", False)
    check_params(name, ds, user)
    cfg = ds.resolve(user)
    infos = ds.arrays(cfg)
    data = ds.load(cfg)
    n = min(n, len(next(iter(data.values()))))
    images = [k for k, i in infos.items() if i.kind == "image"]
    scalars = [k for k, i in infos.items() if i.kind in ("factor", "label") and i.shape == ()]
    if not images:
        raise DataError(f"dataset {name!r} has no image arrays to show")
    font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    h, w = data[images[0]].shape[-2:]
    scale = max(1, math.ceil(TILE / w))
    tile_w = w * scale * len(images)
    header = [" | ".join(images)] if len(images) > 1 else []  # which image is which, left to right
    captions = [
        header + _wrap([_caption(k, infos[k], data[k][i]) for k in scalars], tile_w, font, probe) for i in range(n)
    ]
    line_h = 11
    tile_h = h * scale + line_h * max((len(c) for c in captions), default=0)
    cols = math.ceil(math.sqrt(n * tile_h / tile_w))
    rows = math.ceil(n / cols)
    sheet = Image.new("RGB", (cols * (tile_w + PAD) + PAD, rows * (tile_h + PAD) + PAD), (40, 40, 40))
    draw = ImageDraw.Draw(sheet)
    for i in range(n):
        x0 = PAD + (i % cols) * (tile_w + PAD)
        y0 = PAD + (i // cols) * (tile_h + PAD)
        strip = np.concatenate([_to_rgb(data[k][i], scale) for k in images], axis=1)
        sheet.paste(Image.fromarray(strip), (x0, y0))
        if "joints" in data and infos["joints"].kind == "joints":
            for j, (jx, jy) in enumerate(np.asarray(data["joints"][i]).reshape(-1, 2)):
                cx, cy = x0 + jx * scale, y0 + jy * scale
                colour = JOINT_COLOURS[0 if j == 0 else (j - 1) // 4 % len(JOINT_COLOURS)]
                draw.ellipse((cx - 1, cy - 1, cx + 1, cy + 1), fill=colour)
        for k, line in enumerate(captions[i]):
            draw.text((x0, y0 + h * scale + k * line_h), line, fill=(230, 230, 230), font=font)
    with atomic_path(out) as tmp:
        sheet.save(tmp, optimize=True)
