"""``faces``: cartoon faces of named identities with shared pose, expression, gaze and light.

An identity fixes the head shape (width, height, chin), skin, hair style and colour, eye colour,
brows, nose and lips; the factors (yaw, roll, mouth, eyes, gaze_x, gaze_y, light) are shared, so
the ground truth of a paired-autoencoder swap is identity B rendered with A's factors
(``paired: true`` gives one image per identity for the same factors). The eight ``landmarks``
(eyes, pupils, nose tip, mouth corners and centre) depend on the factors only.

Example::

    >>> from latentspec.data.procedural.faces import render
    >>> item = render(identity="B", mouth=1.0, gaze_x=-0.5)
    >>> item["image"].shape, item["landmarks"].shape
    ((3, 64, 64), (8, 2))
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections.abc import Sequence
from typing import Any, ClassVar

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
    grid,
    over,
    render_one,
    sd_box_fast,
    sd_ellipse,
    sd_segment,
)


@dataclasses.dataclass(frozen=True)
class Identity:
    """What an identity fixes; lengths in face units (1 unit = image_size / 64 pixels)."""

    width: float  # half width of the head
    height: float  # half height of the head
    chin: float  # how much the jaw narrows towards the chin, 0..0.5
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    volume: float  # hair thickness around the head
    hairline: float  # y of the fringe's edge (the head spans -height..height)
    long: float  # how far below the head centre the hair falls (0 = short)
    eye: tuple[float, float, float]  # iris colour
    brow: float  # brow thickness
    nose: float  # nose length
    lips: tuple[float, float, float]
    lip: float  # lip thickness


TABLE = {
    "A": Identity(15.0, 21.0, 0.35, (0.96, 0.80, 0.68), (0.24, 0.14, 0.07), 1.5, -9.0, 0.0,
                  (0.25, 0.45, 0.80), 0.55, 6.5, (0.80, 0.38, 0.40), 0.8),
    "B": Identity(19.0, 18.5, 0.08, (0.62, 0.42, 0.28), (0.96, 0.80, 0.40), 4.0, -7.0, 15.0,
                  (0.35, 0.22, 0.10), 0.95, 4.5, (0.55, 0.22, 0.20), 1.25),
    "C": Identity(17.0, 20.0, 0.22, (0.90, 0.68, 0.52), (0.72, 0.22, 0.08), 2.5, -7.0, 6.0,
                  (0.30, 0.55, 0.30), 0.70, 5.5, (0.72, 0.30, 0.30), 1.0),
    "D": Identity(17.5, 21.5, 0.45, (0.42, 0.28, 0.20), (0.06, 0.05, 0.05), 0.6, -14.0, 0.0,
                  (0.20, 0.12, 0.06), 0.85, 6.0, (0.45, 0.20, 0.18), 1.1),
}  # fmt: skip
# Ranges for identities not in TABLE, drawn from the sha256 of the name.
_HASHED = dict(
    width=(15.0, 19.0), height=(18.5, 21.5), chin=(0.05, 0.45), volume=(0.5, 4.0), hairline=(-13.0, -5.0),
    long=(0.0, 15.0), brow=(0.5, 1.0), nose=(4.5, 6.5), lip=(0.8, 1.25),
)  # fmt: skip
HAIR = (
    (0.06, 0.05, 0.05),
    (0.24, 0.14, 0.07),
    (0.45, 0.30, 0.16),
    (0.72, 0.22, 0.08),
    (0.96, 0.80, 0.40),
    (0.75, 0.75, 0.72),
)
EYES = ((0.25, 0.45, 0.80), (0.35, 0.22, 0.10), (0.30, 0.55, 0.30), (0.45, 0.45, 0.50))
BACKGROUND = (0.16, 0.18, 0.24)
LANDMARKS = (
    "left_eye",
    "right_eye",
    "left_pupil",
    "right_pupil",
    "nose_tip",
    "mouth_left",
    "mouth_right",
    "mouth_centre",
)
SHARED = (
    Factor("yaw", -0.6, 0.6, default=0.0, doc="head turn, radians; > 0 turns towards the image's right"),
    Factor("roll", -0.3, 0.3, default=0.0, doc="in-plane head tilt, radians, clockwise on screen"),
    Factor("mouth", -1.0, 1.0, default=0.0, doc="mouth curvature: 1 = smile, -1 = frown"),
    Factor("eyes", 0.1, 1.0, default=0.8, doc="eye openness"),
    Factor("gaze_x", -1.0, 1.0, default=0.0, doc="pupil offset to the image's right"),
    Factor("gaze_y", -1.0, 1.0, default=0.0, doc="pupil offset downwards"),
    Factor("light", -1.0, 1.0, default=0.0, doc="light direction: -1 from the left, 1 from the right"),
)
EYE_X, EYE_Y, EYE_W, EYE_H = 6.6, -1.0, 3.3, 2.4
MOUTH_Y, MOUTH_W, MOUTH_BEND = 11.0, 5.5, 3.0
NOSE_Y = 5.5
CENTRE_Y = 34.0 / 64  # head centre, fraction of the image height


def identity(name: str) -> Identity:
    """The look of identity ``name``: from TABLE, else derived from the name's sha256."""
    if name in TABLE:
        return TABLE[name]
    u = iter(b / 255 for b in hashlib.sha256(name.encode()).digest())
    vals = {k: lo + (hi - lo) * next(u) for k, (lo, hi) in _HASHED.items()}
    tone = next(u)  # from light to dark skin
    skin = tuple(lt + (dk - lt) * tone for lt, dk in zip((0.98, 0.84, 0.72), (0.36, 0.24, 0.17)))
    hair = HAIR[int(next(u) * len(HAIR)) % len(HAIR)]
    eye = EYES[int(next(u) * len(EYES)) % len(EYES)]
    lips = (0.45 + 0.35 * next(u), 0.18 + 0.15 * next(u), 0.18 + 0.12 * next(u))
    return Identity(skin=skin, hair=hair, eye=eye, lips=lips, **vals)  # type: ignore[arg-type]


