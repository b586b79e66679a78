"""Image grids as PNG (Pillow), for samples and reconstructions."""

from __future__ import annotations

import os
import tempfile

import numpy as np


def to_uint8(x: np.ndarray, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    lo, hi = value_range
    return (np.clip((x - lo) / max(hi - lo, 1e-12), 0, 1) * 255 + 0.5).astype(np.uint8)


def grid(images: np.ndarray, ncol: int | None = None, pad: int = 2, value_range=(0.0, 1.0)) -> np.ndarray:
    """(N, C, H, W) or (N, H, W) -> one (H', W', 3) uint8 image."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim == 2:  # flat vectors that form a square image
        side = round(x.shape[1] ** 0.5)
        x = x.reshape(len(x), 1, side, side)
    n, c, h, w = x.shape
    x = np.repeat(x, 3, axis=1) if c == 1 else x[:, :3]
    ncol = ncol or int(np.ceil(np.sqrt(n)))
    nrow = int(np.ceil(n / ncol))
    out = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, 3), 255, np.uint8)
    for i in range(n):
        r, cidx = divmod(i, ncol)
        out[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + cidx * (w + pad) : pad + cidx * (w + pad) + w] = (
            to_uint8(x[i], value_range).transpose(1, 2, 0)
        )
    return out


def save_png(path: str, image: np.ndarray) -> None:
    from PIL import Image

    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".png")
    os.close(fd)
    Image.fromarray(image).save(tmp)
    os.replace(tmp, path)
