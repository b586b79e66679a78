"""What the server needs to know about each entry point, read from the bundle's manifest.

The server fills what a friendly call may leave out (noise drawn from the request's seed, the
default trip count, the batch axis of a single item) and then calls ``Bundle.run``, so every
input check is the Python API's own. Noise is drawn per request, exactly as the high-level
methods draw it (``default_rng(seed)``, inputs in manifest order), so a request's answer does
not depend on the requests it was batched with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._bundle import DEFAULT_ITERATIONS, Bundle
from .._manifest import InputError, TensorSpec

IMAGE_CHANNELS = (1, 3, 4)


@dataclass(frozen=True)
class Tensor(TensorSpec):
    """One input or output of an entry, as the manifest describes it, and how to show it."""

    image: tuple[int, int, int] | None = None  # (C, H, W) when one item can be shown as an image

    @property
    def item(self) -> tuple[int | str, ...]:
        """The shape of one item: the shape without the batch axis."""
        return self.shape[1:] if self.batched else self.shape

    @property
    def fixed_item(self) -> bool:
        """Whether one item's shape is all numbers (no named dims besides the batch axis)."""
        return all(isinstance(d, int) for d in self.item)

    def describe(self, sep: str = " ") -> str:
        """``float32 [batch, 20] latent z ~ normal in [0, 1]``: one space, for API texts."""
        return super().describe(sep)

    def about(self) -> dict[str, Any]:
        """The JSON description the explorer and the info endpoint show."""
        return {
            "name": self.name,
            "dtype": self.dtype.name,
            "shape": list(self.shape),
            "meaning": self.meaning,
            "latent": self.latent,
            "range": list(self.range) if self.range is not None else None,
            "distribution": self.distribution,
            "default": self.default,
            "classes": list(self.classes) if self.classes else None,
            "image": list(self.image) if self.image is not None else None,
        }


@dataclass(frozen=True)
class Entry:
    """One entry point of one served bundle."""

    bundle: str
    name: str
    kind: str  # "graph" | "optimize": how it runs
    task: str  # what it does (encode, decode, inpaint, ...): the manifest's task, else the name
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    code: str | None
    optimize: dict[str, Any] | None
    mergeable: bool  # requests can share one run (rows are independent, shapes known)

    def input(self, name: str) -> Tensor | None:
        return next((t for t in self.inputs if t.name == name), None)

    def output(self, name: str) -> Tensor | None:
        return next((t for t in self.outputs if t.name == name), None)

    @property
    def data_inputs(self) -> tuple[Tensor, ...]:
        """The inputs a caller must give (noise is drawn, the trip count has a default)."""
        return tuple(t for t in self.inputs if t.meaning not in ("noise", "iterations"))

    def about(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "task": self.task,
            "path": f"/v1/{self.bundle}/{self.name}",
            "inputs": [t.about() for t in self.inputs],
            "outputs": [t.about() for t in self.outputs],
            "code": self.code,
            "optimize": None
            if self.optimize is None
            else {k: self.optimize.get(k) for k in ("variable", "steps", "lr", "starts", "project")},
            "batched_requests_merge": self.mergeable,
        }


def _tensor(raw: dict[str, Any], images: list[tuple[int, int, int]]) -> Tensor:
    shape = tuple(raw.get("shape") or ())
    rng = raw.get("range")
    item = shape[1:] if shape and shape[0] == "batch" else shape
    image = None
    if len(item) == 3 and all(isinstance(d, int) for d in item) and item[0] in IMAGE_CHANNELS:
        image = (int(item[0]), int(item[1]), int(item[2]))
    elif len(item) == 1 and isinstance(item[0], int) and raw.get("meaning") != "latent":
        # A flat vector the size of one of the bundle's images is that image, flattened.
        image = next((s for s in images if math.prod(s) == item[0]), None)
    return Tensor(
        name=raw["name"],
        dtype=np.dtype(raw["dtype"]),
        shape=shape,
        meaning=raw.get("meaning", "value"),
        latent=raw.get("latent"),
        range=(float(rng[0]), float(rng[1])) if rng is not None else None,
        distribution=raw.get("distribution"),
        default=raw.get("default"),
        classes=tuple(raw["classes"]) if raw.get("classes") else None,
        image=image,
    )


def _image_shapes(manifest: dict[str, Any]) -> list[tuple[int, int, int]]:
    """Every (C, H, W) item shape among the bundle's tensors, for showing flat vectors."""
    found: list[tuple[int, int, int]] = []
    for entry in manifest["entries"].values():
        for t in (*entry.get("inputs", ()), *entry.get("outputs", ())):
            shape = t.get("shape") or []
            item = shape[1:] if shape and shape[0] == "batch" else shape
            if len(item) == 3 and all(isinstance(d, int) for d in item) and item[0] in IMAGE_CHANNELS:
                if tuple(item) not in found:
                    found.append(tuple(item))
    return found


