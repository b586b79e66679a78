"""``shapes``: anti-aliased sprites with class, scale, rotation, position and hue factors.

Example::

    >>> from latentspec.data.procedural.shapes import render
    >>> item = render(**{"class": "heart"}, rotation=0.5, image_size=32, channels=3)
    >>> item["image"].shape, item["mask"].shape
    ((3, 32, 32), (1, 32, 32))
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from latentspec.components._kinds import DATASETS
from latentspec.components._registry import Param
from latentspec.data._base import ArrayInfo
from latentspec.data.procedural._common import (
    COMMON_PARAMS,
    Factor,
    ProceduralDataset,
    col,
    complete,
    cos_sin,
    coverage,
    grid,
    hsv_to_rgb,
    render_one,
    sd_box,
    sd_ellipse,
)

CLASSES = ("square", "ellipse", "triangle", "heart")
FACTORS = (
    Factor("class", classes=CLASSES, doc="sprite shape"),
    Factor("scale", 0.5, 1.0, doc="size; 1 = the largest sprite (about 40% of the image)"),
    Factor("rotation", 0.0, 2 * math.pi, default=0.0, doc="in-plane rotation, radians, clockwise on screen"),
    Factor("posx", 0.25, 0.75, doc="centre x as a fraction of the image width"),
    Factor("posy", 0.25, 0.75, doc="centre y as a fraction of the image height"),
    Factor("hue", 0.0, 1.0, default=0.0, doc="colour hue (HSV, saturation 0.85); visible only with channels=3"),
)
HALF = 0.22  # a sprite's half-size at scale 1, as a fraction of the image size
SATURATION = 0.85


def _sq(a: np.ndarray) -> np.ndarray:
    return a * a


def _sd_triangle(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # Equilateral, apex up on screen, centroid at 0 (after Inigo Quilez's sdEquilateralTriangle).
    r, k = np.float32(1.05), np.float32(math.sqrt(3.0))
    px, py = np.abs(x) - r, -y + r / k
    fold = px + k * py > 0
    px, py = np.where(fold, (px - k * py) * 0.5, px), np.where(fold, (-k * px - py) * 0.5, py)
    px = px - np.clip(px, -2 * r, 0.0)
    return -np.sqrt(px * px + py * py) * np.sign(py)


def _sd_heart(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # Inigo Quilez's exact sdHeart (tip at 0, lobes up to y=1.1), scaled to half-height ~1.
    k = np.float32(0.55)
    px, py = np.abs(x) * k, -y * k + k
    t = np.maximum(px + py, 0.0) * 0.5
    lobe = np.sqrt(_sq(px - 0.25) + _sq(py - 0.75)) - np.float32(math.sqrt(2.0) / 4)
    tip = np.sqrt(np.minimum(px * px + _sq(py - 1.0), _sq(px - t) + _sq(py - t))) * np.sign(px - py)
    return np.where(px + py > 1.0, lobe, tip) / k


_SDF = {
    "square": lambda x, y: sd_box(x, y, 0.8, 0.8),
    "ellipse": lambda x, y: sd_ellipse(x, y, np.float32(1.05), np.float32(0.6)),
    "triangle": _sd_triangle,
    "heart": _sd_heart,
}


def render_batch(factors: dict[str, Any], image_size: int = 32, channels: int = 1) -> dict[str, np.ndarray]:
    """Render sprites from factor arrays (N,) -> image (N, C, S, S), mask (N, 1, S, S) and the
    factors as stored by ``load`` (class int64, the rest float32)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    f = complete(FACTORS, factors)
    s = int(image_size)
    half = f["scale"].astype(np.float64) * (HALF * s)  # pixels per sprite unit
    c, sn = cos_sin(f["rotation"])
    x, y = grid(s)
    dx = x - col(f["posx"].astype(np.float64) * s)  # (N, 1, 1, S)
    dy = y - col(f["posy"].astype(np.float64) * s)  # (N, 1, S, 1)
    inv = col(1.0 / half)
    # Sprite frame: rotate by -rotation, one unit = ``half`` pixels.
    qx = (dx * col(c) + dy * col(sn)) * inv  # (N, 1, S, S)
    qy = (dy * col(c) - dx * col(sn)) * inv
    d = np.empty_like(qx)
    for k, name in enumerate(CLASSES):
        sel = f["class"] == k
        if sel.any():
            d[sel] = _SDF[name](qx[sel], qy[sel])
    mask = coverage(d * col(half))
    rgb = hsv_to_rgb(f["hue"], SATURATION, 1.0) if channels == 3 else np.ones((len(half), 1))
    return {"image": mask * col(rgb), "mask": mask, **f}


def render(**kwargs: Any) -> dict[str, np.ndarray]:
    """One sprite from explicit factors (``class`` by name or index) and options ``image_size``,
    ``channels``; the same arrays as one item of ``load``."""
    return render_one(render_batch, ("image_size", "channels"), kwargs)


@DATASETS.register("shapes")
class Shapes(ProceduralDataset):
    """Procedural sprites (square, ellipse, triangle, heart) with ground-truth factors."""

    description = "anti-aliased sprites on black: class, scale, rotation, position and hue factors"
    params = (
        *COMMON_PARAMS,
        Param("image_size", "int", 32, "image height and width in pixels", minimum=8),
        Param("channels", "int", 1, "1 = white sprites (grayscale), 3 = coloured by hue", choices=(1, 3)),
    )
    render_batch = staticmethod(render_batch)
    render = staticmethod(render)

    def factor_defs(self, cfg: dict) -> tuple[Factor, ...]:
        return FACTORS

    def render_opts(self, cfg: dict) -> dict[str, Any]:
        return {"image_size": int(cfg["image_size"]), "channels": int(cfg["channels"])}

    def rendered_arrays(self, cfg: dict) -> dict[str, ArrayInfo]:
        s, c = int(cfg["image_size"]), int(cfg["channels"])
        return {
            "image": ArrayInfo((c, s, s), "float32", "image", (0.0, 1.0), doc="mask × colour on black"),
            "mask": ArrayInfo((1, s, s), "float32", "mask", (0.0, 1.0), doc="anti-aliased sprite alpha"),
        }
