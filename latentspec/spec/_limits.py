"""What a spec will cost, estimated before anything is allocated, and refused when it cannot fit.

Torch-free: read off the validated spec (tensor shapes, node parameters, batch size, split).
The estimate is an order of magnitude, deliberately generous: weights with their gradients and
two optimizer moments, activations kept for the backward pass at the batch size, latent tables
(one code per training row, with their optimizer state) and the dataset held in memory.

>>> from latentspec.spec._limits import human
>>> human(3 * 2**30)
'3.0 GiB'
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os

from latentspec.spec._diagnostics import Diagnostic

FLOAT = 4  # bytes of a float32
TRAIN_COPIES = 4  # weights, gradients, two Adam moments
ACTIVATION_COPIES = 3  # forward values, their gradients, workspace


@dataclasses.dataclass
class Cost:
    """The estimate, in parameters and bytes, with the path of the largest part of each."""

    params: int = 0
    activations: int = 0  # bytes at the training batch size
    tables: int = 0  # bytes of latent tables and their optimizer state
    data: int = 0  # bytes of the dataset in memory
    biggest: dict[str, tuple[int, tuple]] = dataclasses.field(default_factory=dict)  # part -> (bytes, path)

    @property
    def total(self) -> int:
        return self.params * FLOAT * TRAIN_COPIES + self.activations + self.tables + self.data

    def add(self, part: str, nbytes: int, path: tuple) -> None:
        if nbytes > self.biggest.get(part, (-1, ()))[0]:
            self.biggest[part] = (nbytes, path)

    def describe(self, batch: int) -> str:
        return (
            f"{self.params:,} parameters ({human(self.params * FLOAT * TRAIN_COPIES)} with gradients and "
            f"optimizer state), activations at batch {batch}: {human(self.activations)}, "
            f"latent tables: {human(self.tables)}, data: {human(self.data)}"
        )


def human(n: float) -> str:
    """Bytes for people: ``3.0 GiB``; absurd sizes (a dim of 10**30) as a power of ten."""
    n = int(n)
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    for i, unit in enumerate(units):
        if n < 1024 ** (i + 1) or (unit == units[-1] and n < 1024**8):
            return f"{n} B" if i == 0 else f"{n / 1024**i:.1f} {unit}"
    return f"10^{len(str(n)) - 1} B"


def machine_memory() -> int:
    """Bytes of physical memory (``LATENTSPEC_MEMORY_BYTES`` overrides, e.g. for a cgroup)."""
    env = os.environ.get("LATENTSPEC_MEMORY_BYTES")
    if env and env.isdigit():
        return int(env)
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: no refusal
        return 1 << 62


def _numel(shape) -> int | None:
    if not isinstance(shape, (tuple, list)) or not all(isinstance(d, int) and d > 0 for d in shape):
        return None
    return math.prod(shape)


def _ints(v) -> list[int]:
    return [x for x in v if isinstance(x, int) and x > 0] if isinstance(v, (list, tuple)) else []


def _module_params(n, infos: dict) -> int:
    """Parameters of one module node, from its declared sizes and its tensors' shapes."""
    cfg = n.cfg or {}
    size_in = sum(_numel(getattr(infos.get(t), "shape", None)) or 0 for t in n.inputs)
    size_out = sum(_numel(getattr(infos.get(t), "shape", None)) or 0 for t in n.outputs)

    def dense(widths: list[int]) -> int:
        return sum(a * b + b for a, b in itertools.pairwise(widths))

    kind = n.type
    if kind == "mlp":
        widths = [size_in, *_ints(cfg.get("hidden"))]
        if cfg.get("dim") or cfg.get("shape"):
            widths.append(size_out or (cfg.get("dim") if isinstance(cfg.get("dim"), int) else 0))
        return dense([w for w in widths if w])
    if kind in ("conv_encoder", "conv_decoder"):
        k = cfg.get("kernel", 4) if isinstance(cfg.get("kernel", 4), int) else 4
        chans = _ints(cfg.get("channels")) or [32, 64]
        image = n.inputs[0] if kind == "conv_encoder" else n.outputs[0]
        shape = getattr(infos.get(image), "shape", None) or (1,)
        c = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else 1
        conv = dense([c, *chans]) * k * k
        # stride-2 blocks: the image shrinks 4x per block between the convs and a linear layer
        pixels = max(1, (size_in if kind == "conv_encoder" else size_out) // c // 4 ** len(chans))
        if kind == "conv_encoder":
            return conv + (pixels * chans[-1] * size_out if cfg.get("dim") else 0)
        return conv + size_in * pixels * chans[0]
    if kind in ("linear", "gaussian_head", "pca"):
        return dense([size_in, size_out])
    if kind == "embedding":
        classes = cfg.get("classes") if isinstance(cfg.get("classes"), int) else 0
        dim = cfg.get("dim") if isinstance(cfg.get("dim"), int) else 0
        return classes * dim
    if kind == "latent_table":
        return 0  # counted as a table
    return 0  # ops, python modules: unknown or none


def _train_rows(spec) -> int:
    split = spec.data.split or {}
    rows = sum(int(v) for v in split.values() if isinstance(v, (int, float)) and v > 1)
    if rows:
        return rows
    cfg = getattr(spec.data.dataset, "config", None)
    size = getattr(cfg, "size", None) if cfg is not None else None
    return size if isinstance(size, int) else 0


def estimate(spec) -> Cost:
    """The cost of training ``spec`` (a validated :class:`~latentspec.spec.Spec`)."""
    cost = Cost()
    infos = spec.infos
    batch = spec.data.batch
    rows = _train_rows(spec)

    def nodes(ns):
        for n in ns.values():
            yield n
            if n.body is not None:
                yield from nodes(n.body)

    for n in nodes(spec.nodes):
        if n.kind != "module":
            continue
        p = _module_params(n, infos)
        cost.params += p
        cost.add("params", p * FLOAT * TRAIN_COPIES, n.path or ("nodes", n.name))
    for name, lat in spec.latents.items():
        if getattr(lat, "table", None):
            size = getattr(lat, "size", None) or rows
            b = size * lat.dim * FLOAT * TRAIN_COPIES
            cost.tables += b
            cost.add("tables", b, ("latents", name, "dim"))
    for info in infos.values():
        numel = _numel(getattr(info, "shape", None))
        if numel:
            b = numel * batch * FLOAT * ACTIVATION_COPIES
            cost.activations += b
            cost.add("activations", b, ("data", "batch"))
    per_row = 0
    for name in spec.data.fields:
        info = infos.get(name)
        numel = _numel(getattr(info, "shape", None)) or 1
        per_row += numel * (8 if getattr(info, "dtype", "") == "int64" else FLOAT)
    # the loader's raw arrays plus the split's field tensors
    cost.data = 2 * per_row * rows
    cost.add("data", cost.data, ("data", "split"))
    return cost


def cost_diagnostics(doc, spec) -> list[Diagnostic]:
    """An error when the estimate exceeds this machine's memory, located at its largest part."""
    cost = estimate(spec)
    limit = machine_memory()
    if cost.total <= limit:
        return []
    part, (_, path) = max(cost.biggest.items(), key=lambda kv: kv[1][0])
    # a size given on the command line is blamed there (--set nodes.enc.hidden=...)
    path = next((p for p in doc.overrides if p[: len(path)] == tuple(path)), path)
    msg = (
        f"training this spec needs about {human(cost.total)} of memory, more than this machine's "
        f"{human(limit)}: {cost.describe(spec.data.batch)}; make it smaller (largest part: {part})"
    )
    return [doc.diag(path, msg)]
