"""Files in and out: images as float32 (C, H, W), ``.npy`` arrays, folders as batches, grids.

Pillow is optional (the ``images`` extra) and imported only when an image is read or written.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import atomic_path
from ._manifest import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
ARRAY_SUFFIXES = (".npy",)
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(
            "reading or writing images needs Pillow: pip install 'latentspec-runtime[images]' (or use .npy files)"
        ) from None
    return Image


def read_image(path: Path, channels: int | None = None) -> np.ndarray:
    """An image file as float32 (C, H, W) in [0, 1], converted to ``channels`` (1, 3 or 4)."""
    if channels is not None and channels not in _MODES:
        raise InputError(f"{path}: the entry takes {channels} channels, and images have 1, 3 or 4; give a .npy file")
    image_module = _pillow()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", image_module.DecompressionBombWarning)
            img = image_module.open(path)
    except (image_module.DecompressionBombError, image_module.DecompressionBombWarning):
        raise InputError(
            f"{path}: more pixels than Pillow's decompression-bomb limit ({image_module.MAX_IMAGE_PIXELS}); refused"
        ) from None
    except (OSError, ValueError, SyntaxError) as err:
        raise InputError(f"{path}: cannot read it as an image ({err})") from None
    try:
        with img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grayscale
                gray = np.asarray(img, dtype=np.float32) / 65535.0  # (H, W)
                array = np.repeat(gray[None], channels or 1, axis=0)
                if channels == 4:
                    array[3] = 1.0
                return array
            if channels is None:
                mode = {"1": "L", "L": "L", "LA": "L", "RGBA": "RGBA"}.get(img.mode, "RGB")
            else:
                mode = _MODES[channels]
            array = np.asarray(img.convert(mode), dtype=np.float32) / 255.0
    except (OSError, ValueError, SyntaxError) as err:  # truncated or corrupt pixel data
        raise InputError(f"{path}: cannot read it as an image ({err})") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)  # (C, H, W)


def read_array(path: Path) -> np.ndarray:
    """A ``.npy`` file's array (no pickles)."""
    try:
        with open(path, "rb") as f:  # our handle: numpy leaks its own when a zip is corrupt
            array = np.load(f, allow_pickle=False)
            if not isinstance(array, np.ndarray):  # an .npz archive under a .npy name
                array.close()
                raise InputError(f"{path}: an .npz archive, not a .npy array")
    except InputError:
        raise
    except Exception as err:  # numpy's format errors, EOFError, zipfile errors: a bad file
        raise InputError(f"{path}: cannot read it as a .npy array ({npy_problem(err)})") from None
    if array.dtype.kind not in "biuf":
        raise InputError(f"{path}: dtype {array.dtype} is not numeric; only numeric arrays are read")
    return array


def npy_problem(err: BaseException) -> str:
    """Why NumPy could not read a file, without numpy's advice to enable pickle."""
    text = str(err)
    if isinstance(err, EOFError) or not text:
        return "the file is empty or cut short"
    if "pickle" in text or "Object arrays" in text:
        return "it holds Python objects or is not a NumPy file; pickles are never loaded"
    return text.splitlines()[0][:200]


