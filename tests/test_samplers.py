"""Samplers: which rows go into each batch."""

from __future__ import annotations

import numpy as np

from latentspec.components import SAMPLERS, load_all
from latentspec.components.samplers import SamplerContext

load_all()


def epoch(name, ctx, cfg=None, seed=0):
    return SAMPLERS[name]().epoch(SAMPLERS[name].resolve(cfg or {}), ctx, np.random.default_rng(seed))


def test_shuffle_covers_every_row_once_and_is_seeded():
    ctx = SamplerContext({"*": 10}, 4)
    batches = epoch("shuffle", ctx)
    rows = np.concatenate([b["*"] for b in batches])
    assert sorted(rows) == list(range(10)) and [len(b["*"]) for b in batches] == [4, 4, 2]
    assert all((a["*"] == b["*"]).all() for a, b in zip(batches, epoch("shuffle", ctx)))
    assert not all(np.array_equal(a["*"], b["*"]) for a, b in zip(batches, epoch("shuffle", ctx, seed=1)))
    assert [len(b["*"]) for b in epoch("shuffle", SamplerContext({"*": 10}, 4, drop_last=True))] == [4, 4]


def test_class_balanced_batches_hold_classes_equally():
    labels = np.array([0] * 90 + [1] * 10)
    batches = epoch("class_balanced", SamplerContext({"*": 100}, 10, labels=labels))
    for b in batches:
        counts = np.bincount(labels[b["*"]], minlength=2)
        assert counts.tolist() == [5, 5]


def test_paired_draws_each_group_independently():
    batches = epoch("paired", SamplerContext({"identity=A": 20, "identity=B": 30}, 8))
    a = np.concatenate([b["identity=A"] for b in batches])
    b_ = np.concatenate([b["identity=B"] for b in batches])
    assert len(a) == len(b_) == 20 and len(set(a)) == 20 and len(set(b_)) == 20
    assert not np.array_equal(a, b_)


def test_fixed_factors_keeps_blocks_whole():
    batches = epoch("fixed_factors", SamplerContext({"*": 60}, 20), {"vary": ["rotation"], "batch": 20})
    assert sorted(int(b["*"][0]) for b in batches) == [0, 20, 40]
    for b in batches:
        assert np.array_equal(b["*"], np.arange(b["*"][0], b["*"][0] + 20))
