"""Image grids as PNG (Pillow), for samples and reconstructions."""

from __future__ import annotations

import numpy as np

from latentspec_runtime._atomic import atomic_path


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

    with atomic_path(path) as tmp:
        # zlib level 1: on grids of digits and faces about twice as fast as Pillow's default 6,
        # and no larger (the per-epoch pictures are part of the training loop's cost)
        Image.fromarray(image).save(tmp, format="PNG", compress_level=1)


def labelled_grid(blocks: list[tuple[str, np.ndarray]], ncol: int, pad: int = 2, value_range=(0.0, 1.0)) -> np.ndarray:
    """Blocks of images, each laid out in rows of ``ncol`` and named in a left gutter (Pillow's
    default font) beside its first row: e.g. ``[("input", x), ("reconstruction", x_hat)]``."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    gutter = 2 * pad + max((int(probe.textlength(label, font=font)) for label, _ in blocks), default=0)
    parts = [grid(images, ncol=ncol, pad=pad, value_range=value_range) for _, images in blocks]
    width = max(p.shape[1] for p in parts) + gutter
    out = np.full((sum(p.shape[0] - pad for p in parts) + pad, width, 3), 255, np.uint8)
    y, tops = 0, []
    for p in parts:
        out[y : y + p.shape[0], gutter : gutter + p.shape[1]] = p
        tops.append(y)
        y += p.shape[0] - pad
    sheet = Image.fromarray(out)
    draw = ImageDraw.Draw(sheet)
    for (label, images), top, p in zip(blocks, tops, parts):
        tile_h = (p.shape[0] - pad) // max(1, -(-len(images) // ncol)) - pad  # one row of tiles
        _, upper, _, lower = draw.textbbox((0, 0), label, font=font)
        y_text = top + pad + max(0, (tile_h - (lower - upper)) // 2) - upper
        draw.text((pad, y_text), label, fill=(0, 0, 0), font=font)
    return np.asarray(sheet)
