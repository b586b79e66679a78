"""``hands``: a 2-D articulated hand rendered as a depth-like image (nearer = brighter).

The palm faces the camera. Each finger has an in-plane abduction angle and flexion angles that
bend it out of the plane, towards the camera: a flexed finger is foreshortened and brighter. The
labels are the 21 joint positions (wrist; thumb CMC, MCP, IP, tip; MCP, PIP, DIP, tip of each
finger) in pixels, x right and y down, pixel (i, j) covering [j, j+1) × [i, i+1).

Example::

    >>> from latentspec.data.procedural.hands import render
    >>> item = render(index_mcp=1.0, rotation=0.3)
    >>> item["image"].shape, item["joints"].shape, item["joints_flat"].shape
    ((1, 64, 64), (21, 2), (42,))
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
    Canvas,
    Factor,
    ProceduralDataset,
    col,
    complete,
    cos_sin,
    coverage,
    render_one,
    sd_box,
    sd_segment,
)

# Hand model in "units" (0.94 px at 64×64 and scale 1), y up, wrist near the origin.
# finger: base (x, y), rest direction (degrees from +x), segment lengths, radius,
#         abduction limits, flexion joint names and limits (radians).
FINGERS = (
    ("thumb", (-6.0, 6.0), 128.0, (7.0, 5.5, 4.5), 2.9, (-0.35, 0.35), (("mcp", 0.8), ("ip", 1.0))),
    ("index", (-6.2, 19.5), 97.0, (8.0, 5.0, 4.0), 2.45, (-0.2, 0.2), (("mcp", 1.0), ("pip", 1.2), ("dip", 0.8))),
    ("middle", (-2.0, 20.5), 90.0, (9.0, 5.5, 4.0), 2.55, (-0.15, 0.15), (("mcp", 1.0), ("pip", 1.2), ("dip", 0.8))),
    ("ring", (2.2, 19.8), 83.0, (8.5, 5.2, 4.0), 2.45, (-0.15, 0.2), (("mcp", 1.0), ("pip", 1.2), ("dip", 0.8))),
    ("pinky", (6.2, 17.8), 75.0, (6.5, 4.2, 3.5), 2.15, (-0.15, 0.3), (("mcp", 1.0), ("pip", 1.2), ("dip", 0.8))),
)
WRIST = (0.0, 3.0)
PALM = ((0.0, 11.0), (8.2, 8.8), 3.5)  # centre, half extents, corner radius
FOREARM = ((0.0, 3.0), (0.0, -5.0), 6.0)  # a wrist stub: from, to, radius
CENTRE = (-3.8, 15.5)  # the point that lands at the image centre (before translation)
UNIT = 0.94 / 64  # pixels per unit, per pixel of image size, at scale 1
DEPTH = 0.027  # brightness per unit of height above the palm
PALM_LEVEL, FOREARM_LEVEL = 0.45, 0.36


def _angle_factors() -> tuple[Factor, ...]:
    out = []
    for name, _, _, _, _, (lo, hi), flex in FINGERS:
        out.append(Factor(f"{name}_abd", lo, hi, default=0.0, doc=f"{name} abduction (in-plane spread), radians"))
        for j, top in flex:
            out.append(
                Factor(f"{name}_{j}", 0.0, top, default=0.0, doc=f"{name} {j.upper()} flexion towards the camera")
            )
    return tuple(out)


ANGLES = _angle_factors()
ANGLE_NAMES = tuple(f.name for f in ANGLES)
FACTORS = (
    *ANGLES,
    Factor("rotation", -0.8, 0.8, default=0.0, doc="in-plane rotation of the hand, radians, clockwise on screen"),
    Factor("scale", 0.8, 1.15, default=1.0, doc="size of the hand"),
    Factor("posx", -0.08, 0.08, default=0.0, doc="horizontal shift, fraction of the image width"),
    Factor("posy", -0.08, 0.08, default=0.0, doc="vertical shift, fraction of the image height"),
)
JOINT_NAMES = ("wrist",) + tuple(
    f"{name}_{j}"
    for name, *_ in FINGERS
    for j in (("cmc", "mcp", "ip", "tip") if name == "thumb" else ("mcp", "pip", "dip", "tip"))
)


def _skeleton(f: dict[str, np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Joint positions in units (N, 2) and heights above the palm (N,), in JOINT_NAMES order."""
    n = len(f["scale"])
    xy = [np.tile(np.asarray(WRIST, np.float64), (n, 1))]
    h = [np.zeros(n)]
    for name, base, rest, lengths, _, _, flex in FINGERS:
        c, s = cos_sin(math.radians(rest) + f[f"{name}_abd"].astype(np.float64))
        p, z, phi = np.tile(np.asarray(base, np.float64), (n, 1)), np.zeros(n), np.zeros(n)
        xy.append(p)
        h.append(z)
        bends = [np.zeros(n)] * (3 - len(flex)) + [f[f"{name}_{j}"].astype(np.float64) for j, _ in flex]
        for length, bend in zip(lengths, bends):
            phi = phi + bend
            cp, sp = cos_sin(phi)
            p = p + (length * cp)[:, None] * np.stack([c, s], 1)
            z = z + length * sp
            xy.append(p)
            h.append(z)
    return xy, h


