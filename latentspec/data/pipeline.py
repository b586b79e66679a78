"""From a spec's `data:` section to tensors: load, split, select fields, batch."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from typing import TYPE_CHECKING

import numpy as np

from latentspec._finite import check_arrays
from latentspec.components import DATASETS, SAMPLERS
from latentspec.components.samplers import SamplerContext
from latentspec.errors import DataError

if TYPE_CHECKING:  # the pipeline reads a validated spec; it never needs the spec package at run time
    from latentspec.spec._model import FieldSpec, Spec


def _dataset_cfg(spec: Spec) -> dict:
    return {**spec.data.dataset.config.as_dict(), "_base_dir": spec.base_dir}


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, cfg_json: str, vary: tuple | None, group: int | None) -> dict[str, np.ndarray]:
    cfg = json.loads(cfg_json)
    ds = DATASETS[name]()
    try:
        if vary is not None:
            if not hasattr(ds, "load_grouped"):
                raise DataError(f"dataset {name} cannot render batches with fixed factors (sampler fixed_factors)")
            arrays = ds.load_grouped({k: v for k, v in cfg.items()}, list(vary), group)
        else:
            arrays = ds.load(cfg)
    except (ValueError, OSError) as exc:
        raise DataError(f"dataset {name}: {exc}") from None
    check_arrays(f"dataset {name}" + (f" ({cfg['path']})" if isinstance(cfg.get("path"), str) else ""), arrays)
    return arrays


def array_infos(spec: Spec) -> dict:
    """What each array of the spec's dataset holds ({name: ArrayInfo}), without loading it."""
    return spec.data.dataset.instance.arrays(_dataset_cfg(spec))


def block_size(spec: Spec) -> int | None:
    """Rows per fixed-factor block when the sampler renders the data in blocks (``fixed_factors``),
    else None. Such a block is one batch wherever a training graph runs, in evaluation too:
    ``clamp_latents`` reads the whole batch (its mean or first row, and the group that varies)."""
    d = spec.data
    if not d.sampler.component.grouped:
        return None
    return d.sampler.config.get("batch") or d.batch


def load_arrays(spec: Spec) -> dict[str, np.ndarray]:
    """The dataset's arrays (rendered in fixed-factor blocks for the fixed_factors sampler)."""
    d = spec.data
    grouped = d.sampler.component.grouped
    vary = tuple(d.sampler.config.get("vary") or ()) if grouped else None
    group = (d.sampler.config.get("batch") or d.batch) if grouped else None
    return _load_cached(d.dataset.name, json.dumps(_dataset_cfg(spec), sort_keys=True), vary, group)


def _split_counts(spec: Spec, n: int) -> dict[str, int]:
    split = spec.data.split
    counts = {}
    for k in ("train", "test", "val"):
        if k in split:
            v = split[k]
            counts[k] = round(v * n) if isinstance(v, float) and v <= 1.0 else int(v)
    if sum(counts.values()) > n:
        raise DataError(f"data.split asks for {sum(counts.values())} rows but the dataset has {n}")
    return counts


def held_out_mask(arrays: dict[str, np.ndarray], held_out: dict) -> np.ndarray:
    """Rows whose value of any named array lies in one of its closed intervals [lo, hi]."""
    n = len(next(iter(arrays.values())))
    mask = np.zeros(n, dtype=bool)
    for name, intervals in held_out.items():
        if name not in arrays or arrays[name].ndim != 1:
            scalars = sorted(k for k, a in arrays.items() if a.ndim == 1)
            raise DataError(
                f"data.split.held_out: the dataset has no per-row value '{name}' (it has: {', '.join(scalars)})"
            )
        for lo, hi in intervals:
            if lo > hi:
                raise DataError(f"data.split.held_out.{name}: interval [{lo:g}, {hi:g}] has lo > hi")
            mask |= (arrays[name] >= lo) & (arrays[name] <= hi)
    return mask