def check_identities(names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(names)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"identities must be a non-empty list of distinct names, got {list(names)}")
    for n in names:
        if not isinstance(n, str) or not re.fullmatch(r"[A-Za-z0-9_]+", n):
            raise ValueError(f"identity name {n!r}: use letters, digits and _ (it names arrays like image_{n})")
    return names


def _looks(names: Sequence[str], which: np.ndarray) -> dict[str, np.ndarray]:
    """Each item's identity fields: (N,) for lengths, (N, 3) for colours, float64."""
    table = [dataclasses.asdict(identity(n)) for n in names]
    return {k: np.asarray([t[k] for t in table], dtype=np.float64)[which] for k in table[0]}


@dataclasses.dataclass
class _Pose:
    """The factors turned into geometry in face units (y down, origin at the head centre),
    shared by every identity drawn with them."""

    size: int
    u: float  # pixels per face unit
    cos: np.ndarray  # of the roll, (N,)
    sin: np.ndarray
    shift: np.ndarray  # sideways shift of the features with yaw
    eye_x: tuple[np.ndarray, np.ndarray]  # left and right eye centres
    eye_w: tuple[np.ndarray, np.ndarray]  # their half widths (the far eye narrows)
    eye_h: np.ndarray  # half height of the eye opening
    pupil: tuple[np.ndarray, np.ndarray]  # pupil offset from the eye centre
    bend: np.ndarray  # mouth curvature
    light: np.ndarray
    landmarks: np.ndarray = dataclasses.field(init=False)  # (N, 8, 2) pixels

    def __post_init__(self) -> None:
        n = len(self.cos)
        mouth_y = np.full(n, MOUTH_Y)
        pts = [
            (self.eye_x[0], np.full(n, EYE_Y)),
            (self.eye_x[1], np.full(n, EYE_Y)),
            (self.eye_x[0] + self.pupil[0], EYE_Y + self.pupil[1]),
            (self.eye_x[1] + self.pupil[0], EYE_Y + self.pupil[1]),
            (1.35 * self.shift, np.full(n, NOSE_Y)),
            (self.shift - MOUTH_W, mouth_y - 0.5 * MOUTH_BEND * self.bend),
            (self.shift + MOUTH_W, mouth_y - 0.5 * MOUTH_BEND * self.bend),
            (self.shift, mouth_y + 0.5 * MOUTH_BEND * self.bend),
        ]
        self.landmarks = np.stack([np.stack(self.to_pixels(qx, qy), -1) for qx, qy in pts], 1)

    @property
    def centre(self) -> tuple[float, float]:
        return self.size / 2, CENTRE_Y * self.size

    def to_pixels(self, qx: np.ndarray, qy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Face units -> pixels: centre + u R(roll) q."""
        (cx, cy), c, s = self.centre, self.cos * self.u, self.sin * self.u
        return cx + c * qx - s * qy, cy + s * qx + c * qy

    def to_face(self, x: np.ndarray, y: np.ndarray, cx: Any, cy: Any) -> tuple[np.ndarray, np.ndarray]:
        """Pixel centres -> face units around (cx, cy) pixels, rotated by -roll."""
        dx, dy = x - cx, y - cy
        c, s = col(self.cos / self.u), col(self.sin / self.u)
        return dx * c + dy * s, dy * c - dx * s

    def window(self, canvas: Canvas, landmark: int, w: int) -> tuple[np.ndarray, np.ndarray, Any]:
        """A w×w window around a landmark: face-unit coordinates relative to it, and its key."""
        cx, cy = self.landmarks[:, landmark, 0], self.landmarks[:, landmark, 1]
        x, y, key = canvas.window(cx, cy, w)
        return (*self.to_face(x, y, col(cx), col(cy)), key)


def _pose(f: dict[str, np.ndarray], size: int) -> _Pose:
    c, s = cos_sin(f["roll"])
    cy, sy = cos_sin(f["yaw"])
    shift = 6.5 * sy  # the features turn with the head
    return _Pose(
        size=size,
        u=size / 64,
        cos=c,
        sin=s,
        shift=shift,
        eye_x=(-EYE_X * cy + shift, EYE_X * cy + shift),
        eye_w=(EYE_W * (1 - 0.45 * np.maximum(0.0, -sy)), EYE_W * (1 - 0.45 * np.maximum(0.0, sy))),
        eye_h=EYE_H * f["eyes"].astype(np.float64),
        pupil=(f["gaze_x"].astype(np.float64) * EYE_W * 0.45, f["gaze_y"].astype(np.float64) * 1.1),
        bend=f["mouth"].astype(np.float64),
        light=f["light"].astype(np.float64),
    )


def _cov(d: np.ndarray, u: float) -> np.ndarray:
    """Coverage of a signed distance in face units; ``d`` is a temporary and is overwritten."""
    if u != 1.0:
        d *= u
    np.subtract(np.float32(0.5), d, out=d)
    return np.clip(d, 0.0, 1.0, out=d)


def _rgb(r: float, g: float, b: float) -> np.ndarray:
    return np.asarray((r, g, b), np.float32).reshape(1, 3, 1, 1)


def render_batch(
    factors: dict[str, Any], image_size: int = 64, identities: Sequence[str] = ("A", "B"), paired: bool = False
) -> dict[str, np.ndarray]:
    """Render faces from factor arrays (N,) -> image (N, 3, S, S), mask (N, 1, S, S), landmarks
    (N, 8, 2) and the factors; with ``paired``, image_<name> and mask_<name> per identity."""
    names = check_identities(identities)
    f = complete(SHARED if paired else (Factor("identity", classes=names), *SHARED), factors)
    pose = _pose(f, int(image_size))
    out: dict[str, np.ndarray] = {}
    if paired:
        for i, name in enumerate(names):
            out[f"image_{name}"], out[f"mask_{name}"] = _draw(pose, _looks(names, np.full(len(pose.cos), i)))
    else:
        out["image"], out["mask"] = _draw(pose, _looks(names, f["identity"]))
    return {**out, "landmarks": pose.landmarks.astype(np.float32), **f}


def _draw(pose: _Pose, look: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    n, s, u = len(pose.cos), pose.size, pose.u
    w_eye, w_nose, w_mouth = math.ceil(15 * u) + 3, math.ceil(16 * u) + 3, math.ceil(18 * u) + 3
    canvas = Canvas(n, s, 3, max(w_eye, w_nose, w_mouth))
    x, y = grid(s)
    qx, qy = pose.to_face(x, y, *pose.centre)  # (N, 1, S, S)
    width, height, volume = look["width"], look["height"], look["volume"]

    # Hair behind the head: an ellipse, plus a curtain down to ``long`` when the hair is long.
    hx = qx - col(-0.35 * pose.shift)  # the back of the head shows on the far side
    d = sd_ellipse(hx, qy + col(0.4 * volume), col(width + volume), col(height + 0.6 * volume))
    curtain = sd_box_fast(hx, qy - col(look["long"] / 2), col(width + volume - 0.5), col(look["long"] / 2))
    curtain += col(np.where(look["long"] > 0, 0.0, 1e3))
    a_back = _cov(np.minimum(d, curtain, out=d), u)
    # Neck, in shadow.
    a_neck = _cov(sd_box_fast(qx, qy - col(height * 0.7 + 10.0), col(0.42 * width), 10.0), u)
    # Head: an ellipse whose jaw narrows towards the chin (its half width falls by ``chin`` at
    # the bottom), lit as an ellipsoid whose normal is (nx, ny, nz).
    t = np.maximum(qy, 0.0)
    t *= col(1 / height)
    np.minimum(t, 1.0, out=t)
    t *= t
    t *= col(-look["chin"])
    t += 1.0
    t *= col(width)
    iwe, ihe = 1.0 / t, col(1 / height)
    nx, ny = qx * iwe, qy * ihe
    k2 = nx * nx
    k2 += ny * ny
    k0 = np.sqrt(k2)
    gx, gy = nx * iwe, ny * ihe  # the implicit function's gradient
    gx *= gx
    gy *= gy
    gx += gy
    np.sqrt(gx, out=gx)
    gx += np.float32(1e-6)
    d = k0 - 1.0
    d *= k0
    d /= gx
    a_head = _cov(d, u)
    np.subtract(1.0, k2, out=k2)
    np.maximum(k2, 0.0, out=k2)
    nz = np.sqrt(k2, out=k2)
    lx = 0.8 * pose.light  # light direction (lx, -0.35, lz): from above, left or right
    lz = np.sqrt(1.0 - lx * lx - 0.35**2)
    lit = nx * col(0.55 * lx)
    lit -= ny * np.float32(0.55 * 0.35)
    lit += nz * col(0.55 * lz)
    np.maximum(lit, 0.0, out=lit)
    lit += np.float32(0.45)
    # Fringe: the head above a hairline that dips at the sides.
    sx = (qx - col(0.5 * pose.shift)) * col(1 / width)
    edge = (sx * 5.0 + 1.5) * sx + col(look["hairline"])
    edge -= qy
    a_fringe = a_head * _cov(np.negative(edge, out=edge), u)
    # Composite back to front as weights w_i = a_i * prod_{j > i} (1 - a_j); skin and hair
    # layers share their colours, so they are summed before the per-channel products.
    rest = 1.0 - a_fringe
    w_skin = a_head * rest * lit
    rest *= 1.0 - a_head
    w_skin += a_neck * rest * np.float32(0.75)
    rest *= 1.0 - a_neck
    w_hair = a_back * rest * np.float32(0.8) + a_fringe
    rest *= 1.0 - a_back
    image = canvas.inner
    for ch in range(3):
        out = image[:, ch : ch + 1]
        np.multiply(rest, np.float32(BACKGROUND[ch]), out=out)
        out += w_skin * col(look["skin"][:, ch])
        out += w_hair * col(look["hair"][:, ch])

    for side in (0, 1):
        _eye(canvas, pose, look, side, w_eye)
    _nose(canvas, pose, look, w_nose)
    _mouth(canvas, pose, look, w_mouth)
    image = canvas.image()
    np.subtract(1.0, rest, out=rest)  # coverage of head, hair and neck
    return np.clip(image, 0.0, 1.0, out=image), rest


def _eye(canvas: Canvas, pose: _Pose, look: dict[str, np.ndarray], side: int, w: int) -> None:
    lx, ly, key = pose.window(canvas, side, w)  # around the eye centre
    u, dst = pose.u, canvas.get(key)
    d_lids = sd_ellipse(lx, ly, col(pose.eye_w[side]), col(pose.eye_h))  # the opening between the lids
    opening = coverage(d_lids * u)
    over(dst, opening, _rgb(0.96, 0.95, 0.92))
    ix, iy = lx - col(pose.pupil[0]), ly - col(pose.pupil[1])
    r = np.sqrt(ix * ix + iy * iy)
    over(dst, np.minimum(opening, _cov(r - 1.9, u)), col(look["eye"]))
    over(dst, np.minimum(opening, _cov(r - 1.1, u)), _rgb(0.03, 0.03, 0.03))
    lash = _cov(np.abs(d_lids) - 0.45, u) * np.clip(0.5 - ly * u, 0.0, 1.0)  # upper lid only
    over(dst, lash, _rgb(0.12, 0.08, 0.07))
    # Brow: its inner end higher, lifted as the eyes open.
    sign, bw = (1.0 if side else -1.0), pose.eye_w[side]
    by = -2.6 - 1.6 * pose.eye_h / EYE_H
    rho, _ = sd_segment(lx, ly, col(-sign * 0.9 * bw), col(by), col(sign * 1.1 * bw), col(by + 0.5))
    over(dst, _cov(rho - col(look["brow"]), u), col(look["hair"] * 0.55))
    canvas.put(key, dst)


def _nose(canvas: Canvas, pose: _Pose, look: dict[str, np.ndarray], w: int) -> None:
    lx, ly, key = pose.window(canvas, 4, w)  # around the tip
    u, dst = pose.u, canvas.get(key)
    top_x = col(0.8 - 0.45 * pose.shift)  # the bridge starts between the eyes
    rho, _ = sd_segment(lx, ly, top_x, col(-look["nose"]), 0.9, -0.6)
    over(dst, _cov(rho - 0.45, u) * 0.35, col(look["skin"] * 0.55))
    rho, _ = sd_segment(lx, ly, -1.6, 0.3, 1.6, 0.3)
    over(dst, _cov(rho - 0.55, u) * 0.5, col(look["skin"] * 0.5))
    canvas.put(key, dst)


def _mouth(canvas: Canvas, pose: _Pose, look: dict[str, np.ndarray], w: int) -> None:
    lx, ly, key = pose.window(canvas, 7, w)  # around the middle of the mouth
    k = col(MOUTH_BEND * pose.bend)
    ly = ly + k * 0.5  # relative to the mouth's rest centre
    t = lx * (1 / MOUTH_W)
    yc = k * (0.5 - t * t)  # the curve: corners up when smiling
    slope = k * (-2.0 / MOUTH_W) * t
    along = np.abs(ly - yc) / np.sqrt(1.0 + slope * slope)  # distance to the curve, to first order
    ex, ey = np.abs(lx) - MOUTH_W, ly + k * 0.5
    d = np.where(ex <= 0.0, along, np.sqrt(ex * ex + ey * ey))  # beyond the corners: to the corner
    u, dst = pose.u, canvas.get(key)
    over(dst, _cov(d - col(look["lip"]), u), col(look["lips"]))
    over(dst, _cov(d - 0.3, u) * 0.8, _rgb(0.25, 0.07, 0.07))
    canvas.put(key, dst)


def render(**kwargs: Any) -> dict[str, np.ndarray]:
    """One face from explicit factors (``identity`` by name or index into ``identities``) and
    options ``image_size``, ``identities``, ``paired``; the same arrays as one item of ``load``.
    A name outside the default identities renders alone (``identities=[name]``)."""
    who = kwargs.get("identity")
    if "identities" not in kwargs and isinstance(who, str) and who not in ("A", "B"):
        kwargs["identities"] = (who,)
    return render_one(render_batch, ("image_size", "identities", "paired"), kwargs)


def eye_boxes(landmarks: Sequence[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """(N, 1, H, W) boolean mask of the squares around both eye centres (landmarks 0 and 1) of
    every landmark set (N, 8, 2) in ``landmarks``; half side round(6 * W / 64) pixels."""
    n, _, h, w = shape
    half = max(1, round(6 * w / 64))
    ys, xs = np.arange(h).reshape(1, h, 1), np.arange(w).reshape(1, 1, w)
    mask = np.zeros((n, h, w), dtype=bool)
    for marks in landmarks:
        for eye in (0, 1):
            cx = np.round(np.asarray(marks[:, eye, 0], np.float64)).astype(np.int64).reshape(n, 1, 1)
            cy = np.round(np.asarray(marks[:, eye, 1], np.float64)).astype(np.int64).reshape(n, 1, 1)
            mask |= (np.abs(xs - cx) <= half) & (np.abs(ys - cy) <= half)
    return mask[:, None]


@DATASETS.register("faces")
class Faces(ProceduralDataset):
    """Procedural faces of named identities with shared pose, expression, gaze and lighting."""

    description = "cartoon faces: identities with shared yaw, roll, mouth, eyes, gaze and light factors"
    params = (
        *COMMON_PARAMS,
        Param("image_size", "int", 64, "image height and width in pixels", minimum=16),
        Param("identities", "strs", ["A", "B"], "identity names (A-D are designed; others derive from the name)"),
        Param("paired", "bool", False, "one image per identity with the same factors (image_<name>, mask_<name>)"),
    )
    render_batch = staticmethod(render_batch)
    render = staticmethod(render)

    def factor_defs(self, cfg: dict) -> tuple[Factor, ...]:
        names = check_identities(cfg["identities"])
        return SHARED if cfg["paired"] else (Factor("identity", classes=names, doc="who is drawn"), *SHARED)

    def render_opts(self, cfg: dict) -> dict[str, Any]:
        return {
            "image_size": int(cfg["image_size"]),
            "identities": tuple(cfg["identities"]),
            "paired": bool(cfg["paired"]),
        }

    #: The factors that move the eyes mark the eye region (boxes around both eye centres).
    regions: ClassVar[dict[str, str]] = {"gaze_x": "eyes", "gaze_y": "eyes", "eyes": "eyes"}

    def region(self, cfg: dict, factor: str, rendered: Sequence[dict[str, np.ndarray]]) -> np.ndarray | None:
        """Squares of side 2 * round(6 * image_size / 64) + 1 pixels around both eye centres
        (landmarks 0 and 1) of every render, for a factor of ``regions``; None otherwise."""
        if factor not in self.regions:
            return None
        return eye_boxes([r["landmarks"] for r in rendered], rendered[0]["image"].shape)

    def rendered_arrays(self, cfg: dict) -> dict[str, ArrayInfo]:
        s = int(cfg["image_size"])
        names = check_identities(cfg["identities"])
        suffixes = [f"_{n}" for n in names] if cfg["paired"] else [""]
        out = {}
        for x in suffixes:
            out[f"image{x}"] = ArrayInfo(
                (3, s, s), "float32", "image", (0.0, 1.0), doc=f"RGB face{x.replace('_', ' of ')}"
            )
            out[f"mask{x}"] = ArrayInfo((1, s, s), "float32", "mask", (0.0, 1.0), doc="head, hair and neck coverage")
        out["landmarks"] = ArrayInfo(
            (len(LANDMARKS), 2), "float32", "joints", (0.0, float(s)), names=LANDMARKS, doc="(x, y) pixels"
        )
        return out