def render_batch(factors: dict[str, Any], image_size: int = 64) -> dict[str, np.ndarray]:
    """Render hands from factor arrays (N,), or ``angles`` (N, 19) in ANGLE_NAMES order plus
    the global factors -> image (N, 1, S, S), joints (N, 21, 2), joints_flat (N, 42), angles."""
    factors = dict(factors)
    if "angles" in factors:
        stacked = np.asarray(factors.pop("angles"), dtype=np.float32).reshape(-1, len(ANGLE_NAMES))
        factors.update({name: stacked[:, i] for i, name in enumerate(ANGLE_NAMES)})
    f = complete(FACTORS, factors)
    n, s = len(f["scale"]), int(image_size)
    k = f["scale"].astype(np.float64) * (UNIT * s)  # pixels per unit, (N,)
    cr, sr = cos_sin(f["rotation"])
    ox = s / 2 + f["posx"].astype(np.float64) * s
    oy = s / 2 + f["posy"].astype(np.float64) * s

    def to_px(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vx, vy = p[..., 0] - CENTRE[0], CENTRE[1] - p[..., 1]  # y flips: units up, pixels down
        return ox + k * (cr * vx - sr * vy), oy + k * (sr * vx + cr * vy)

    xy, heights = _skeleton(f)
    joints = np.stack([np.stack(to_px(p), -1) for p in xy], 1)  # (N, 21, 2)

    # Capsules (a, b, brightness at a and at b, radius in units): the forearm stub, then the
    # fingers' segments, each radius tapering towards the tip.
    fore = [np.stack(to_px(np.tile(np.asarray(q, np.float64), (n, 1))), -1) for q in FOREARM[:2]]
    level = np.full(n, FOREARM_LEVEL)
    capsules = [(fore[0], fore[1], level, level, FOREARM[2])]
    for i, (_, _, _, _, radius, _, _) in enumerate(FINGERS):
        for j in range(1 + 4 * i, 4 + 4 * i):
            r = radius * (1.0 - 0.07 * ((j - 1) % 4))
            capsules.append(
                (
                    joints[:, j],
                    joints[:, j + 1],
                    PALM_LEVEL + DEPTH * heights[j],
                    PALM_LEVEL + DEPTH * heights[j + 1],
                    r,
                )
            )
    sizes = [math.ceil(float(np.max(np.abs(b - a).max(1) + 2 * r * k))) + 3 for a, b, _, _, r in capsules]
    (pcx, pcy), (phx, phy), prad = PALM
    palm_w = math.ceil(float(np.max(2 * math.hypot(phx, phy) * k))) + 3
    canvas = Canvas(n, s, 1, max(*sizes, palm_w))

    # Palm: a rounded box in the hand's frame, thicker towards its middle.
    cx, cy = to_px(np.tile(np.asarray((pcx, pcy), np.float64), (n, 1)))
    x, y, idx = canvas.window(cx, cy, palm_w)
    dx, dy = x - col(cx), y - col(cy)
    qx, qy = dx * col(cr) + dy * col(sr), dy * col(cr) - dx * col(sr)
    d = sd_box(qx, qy, col((phx - prad) * k), col((phy - prad) * k))
    d -= col(prad * k)  # pixels
    bulge = np.sqrt(np.clip(d * col(-1.0 / (4.0 * k)), 0.0, 1.0))  # full thickness ~4 units in
    bulge *= np.float32(2.5 * DEPTH)
    bulge += np.float32(PALM_LEVEL)
    canvas.put(idx, np.maximum(canvas.get(idx), coverage(d) * bulge))
    for capsule, w in zip(capsules, sizes):
        _capsule(canvas, *capsule, k, w)

    stacked = np.stack([f[a] for a in ANGLE_NAMES], 1)
    flat = (joints / s * 2.0 - 1.0).reshape(n, -1)
    glob = {g: f[g] for g in ("rotation", "scale", "posx", "posy")}
    image = np.minimum(canvas.image(), 1.0)
    return {
        "image": image,
        "joints": joints.astype(np.float32),
        "joints_flat": flat.astype(np.float32),
        "angles": stacked,
        **glob,
    }


def _capsule(
    canvas: Canvas, a: np.ndarray, b: np.ndarray, ha: np.ndarray, hb: np.ndarray, r_units: float, k: np.ndarray, w: int
) -> None:
    """Draw the capsule a-b (pixels, (N, 2)) of radius ``r_units`` into a w×w window: brightness
    ha..hb along its axis plus a round cross-section. Nearer is brighter, so compositing with
    max is a z-buffer."""
    x, y, idx = canvas.window((a[:, 0] + b[:, 0]) / 2, (a[:, 1] + b[:, 1]) / 2, w)
    r = r_units * k  # (N,) pixels
    rho, t = sd_segment(x, y, col(a[:, 0]), col(a[:, 1]), col(b[:, 0]), col(b[:, 1]))
    bulge = rho * col(1.0 / r)
    bulge *= bulge
    np.subtract(1.0, bulge, out=bulge)
    np.maximum(bulge, 0.0, out=bulge)
    np.sqrt(bulge, out=bulge)
    bulge *= np.float32(DEPTH * r_units)
    t *= col(hb - ha)
    t += col(ha)
    t += bulge
    rho -= col(r)
    value = coverage(rho)
    value *= t
    canvas.put(idx, np.maximum(canvas.get(idx), value))


def render(**kwargs: Any) -> dict[str, np.ndarray]:
    """One hand from explicit factors (angle names or ``angles``, rotation, scale, posx, posy)
    and ``image_size``; the same arrays as one item of ``load``."""
    return render_one(render_batch, ("image_size",), kwargs)


@DATASETS.register("hands")
class Hands(ProceduralDataset):
    """Procedural depth-like hand images with joint angles and 2-D joint positions."""

    description = "a 2-D articulated hand (palm, five fingers) as a depth-like image, with 21 joint positions"
    params = (*COMMON_PARAMS, Param("image_size", "int", 64, "image height and width in pixels", minimum=16))
    render_batch = staticmethod(render_batch)
    render = staticmethod(render)

    def factor_defs(self, cfg: dict) -> tuple[Factor, ...]:
        return FACTORS

    def rendered_arrays(self, cfg: dict) -> dict[str, ArrayInfo]:
        s, j = int(cfg["image_size"]), len(JOINT_NAMES)
        return {
            "image": ArrayInfo(
                (1, s, s), "float32", "image", (0.0, 1.0), doc="depth-like: nearer is brighter, 0 = background"
            ),
            "joints": ArrayInfo(
                (j, 2), "float32", "joints", (0.0, float(s)), names=JOINT_NAMES, doc="(x, y) in pixels"
            ),
            "joints_flat": ArrayInfo(
                (2 * j,), "float32", "joints", (-1.0, 1.0), doc="x0, y0, x1, ... scaled to [-1, 1]"
            ),
        }

    def factor_arrays(self, cfg: dict) -> dict[str, ArrayInfo]:
        infos = super().factor_arrays(cfg)
        ranges = [infos.pop(a).range for a in ANGLE_NAMES]
        lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)  # type: ignore[index]
        angles = ArrayInfo(
            (len(ANGLE_NAMES),), "float32", "factor", (lo, hi), names=ANGLE_NAMES, doc="joint angles, radians"
        )
        return {"angles": angles, **infos}