def read_file(
    path: Path,
    item: Sequence[int | str] | None = None,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """A ``.npy`` array as stored, or an image as float32 shaped as one ``item``.

    An image becomes (C, H, W) with the item's channel count, its [0, 1] values mapped to
    ``value_range``, and is flattened when the item is a vector of the same size.
    """
    suffix = path.suffix.lower()
    if suffix in ARRAY_SUFFIXES:
        return read_array(path)
    if suffix in IMAGE_SUFFIXES:
        item = tuple(item) if item is not None else None
        channels = item[0] if item and len(item) == 3 and isinstance(item[0], int) else None
        image = read_image(path, channels)
        if value_range is not None and value_range != (0.0, 1.0):
            lo, hi = value_range
            image = (lo + (hi - lo) * image).astype(np.float32)
        if item and all(isinstance(d, int) for d in item) and image.shape != item:
            if image.size == math.prod(item):
                image = image.reshape(item)
        return image
    raise InputError(
        f"{path}: unknown file type {suffix or '(none)'}; give .npy or an image ({', '.join(IMAGE_SUFFIXES)})"
    )


def expand(paths: Sequence[str | Path]) -> list[Path]:
    """The files named: a folder stands for its .npy and image files, sorted by name."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in (*ARRAY_SUFFIXES, *IMAGE_SUFFIXES))
            if not found:
                raise InputError(f"{p}: the folder has no .npy or image files")
            files += found
        elif p.exists():
            files.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    return files


def read_inputs(
    paths: Sequence[str | Path],
    item: Sequence[int | str] | None = None,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Read one input from files: one file is used as stored; a folder or several make a batch.

    ``item`` is the shape of one item (the entry's shape without "batch"): arrays of its rank
    are stacked, arrays one rank higher (batches already) concatenated. Images: see read_file.
    """
    files = expand(paths)
    if len(files) == 1 and not Path(paths[0]).is_dir():
        return read_file(files[0], item, value_range)
    arrays = [read_file(f, item, value_range) for f in files]
    items = [a[None] if item is None or a.ndim == len(item) else a for a in arrays]
    for f, a in zip(files, items):
        if a.shape[1:] != items[0].shape[1:]:
            raise InputError(
                f"{f}: an item of shape {list(a.shape[1:])}, but {files[0]} has "
                f"{list(items[0].shape[1:])}; a batch needs items of one shape"
            )
    return np.concatenate(items)


def is_image(array: np.ndarray) -> bool:
    """Whether ``array`` reads as images: (C, H, W), (N, C, H, W) or (R, S, C, H, W), C in 1, 3, 4.

    (A 2-D array is more likely a batch of vectors than one grayscale image.)
    """
    return 3 <= array.ndim <= 5 and array.shape[-3] in _MODES


def grid(images: np.ndarray, rows: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile images into one (C, H', W'): (N, C, H, W) in a near-square grid (or ``rows`` rows),
    (R, S, C, H, W) as R rows of S; a single (C, H, W) or (H, W) image is returned as is."""
    a = images
    if a.ndim == 2:
        a = a[None]
    if a.ndim == 3:
        return a
    if a.ndim == 4:
        n = a.shape[0]
        if n == 1:
            return a[0]
        rows = rows or math.ceil(n / math.ceil(math.sqrt(n)))
        cols = math.ceil(n / rows)
        fill = np.zeros((rows * cols - n, *a.shape[1:]), dtype=a.dtype)
        a = np.concatenate([a, fill]).reshape(rows, cols, *a.shape[1:])
    rows, cols, c, h, w = a.shape
    out = np.zeros((c, rows * (h + pad) - pad, cols * (w + pad) - pad), dtype=a.dtype)
    for i in range(rows):
        for j in range(cols):
            out[:, i * (h + pad) : i * (h + pad) + h, j * (w + pad) : j * (w + pad) + w] = a[i, j]
    return out


def to_uint8(array: np.ndarray, value_range: tuple[float, float] | None) -> np.ndarray:
    """Map ``value_range`` (default: the array's own min..max) to 0..255, clipping outside."""
    lo, hi = value_range if value_range is not None else (float(array.min()), float(array.max()))
    scaled = (array.astype(np.float64) - lo) / (hi - lo) if hi > lo else np.zeros(array.shape)
    return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_image(
    path: Path,
    images: np.ndarray,
    value_range: tuple[float, float] | None = None,
    rows: int | None = None,
) -> None:
    """Write one image, or a grid of several, as PNG (or any format Pillow knows by suffix)."""
    if not is_image(images):
        raise InputError(
            f"an array of shape {list(images.shape)} is not an image (or a batch of images with "
            "1, 3 or 4 channels); write it to a .npy or .npz file instead"
        )
    tiled = to_uint8(grid(images, rows), value_range)  # (C, H, W)
    pixels = tiled[0] if tiled.shape[0] == 1 else tiled.transpose(1, 2, 0)
    with atomic_path(path) as tmp:
        _pillow().fromarray(pixels).save(tmp)
