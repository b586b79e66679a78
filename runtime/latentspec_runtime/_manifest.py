"""Read ``manifest.json``, check it against bundle format version 1, and verify file hashes.

Problems are collected as values (one line each, with the ``$.json.path`` they concern) and
raised together as one :class:`BundleError`, so a broken manifest is fixed in one round.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ._atomic import sha256_file
from ._groups import LatentGroup, parse_groups

FORMAT = "latentspec.bundle"
FORMAT_VERSION = 1
MEANINGS = ("image", "mask", "latent", "noise", "label", "iterations", "value")
DISTRIBUTIONS = ("normal", "uniform")
PROJECTIONS = ("unit_l2", "l2_ball")
INIT_KINDS = ("mean", "zeros", "normal")
#: What an entry does (the spec entry's `kind`; docs/bundle-format.md). The runtime's methods
#: of the same names (encode, decode, sample, ...) run the entry with that task.
TASKS = (
    "encode",
    "decode",
    "sample",
    "generate",
    "reconstruct",
    "swap",
    "refine",
    "predict",
    "invert",
    "inpaint",
    "optimize",
)
OPTIMIZERS = ("adam",)
RANGE_TOL = 1e-6


class BundleError(Exception):
    """The bundle cannot be used: unreadable, modified, of an unknown format, or lacking an entry."""


class InputError(ValueError):
    """An input given to the bundle does not match what the entry point expects."""


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of an entry point, as the manifest describes it."""

    name: str
    dtype: np.dtype
    shape: tuple[int | str, ...]  # ints, "batch" (the dynamic leading axis), or other dim names
    meaning: str
    latent: str | None = None
    range: tuple[float, float] | None = None
    distribution: str | None = None
    default: int | float | None = None
    classes: tuple[str, ...] | None = None  # a label's class names, index order (dataset-given)

    @property
    def batched(self) -> bool:
        """Whether the leading axis is the dynamic batch axis."""
        return bool(self.shape) and self.shape[0] == "batch"

    @property
    def shape_text(self) -> str:
        """The shape as the manifest writes it, e.g. ``[batch, 20]``."""
        return "[" + ", ".join(str(d) for d in self.shape) + "]"

    def describe(self, sep: str = "  ") -> str:
        """``float32 [batch, 20]  latent z``: a one-line signature for messages and ``info``
        (``sep`` between the shape and the meaning)."""
        text = f"{self.dtype.name} {self.shape_text}{sep}{self.meaning}"
        if self.latent:
            text += f" {self.latent}"
        if self.distribution:
            text += f" ~ {self.distribution}"
        if self.range is not None:
            text += f" in [{self.range[0]:g}, {self.range[1]:g}]"
        if self.classes:
            text += f" ({', '.join(self.classes)})"
        if self.default is not None:
            text += f" (default {self.default})"
        return text


@dataclass(frozen=True)
class InitSpec:
    """How the optimized variable starts (``optimize.init``)."""

    kind: str  # "mean" | "zeros" | "normal"
    value: tuple[float, ...] | None
    scale: float


@dataclass(frozen=True)
class OptimizeSpec:
    """The ``optimize`` block of an entry of kind "optimize"."""

    variable: str
    loss: str
    gradient: str
    dim: int
    graph_outputs: tuple[str, ...]
    steps: int
    lr: float
    optimizer: str
    betas: tuple[float, float]
    eps: float
    project: str | None
    radius: float
    init: InitSpec
    starts: int


@dataclass(frozen=True)
class EntrySpec:
    """One entry point: its ONNX file, inputs, outputs and (kind "optimize") its loop."""

    name: str
    kind: str  # "graph" | "optimize"
    file: str
    sha256: str | None
    opset: int | None
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    code: str | None
    optimize: OptimizeSpec | None
    #: What the entry does (encode, decode, sample, ...: TASKS); the convenience methods find
    #: their entry by it. A manifest without one reads the entry's name, when that is a task.
    task: str | None = None

    def input(self, name: str) -> TensorSpec | None:
        """The input called ``name``, or None."""
        return next((t for t in self.inputs if t.name == name), None)

    def output(self, name: str) -> TensorSpec | None:
        """The output called ``name``, or None."""
        return next((t for t in self.outputs if t.name == name), None)


@dataclass(frozen=True)
class Direction:
    """A named direction in a latent space (``directions`` of the manifest)."""

    latent: str | None
    vector: np.ndarray
    #: How the exporter made it (``y:1:7``, ``group:yaw``, ``unit:3``); None in older manifests.
    source: str | None = None
    #: "factor" (one step = +1 of a calibrated factor) or "code"; None when not a group's or unit's.
    units: str | None = None