def _held_out_split(arrays: dict[str, np.ndarray], held_out: dict, order: np.ndarray, counts: dict[str, int]):
    """train and val from the rows outside ``held_out``, test from the rows inside, each in the
    seeded ``order``."""
    mask = held_out_mask(arrays, held_out)
    pools = {"inside": order[mask[order]], "outside": order[~mask[order]]}
    out, start = {}, {"inside": 0, "outside": 0}
    for k in ("train", "test", "val"):
        if k not in counts:
            continue
        side = "inside" if k == "test" else "outside"
        pool, i = pools[side], start[side]
        if i + counts[k] > len(pool):
            raise DataError(
                f"data.split: {k} asks for {counts[k]} rows {side} held_out but only {len(pool) - i} are left there"
            )
        out[k] = np.sort(pool[i : i + counts[k]])
        start[side] += counts[k]
    return out


def split_rows(spec: Spec) -> dict[str, np.ndarray]:
    """Row numbers of each split: a seeded permutation cut by counts (blocks kept whole when grouped)."""
    arrays = load_arrays(spec)
    n = len(next(iter(arrays.values())))
    counts = _split_counts(spec, n)
    rng = np.random.default_rng([spec.seed, 0x5EED])
    d = spec.data
    if d.sampler.component.grouped:
        block = d.sampler.config.get("batch") or d.batch
        blocks = rng.permutation(n // block)
        order = (blocks[:, None] * block + np.arange(block)).reshape(-1)
        counts = {k: (v // block) * block for k, v in counts.items()}
    else:
        order = rng.permutation(n)
    if d.split.get("held_out"):
        if d.sampler.component.grouped:
            raise DataError("data.split.held_out: a fixed_factors sampler keeps whole blocks; hold rows out without it")
        return _held_out_split(arrays, d.split["held_out"], order, counts)
    out, start = {}, 0
    for k in ("train", "test", "val"):
        if k in counts:
            out[k] = (
                np.sort(order[start : start + counts[k]])
                if not d.sampler.component.grouped
                else order[start : start + counts[k]]
            )
            start += counts[k]
    return out


def group_rows(spec: Spec, split: str) -> dict[str, tuple[list[str], np.ndarray]]:
    """Per field group (the fields' `where` filter): its fields and its rows in ``split``."""
    arrays = load_arrays(spec)
    rows_all = split_rows(spec)
    if split not in rows_all:
        raise DataError(f"data.split has no '{split}' part")
    rows = rows_all[split]
    groups: dict[str, list[str]] = {}
    for f in spec.data.fields.values():
        groups.setdefault(f.group, []).append(f.name)
    out = {}
    for g, names in groups.items():
        f0 = spec.data.fields[names[0]]
        keep = rows
        for k, v in f0.where.items():
            col = arrays[k][keep]
            if col.dtype.kind in "iu" and isinstance(v, str):
                known = spec.data.dataset.instance.arrays(_dataset_cfg(spec))[k].names or ()
                if v not in known:
                    raise DataError(
                        f"field '{f0.name}': where {k}={v!r}: {k} has no value {v!r} (it has {', '.join(known)})"
                    )
                v = known.index(v)
            keep = keep[col == v]
        if len(keep) == 0:
            raise DataError(f"fields {', '.join(names)}: no rows in the {split} split match {f0.where}")
        out[g] = (names, keep)
    return out


def split_sizes(spec: Spec) -> dict[str, int]:
    """Rows in the training split of the smallest field group (the size of a latent table)."""
    return {"train": min(len(keep) for _, keep in group_rows(spec, "train").values())}


def table_sizes(spec: Spec) -> dict[str, int]:
    """Rows of each latent table (one code per training example), for ``compile_spec``; reads
    the data only when the spec has a table."""
    tables = [name for name, lat in spec.latents.items() if lat.table]
    if not tables:
        return {}
    rows = split_sizes(spec)["train"]
    return dict.fromkeys(tables, rows)


def _field_array(f: FieldSpec, arrays: dict[str, np.ndarray], rows: np.ndarray, info) -> np.ndarray:
    if f.source == "index":
        return np.arange(len(rows), dtype=np.int64)
    if f.source == "vary":
        return arrays["vary"][rows].astype(np.int64)
    if isinstance(f.source, tuple):  # scalar factors stacked into one vector
        cols = []
        for s in f.source:
            full = arrays[s].astype(np.float32)
            c = full[rows]
            if f.scale is not None:
                lo, hi = float(full.min()), float(full.max())
                c = (c - lo) / max(hi - lo, 1e-12) * (f.scale[1] - f.scale[0]) + f.scale[0]
            cols.append(c)
        a = np.stack(cols, -1)
        if f.encode == "sincos":
            a = np.concatenate([np.sin(a), np.cos(a)], -1)
        return np.ascontiguousarray(a, dtype=np.float32)
    a = arrays[f.source][rows]
    if info.dtype == "int64":
        a = a.astype(np.int64)
        if info.classes is not None and len(a) and (a.min() < 0 or a.max() >= info.classes):
            raise DataError(f"field '{f.name}': values {a.min()}..{a.max()} do not fit {info.classes} classes")
        return a
    if f.one_hot or (f.classes and info.shape and info.shape == (f.classes,)):
        return np.eye(info.shape[0], dtype=np.float32)[a.astype(np.int64)]
    a = a.astype(np.float32)
    if f.scale is not None:
        full = arrays[f.source]
        lo, hi = (0.0, 255.0) if full.dtype == np.uint8 else (float(full.min()), float(full.max()))
        a = (a - lo) / max(hi - lo, 1e-12) * (f.scale[1] - f.scale[0]) + f.scale[0]
    if f.encode == "sincos":
        a = np.concatenate([np.sin(a), np.cos(a)], axis=-1) if a.ndim > 1 else np.stack([np.sin(a), np.cos(a)], -1)
    if info.shape is not None:
        a = a.reshape(len(rows), *info.shape)
    return np.ascontiguousarray(a)


def field_arrays(spec: Spec, split: str) -> dict[str, np.ndarray]:
    """Every field of ``split`` as the model's input arrays (numpy), field groups cut to one length."""
    arrays = load_arrays(spec)
    out = {}
    groups = group_rows(spec, split)
    n = min(len(keep) for _, keep in groups.values())
    for names, keep in groups.values():
        for name in names:
            out[name] = _field_array(spec.data.fields[name], arrays, keep[:n], spec.infos[name])
    return out


@dataclasses.dataclass
class SplitData:
    """The fields of one split as torch tensors, grouped by the fields' `where` filters."""

    fields: dict[str, object]  # field -> tensor (all rows of its group)
    groups: dict[str, list[str]]  # group -> its fields
    sizes: dict[str, int]  # group -> rows
    labels: np.ndarray | None = None

    @classmethod
    def build(cls, spec: Spec, split: str) -> SplitData:
        import torch

        arrays = load_arrays(spec)
        groups, fields, sizes = {}, {}, {}
        for g, (names, keep) in group_rows(spec, split).items():
            groups[g] = names
            sizes[g] = len(keep)
            for name in names:
                fields[name] = torch.from_numpy(_field_array(spec.data.fields[name], arrays, keep, spec.infos[name]))
        labels = None
        if spec.data.sampler.name == "class_balanced":
            lf = spec.data.sampler.config.get("field") or next(
                (f for f in spec.data.fields if spec.infos[f].dtype == "int64" and spec.infos[f].classes), None
            )
            if lf is None:
                raise DataError("sampler class_balanced needs an integer label field (with `classes`)")
            labels = fields[lf].numpy()
        return cls(fields, groups, sizes, labels)

    def batches(
        self, spec: Spec, epoch: int, *, shuffle: bool = True, batch: int | None = None, shard: tuple[int, int] = (0, 1)
    ) -> list[dict]:
        """The epoch's batches (same for the same seed and epoch), each {field: tensor}. Unshuffled
        (evaluation) batches of a fixed-factor sampler are its blocks, whatever ``batch``."""
        d = spec.data
        sampler = d.sampler if shuffle else SAMPLERS.choose("sequential")
        block = block_size(spec)
        if not shuffle and block is not None:  # whole fixed-factor blocks, never mixed (clamp_latents)
            batch = block
        ctx = SamplerContext(
            self.sizes,
            batch or d.batch,
            d.drop_last and shuffle,
            self.labels,
        )
        rng = np.random.default_rng([spec.seed, epoch, 0xBA7C])
        plan = sampler.instance.epoch(sampler.config, ctx, rng)
        rank, world = shard
        if world > 1:
            per = len(plan) // world
            plan = plan[rank * per : (rank + 1) * per]
        out = []
        for b in plan:
            out.append({f: self.fields[f][b[g]] for g, names in self.groups.items() for f in names})
        return out

    def __len__(self) -> int:
        return min(self.sizes.values())


def steps_per_epoch(n: int, batch: int, drop_last: bool) -> int:
    return n // batch if drop_last else math.ceil(n / batch)