def entries_of(bundle: Bundle, served_as: str) -> dict[str, Entry]:
    """The entries of ``bundle`` (served under the name ``served_as``), in manifest order."""
    manifest = bundle.manifest
    images = _image_shapes(manifest)
    out: dict[str, Entry] = {}
    for name, raw in manifest["entries"].items():
        inputs = tuple(_tensor(t, images) for t in raw.get("inputs", ()))
        outputs = tuple(_tensor(t, images) for t in raw.get("outputs", ()))
        optimize = raw.get("optimize")
        out[name] = Entry(
            bundle=served_as,
            name=name,
            kind=str(raw.get("kind")),
            task=str(raw.get("task") or name),
            inputs=inputs,
            outputs=outputs,
            code=raw.get("code"),
            optimize=optimize,
            mergeable=_mergeable(inputs, outputs, optimize),
        )
    return out


def _mergeable(inputs: tuple[Tensor, ...], outputs: tuple[Tensor, ...], optimize: dict[str, Any] | None) -> bool:
    """Whether rows of several requests can run as one batch and give each the same answer.

    Every batched input and output must have a known item shape; an optimize entry must start
    without random draws (its start noise would depend on the rows beside it).
    """
    if not any(t.batched for t in inputs):
        return False
    if any(t.batched and not t.fixed_item for t in inputs) or any(isinstance(d, str) for t in inputs for d in t.item):
        return False
    if not all(t.batched and t.fixed_item for t in outputs):
        return False
    if optimize is not None:
        init = optimize.get("init") or {}
        if init.get("kind") == "normal" or int(optimize.get("starts") or 1) > 1:
            return False
    return True


@dataclass
class Prepared:
    """A request's inputs, complete and batched, ready for ``Bundle.run``."""

    feed: dict[str, np.ndarray]
    rows: int
    single: bool  # the request was for one item: outputs lose their batch axis
    key: tuple[Any, ...]  # requests with equal keys can be merged into one run


def prepare(
    entry: Entry, given: dict[str, np.ndarray], *, seed: int, n: int | None, iterations: int | None
) -> Prepared:
    """Complete ``given`` the way the high-level methods do; ``Bundle.run`` checks the rest.

    A batched input given without its batch axis makes the request one item; with ``n`` or a
    batched input, such inputs are broadcast over the batch. Noise not given is drawn from
    ``default_rng(seed)`` in manifest order; a trip count not given gets its default.
    """
    feed = dict(given)
    batch = n
    short: list[str] = []
    for t in entry.inputs:
        a = feed.get(t.name)
        if a is None or not t.batched:
            continue
        if a.ndim == len(t.shape) - 1:
            short.append(t.name)
        elif batch is None and a.ndim:
            batch = int(a.shape[0])
    single = bool(short) and batch is None
    if single:
        batch = 1
        for k in short:
            feed[k] = feed[k][None]
    elif short:
        for k in short:
            feed[k] = np.broadcast_to(feed[k], (batch, *feed[k].shape))
    if iterations is not None:
        target = next((t for t in entry.inputs if t.meaning == "iterations"), None)
        if target is None:
            raise InputError(
                f"entry {entry.name!r} has no iterations input; it takes: {', '.join(t.name for t in entry.inputs)}"
            )
        feed[target.name] = np.asarray(iterations, dtype=np.int64)
    rng = None
    for t in entry.inputs:
        if t.name in feed:
            continue
        if t.meaning == "noise":
            size = batch if batch is not None else 1
            if not t.fixed_item:
                raise InputError(f"cannot draw noise {t.name!r} of shape {list(t.shape)}: give it by name")
            rng = rng if rng is not None else np.random.default_rng(seed)
            shape = (size, *t.item) if t.batched else tuple(t.item)
            values = rng.standard_normal(shape) if t.distribution == "normal" else rng.random(shape)
            feed[t.name] = values.astype(t.dtype)
            batch = size
        elif t.meaning == "iterations":
            k = t.default if t.default is not None else DEFAULT_ITERATIONS
            feed[t.name] = np.asarray(k, dtype=np.int64)
    # The rows the inputs really hold (``n`` may disagree with them: Bundle.run says so).
    sizes = {int(feed[t.name].shape[0]) for t in entry.inputs if t.batched and t.name in feed and feed[t.name].ndim}
    rows = max(sizes) if sizes else (batch if batch is not None else 1)
    return Prepared(feed, rows, single, _key(entry, feed, len(sizes) <= 1))


def _key(entry: Entry, feed: dict[str, np.ndarray], consistent: bool) -> tuple[Any, ...]:
    """Requests merge when their items have one shape and dtype and unbatched inputs are equal."""
    if not entry.mergeable or not consistent:
        return ("alone", id(feed))
    parts: list[Any] = []
    for t in entry.inputs:
        a = feed.get(t.name)
        if a is None:
            return ("alone", id(feed))
        if t.batched:
            parts.append((t.name, a.dtype.str, a.shape[1:]))
        else:
            parts.append((t.name, a.dtype.str, a.shape, a.tobytes()))
    return tuple(parts)