@dataclass(frozen=True)
class Manifest:
    """The checked contents of ``manifest.json``; ``raw`` is the JSON as read."""

    raw: dict[str, Any]
    name: str
    format_version: int
    latentspec_version: str | None
    entries: dict[str, EntrySpec]
    directions: dict[str, Direction]
    files: dict[str, str]
    #: {latent: {group: LatentGroup}}: named code units and their factor calibration ($.latents.*.groups).
    groups: dict[str, dict[str, LatentGroup]] = field(default_factory=dict)


class _Problems:
    """Collects manifest problems, each as ``$.path: message``."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.lines.append(f"{path}: {message}")

    def get(
        self,
        obj: dict[str, Any],
        key: str,
        path: str,
        kinds: type | tuple[type, ...],
        *,
        required: bool = True,
        default: Any = None,
    ) -> Any:
        """``obj[key]`` if it has one of ``kinds`` (bool is never a number), else record a problem."""
        if key not in obj or (obj[key] is None and not required):
            if required:
                self.add(f"{path}.{key}", "missing")
            return default
        value = obj[key]
        allowed = kinds if isinstance(kinds, tuple) else (kinds,)
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            names = " or ".join(k.__name__ for k in allowed)
            self.add(f"{path}.{key}", f"expected {names}, got {json.dumps(value)}")
            return default
        return value


_NUMBER = (int, float)


MAX_MANIFEST_BYTES = 64 << 20  # a manifest holds the spec text and direction vectors, not weights
MAX_DEPTH = 64


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (the manifest must be strict JSON)")


def loads_strict(text: str) -> Any:
    """Strict JSON: ``NaN``/``Infinity`` refused (Python's json accepts them), nesting bounded."""
    value = json.loads(text, parse_constant=_reject_constant)
    stack = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise RecursionError
        if isinstance(v, dict):
            stack.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, depth + 1) for x in v)
    return value


def _inside(root: Path, path: Path) -> bool:
    """Does ``path``, symlinks resolved, stay inside the bundle folder?"""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return False


