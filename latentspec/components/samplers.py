"""Samplers: which rows go into each batch. Pure numpy (no torch).

A sampler sees the training rows as one or more *groups* (the fields' `where:` filters; a
plain spec has one group) and returns, for an epoch, a list of batches, each a mapping
group -> row positions within that group.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from latentspec.components._kinds import SAMPLERS
from latentspec.components._registry import Component, Param


@dataclasses.dataclass(frozen=True)
class SamplerContext:
    sizes: dict[str, int]  # group -> number of rows
    batch: int
    drop_last: bool = False
    labels: np.ndarray | None = None  # per row of the single group, for class_balanced


class SamplerComponent(Component):
    #: the dataset must be loaded with ``load_grouped`` (fixed_factors)
    grouped: bool = False

    def epoch(self, cfg: dict, ctx: SamplerContext, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
        raise TypeError(f"sampler {self.name!r} draws no batches")

    @staticmethod
    def _chunks(order: np.ndarray, batch: int, drop_last: bool) -> list[np.ndarray]:
        n = len(order)
        stop = n - n % batch if drop_last and n >= batch else n
        return [order[i : i + batch] for i in range(0, stop, batch)]


@SAMPLERS.register("shuffle")
class Shuffle(SamplerComponent):
    """A fresh seeded permutation of the rows every epoch (the default)."""

    def epoch(self, cfg, ctx, rng):
        ((group, n),) = ctx.sizes.items()
        return [{group: b} for b in self._chunks(rng.permutation(n), ctx.batch, ctx.drop_last)]


@SAMPLERS.register("sequential")
class Sequential(SamplerComponent):
    """Rows in order (evaluation, debugging); several groups are zipped row by row."""

    def epoch(self, cfg, ctx, rng):
        n = min(ctx.sizes.values())
        return [dict.fromkeys(ctx.sizes, b) for b in self._chunks(np.arange(n), ctx.batch, ctx.drop_last)]


@SAMPLERS.register("class_balanced")
class ClassBalanced(SamplerComponent):
    """Every batch holds the classes of `field` in equal numbers (rows of rare classes repeat)."""

    params = (
        Param(
            "field",
            "str",
            None,
            "the integer label field (default: the first field with `classes`)",
            default_doc="first field with classes",
        ),
    )

    def epoch(self, cfg, ctx, rng):
        ((group, n),) = ctx.sizes.items()
        labels = ctx.labels
        classes = np.unique(labels)
        per = max(1, ctx.batch // len(classes))
        pools = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
        steps = -(-n // (per * len(classes)))
        batches = []
        for s in range(steps):
            rows = [np.take(p, np.arange(s * per, (s + 1) * per), mode="wrap") for p in pools]
            batches.append({group: rng.permutation(np.concatenate(rows))})
        return batches


@SAMPLERS.register("paired")
class Paired(SamplerComponent):
    """Independent permutations of each field group (e.g. identity A and identity B), zipped."""

    def epoch(self, cfg, ctx, rng):
        n = min(ctx.sizes.values())
        orders = {g: rng.permutation(size)[:n] for g, size in ctx.sizes.items()}
        starts = self._chunks(np.arange(n), ctx.batch, ctx.drop_last)
        return [{g: o[s] for g, o in orders.items()} for s in starts]


@SAMPLERS.register("fixed_factors")
class FixedFactors(SamplerComponent):
    """DC-IGN batches: all generating factors fixed but one (`vary`), batches of `batch` rows.

    The dataset is rendered in blocks of `batch` rows (``load_grouped``); the field `vary`
    holds the index of the varying factor. Blocks are shuffled, never split.
    """

    grouped = True
    params = (
        Param("vary", "strs", None, "the factors that vary, one per batch, in turn"),
        Param("batch", "int", None, "rows per batch (default: data.batch)", minimum=2, default_doc="data.batch"),
    )

    def epoch(self, cfg, ctx, rng):
        ((group, n),) = ctx.sizes.items()
        block = cfg.get("batch") or ctx.batch
        blocks = rng.permutation(n // block)
        return [{group: np.arange(b * block, (b + 1) * block)} for b in blocks]