def read_manifest(root: Path) -> Manifest:
    """Read and check ``root/manifest.json``; raise :class:`BundleError` listing every problem."""
    path = root / "manifest.json"
    if not root.is_dir():
        raise BundleError(f"{root}: not a bundle folder (it does not exist or is not a directory)")
    try:
        if path.is_symlink() and not _inside(root, path):
            raise BundleError(f"{path}: a symlink that leaves the bundle folder; refused")
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise BundleError(f"{path}: {size} bytes, more than a manifest's limit of {MAX_MANIFEST_BYTES}")
        raw = loads_strict(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{root}: no manifest.json; a bundle is the folder written by `latentspec export`") from None
    except RecursionError:
        raise BundleError(f"{path}: the manifest is nested too deeply to be a bundle manifest; refused") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:  # JSONDecodeError, NaN/Infinity
        raise BundleError(f"{path}: cannot read the manifest ({err}); re-export the bundle") from None
    if not isinstance(raw, dict):
        raise BundleError(f"{path}: the manifest must be a JSON object")
    if raw.get("format") != FORMAT:
        raise BundleError(
            f"{path}: not a latentspec bundle manifest (format is {json.dumps(raw.get('format'))}, "
            f"expected {json.dumps(FORMAT)})"
        )
    version = raw.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise BundleError(f"{path}: format_version must be an integer, got {json.dumps(version)}")
    if version != FORMAT_VERSION:
        hint = (
            "upgrade the runtime (pip install -U latentspec-runtime)"
            if version > FORMAT_VERSION
            else "re-export the bundle with a current `latentspec export`"
        )
        raise BundleError(
            f"{path}: bundle format version {version} is not supported by this runtime "
            f"(it reads version {FORMAT_VERSION}); {hint}"
        )

    p = _Problems()
    name = p.get(raw, "name", "$", str, required=False, default=root.name)
    lsv = p.get(raw, "latentspec_version", "$", str, required=False)
    files = _parse_files(p, raw)
    _check_spec_text(p, raw)
    entries: dict[str, EntrySpec] = {}
    raw_entries = p.get(raw, "entries", "$", dict, default={})
    if raw_entries == {} and "entries" in raw:
        p.add("$.entries", "the bundle has no entry points")
    for ename, raw_entry in raw_entries.items():
        entry = _parse_entry(p, ename, raw_entry, files)
        if entry is not None:
            entries[ename] = entry
    directions = _parse_directions(p, raw)
    groups = parse_groups(p, raw)
    if p.lines:
        listing = "\n  ".join(p.lines)
        raise BundleError(
            f"{path}: the manifest is invalid ({len(p.lines)} problem"
            f"{'s' if len(p.lines) > 1 else ''}):\n  {listing}\n"
            "re-export the bundle with `latentspec export`"
        )
    return Manifest(raw, name, version, lsv, entries, directions, files, groups)


def _parse_files(p: _Problems, raw: dict[str, Any]) -> dict[str, str]:
    files: dict[str, str] = {}
    for rel, digest in p.get(raw, "files", "$", dict, default={}).items():
        where = f"$.files[{json.dumps(rel)}]"
        pure = PurePosixPath(rel)
        if pure.is_absolute() or ".." in pure.parts or "\\" in rel or not pure.parts:
            p.add(where, "file names must be relative paths inside the bundle folder")
        elif rel == "manifest.json":
            p.add(where, "the manifest does not list itself")
        elif not isinstance(digest, str) or len(digest) != 64:
            p.add(where, f"expected a sha256 hex digest, got {json.dumps(digest)}")
        else:
            files[rel] = digest.lower()
    return files


def _check_spec_text(p: _Problems, raw: dict[str, Any]) -> None:
    spec = p.get(raw, "spec", "$", dict, required=False)
    if spec is None:
        return
    text = p.get(spec, "text", "$.spec", str)
    digest = p.get(spec, "sha256", "$.spec", str)
    if text is not None and digest is not None:
        actual = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if actual != digest.lower():
            p.add("$.spec.sha256", f"the spec text hashes to {actual}, not {digest}")


def _parse_entry(p: _Problems, name: str, raw: Any, files: dict[str, str]) -> EntrySpec | None:
    path = f"$.entries.{name}"
    before = len(p.lines)
    if not isinstance(raw, dict):
        p.add(path, "an entry must be a JSON object")
        return None
    kind = p.get(raw, "kind", path, str)
    if kind is not None and kind not in ("graph", "optimize"):
        p.add(f"{path}.kind", f"unknown kind {json.dumps(kind)} (this runtime knows: graph, optimize)")
    file = p.get(raw, "file", path, str)
    sha = p.get(raw, "sha256", path, str, required=False)
    if file is not None:
        if file not in files:
            p.add(f"{path}.file", f"{json.dumps(file)} is not listed in $.files")
        elif sha is not None and sha.lower() != files[file]:
            p.add(f"{path}.sha256", f"differs from $.files[{json.dumps(file)}]")
    opset = p.get(raw, "opset", path, int, required=False)
    inputs = _parse_tensors(p, raw, "inputs", path)
    outputs = _parse_tensors(p, raw, "outputs", path)
    code = p.get(raw, "code", path, str, required=False)
    if code is not None and all(t.name != code for t in outputs):
        p.add(f"{path}.code", f"{json.dumps(code)} is not one of the entry's outputs")
    optimize = None
    raw_opt = p.get(raw, "optimize", path, dict, required=False)
    if kind == "optimize":
        if raw_opt is None:
            p.add(f"{path}.optimize", "an entry of kind 'optimize' needs an optimize block")
        else:
            optimize = _parse_optimize(p, raw_opt, f"{path}.optimize", inputs, outputs)
    elif raw_opt is not None:
        p.add(f"{path}.optimize", "only entries of kind 'optimize' have an optimize block")
    # a task this runtime does not know is kept: the entry still runs through Bundle.run()
    task = p.get(raw, "task", path, str, required=False)
    if task is None and name in TASKS:  # written before entries recorded their task
        task = name
    if len(p.lines) > before:
        return None
    return EntrySpec(name, kind, file, sha, opset, inputs, outputs, code, optimize, task)


def _parse_tensors(p: _Problems, raw: dict[str, Any], key: str, path: str) -> tuple[TensorSpec, ...]:
    specs: list[TensorSpec] = []
    for i, item in enumerate(p.get(raw, key, path, list, default=[])):
        spec = _parse_tensor(p, item, f"{path}.{key}[{i}]")
        if spec is None:
            continue
        if any(s.name == spec.name for s in specs):
            p.add(f"{path}.{key}[{i}].name", f"duplicate name {json.dumps(spec.name)}")
        specs.append(spec)
    return tuple(specs)


def _parse_tensor(p: _Problems, raw: Any, path: str) -> TensorSpec | None:
    if not isinstance(raw, dict):
        p.add(path, "expected an object with name, dtype, shape, meaning")
        return None
    before = len(p.lines)
    name = p.get(raw, "name", path, str)
    dtype_name = p.get(raw, "dtype", path, str)
    dtype = None
    if dtype_name is not None:
        try:
            dtype = np.dtype(dtype_name)
        except TypeError:
            p.add(f"{path}.dtype", f"{json.dumps(dtype_name)} is not a numpy dtype name (e.g. float32)")
        else:
            if dtype.kind not in "biuf":
                p.add(f"{path}.dtype", f"{json.dumps(dtype_name)}: tensors are numbers or bool (e.g. float32)")
                dtype = None
    shape = p.get(raw, "shape", path, list, default=[])
    for d in shape:
        if isinstance(d, bool) or not (isinstance(d, str) or (isinstance(d, int) and d >= 0)):
            p.add(f"{path}.shape", f'dims are non-negative ints or "batch", got {json.dumps(d)}')
            break
    meaning = p.get(raw, "meaning", path, str, default="value")
    if meaning not in MEANINGS:
        p.add(f"{path}.meaning", f"unknown meaning {json.dumps(meaning)} (known: {', '.join(MEANINGS)})")
    latent = p.get(raw, "latent", path, str, required=False)
    rng = _parse_range(p, raw, path)
    dist = p.get(raw, "distribution", path, str, required=False)
    if meaning == "noise" and dist not in DISTRIBUTIONS:
        p.add(f"{path}.distribution", f"a noise input needs a distribution: {' or '.join(DISTRIBUTIONS)}")
    if meaning == "iterations" and (shape != [] or dtype_name != "int64"):
        p.add(path, "an iterations input is a 0-d int64 (shape [], dtype int64)")
    if meaning == "label" and dtype is not None and dtype.kind not in "iu":
        p.add(f"{path}.dtype", "a label is an integer class index (int64)")
    default = p.get(raw, "default", path, _NUMBER, required=False)
    classes = p.get(raw, "classes", path, list, required=False)
    if classes is not None:
        n = int(rng[1] - rng[0] + 1) if meaning == "label" and rng is not None else None
        if not all(isinstance(c, str) for c in classes) or len(set(classes)) != len(classes):
            p.add(f"{path}.classes", "expected distinct class names (strings)")
        elif n is None or len(classes) != n:
            p.add(f"{path}.classes", "class names belong to a label input, one per class of its range")
    if len(p.lines) > before:
        return None
    return TensorSpec(
        name, dtype, tuple(shape), meaning, latent, rng, dist, default, tuple(classes) if classes else None
    )


def _parse_range(p: _Problems, raw: dict[str, Any], path: str) -> tuple[float, float] | None:
    rng = p.get(raw, "range", path, list, required=False)
    if rng is None:
        return None
    ok = len(rng) == 2 and all(isinstance(v, _NUMBER) and not isinstance(v, bool) for v in rng)
    if not ok or not rng[0] <= rng[1]:
        p.add(f"{path}.range", f"expected [lo, hi] with lo <= hi, got {json.dumps(rng)}")
        return None
    return float(rng[0]), float(rng[1])


def _parse_optimize(
    p: _Problems,
    raw: dict[str, Any],
    path: str,
    inputs: tuple[TensorSpec, ...],
    outputs: tuple[TensorSpec, ...],
) -> OptimizeSpec | None:
    before = len(p.lines)
    variable = p.get(raw, "variable", path, str)
    loss = p.get(raw, "loss", path, str)
    gradient = p.get(raw, "gradient", path, str)
    dim = p.get(raw, "dim", path, int)
    graph_outputs = p.get(raw, "graph_outputs", path, list, default=[])
    if not all(isinstance(n, str) for n in graph_outputs):
        p.add(f"{path}.graph_outputs", "expected a list of output names")
    steps = p.get(raw, "steps", path, int)
    lr = p.get(raw, "lr", path, _NUMBER)
    optimizer = p.get(raw, "optimizer", path, str, required=False, default="adam")
    if optimizer not in OPTIMIZERS:
        p.add(f"{path}.optimizer", f"{json.dumps(optimizer)} is not supported (this runtime has: adam)")
    betas = p.get(raw, "betas", path, list, required=False, default=[0.9, 0.999])
    if len(betas) != 2 or not all(isinstance(b, _NUMBER) and 0 <= b < 1 for b in betas):
        p.add(f"{path}.betas", f"expected [b1, b2] in [0, 1), got {json.dumps(betas)}")
    eps = p.get(raw, "eps", path, _NUMBER, required=False, default=1e-8)
    project = p.get(raw, "project", path, str, required=False)
    if project is not None and project not in PROJECTIONS:
        p.add(f"{path}.project", f"unknown projection {json.dumps(project)} (known: null, {', '.join(PROJECTIONS)})")
    radius = p.get(raw, "radius", path, _NUMBER, required=project == "l2_ball", default=1.0)
    starts = p.get(raw, "starts", path, int, required=False, default=1)
    init = _parse_init(
        p, p.get(raw, "init", path, dict, required=False, default={"kind": "zeros"}), f"{path}.init", dim
    )
    for key, value, low in (("dim", dim, 1), ("steps", steps, 0), ("starts", starts, 1)):
        if value is not None and value < low:
            p.add(f"{path}.{key}", f"must be >= {low}, got {value}")
    for key, value in (("lr", lr), ("eps", eps), ("radius", radius)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            p.add(f"{path}.{key}", f"must be a finite number >= 0, got {value}")
    if variable is not None and any(t.name == variable for t in inputs):
        p.add(f"{path}.variable", f"{json.dumps(variable)} is also a data input")
    for t in outputs:
        if t.name != variable and t.name not in graph_outputs:
            p.add(path, f"output {json.dumps(t.name)} is neither the variable nor in graph_outputs")
    if len(p.lines) > before:
        return None
    return OptimizeSpec(
        variable,
        loss,
        gradient,
        dim,
        tuple(graph_outputs),
        steps,
        float(lr),
        optimizer,
        (float(betas[0]), float(betas[1])),
        float(eps),
        project,
        float(radius),
        init,
        starts,
    )


def _parse_init(p: _Problems, raw: dict[str, Any], path: str, dim: int | None) -> InitSpec:
    kind = p.get(raw, "kind", path, str, default="zeros")
    if kind not in INIT_KINDS:
        p.add(f"{path}.kind", f"unknown init kind {json.dumps(kind)} (known: {', '.join(INIT_KINDS)})")
    value = p.get(raw, "value", path, (list, int, float), required=kind == "mean")
    if isinstance(value, (int, float)):
        value = [value] * (dim or 1)
    if value is not None:
        if not all(isinstance(v, _NUMBER) and not isinstance(v, bool) for v in value):
            p.add(f"{path}.value", "expected a list of numbers")
            value = None
        elif dim is not None and len(value) != dim:
            p.add(f"{path}.value", f"has {len(value)} numbers; optimize.dim is {dim}")
    scale = p.get(raw, "scale", path, _NUMBER, required=False, default=0.0)
    return InitSpec(kind, None if value is None else tuple(float(v) for v in value), float(scale))


def _parse_directions(p: _Problems, raw: dict[str, Any]) -> dict[str, Direction]:
    directions: dict[str, Direction] = {}
    for name, item in p.get(raw, "directions", "$", dict, required=False, default={}).items():
        path = f"$.directions.{name}"
        if not isinstance(item, dict):
            p.add(path, "expected an object with latent and vector")
            continue
        vector = p.get(item, "vector", path, list)
        if vector is None:
            continue
        if not vector or not all(isinstance(v, _NUMBER) and not isinstance(v, bool) for v in vector):
            p.add(f"{path}.vector", "expected a non-empty list of numbers")
            continue
        latent = p.get(item, "latent", path, str, required=False)
        source = p.get(item, "source", path, str, required=False)
        units = p.get(item, "units", path, str, required=False)
        directions[name] = Direction(latent, np.asarray(vector, dtype=np.float32), source, units)
    return directions


def mismatch_message(root: Path, rel: str, expected: str, actual: str) -> str:
    """The message for a file whose hash is not the manifest's."""
    return (
        f"{root / rel}: sha256 {actual} does not match the manifest's {expected}; "
        "the bundle was modified or corrupted; re-export it"
    )


def verify_files(root: Path, files: dict[str, str]) -> None:
    """Check that every file the manifest lists exists and has its sha256; raise BundleError."""
    problems: list[str] = []
    for rel, expected in files.items():
        path = root / rel
        if not _inside(root, path):
            problems.append(f"{path}: a symlink (or path) that leaves the bundle folder; refused")
            continue
        if not path.is_file():
            problems.append(
                f"{path}: missing (the manifest lists it); the bundle is incomplete; re-export it "
                "or copy the whole folder"
            )
            continue
        actual = sha256_file(path)
        if actual != expected:
            problems.append(mismatch_message(root, rel, expected, actual))
    if problems:
        raise BundleError("\n".join(problems))
