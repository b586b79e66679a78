"""DC-IGN evaluation keeps fixed-factor blocks whole. `clamp_latents` reads its whole batch (the
mean or first row, and the group that varies), so a held-out term, the collapse check and the epoch
pictures must run the training graph one block at a time; evaluating it on batches of
`data.test_batch` rows that mixed blocks made the test reconstruction of a learning DC-IGN rise
while the training loss fell, and the collapse check flag it."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from latentspec.compiler import compile_spec
from latentspec.data.pipeline import SplitData, block_size
from latentspec.run import build_term
from latentspec.spec import load_spec
from latentspec.train.collapse import eval_rows, forward_rows
from latentspec.train.trainer import batch_args, evaluate_terms

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "specs", "dcign_shapes.yaml")
TINY = ["data.dataset.shapes.size=400", "data.split.train=200", "data.split.test=200", "data.test_batch=500"]


@pytest.fixture(scope="module")
def dcign():
    spec = load_spec(SPEC, TINY)
    torch.manual_seed(0)
    model = compile_spec(spec)
    model.eval()
    return spec, model, SplitData.build(spec, "test")


def test_evaluation_batches_are_the_fixed_factor_blocks(dcign):
    spec, _, test = dcign
    block = block_size(spec)
    assert block == 20
    batches = test.batches(spec, 0, shuffle=False, batch=spec.data.test_batch)
    assert len(batches) == len(test) // block
    for b in batches:
        assert len(b["vary"]) == block and len(set(b["vary"].tolist())) == 1


def test_held_out_terms_are_the_mean_over_blocks(dcign):
    spec, model, test = dcign
    terms = {n: build_term(spec, t) for n, t in spec.objective.items()}
    got = evaluate_terms(spec, model, terms, ["rec"], test, torch.device("cpu"))["rec"]
    gm, plan = model.graph(["x_logits", "x"], training=True)
    g = torch.Generator().manual_seed((spec.seed + 7919) % 2**64)
    per_block, mixed = [], []
    with torch.no_grad():
        for i in range(0, len(test), 20):
            b = {f: v[i : i + 20] for f, v in test.fields.items()}
            outs = gm(*batch_args(model, plan, b, g, torch.device("cpu")))
            per_block.append(float(terms["rec"](outs["x_logits"], outs["x"])))
        outs = gm(*batch_args(model, plan, dict(test.fields), g, torch.device("cpu")))
        mixed = float(terms["rec"](outs["x_logits"], outs["x"]))
    assert got == pytest.approx(np.mean(per_block), rel=1e-5)
    assert got != pytest.approx(mixed, rel=1e-5)  # clamping a batch that mixes blocks is not the same


def test_collapse_rows_are_whole_blocks_and_run_block_by_block(dcign):
    _, model, test = dcign
    rows = eval_rows(test, 50, block=20)
    assert len(rows["x"]) == 60  # three evenly spaced blocks hold 50 rows
    for i in range(0, 60, 20):
        assert len(set(rows["vary"][i : i + 20].tolist())) == 1
    gm, plan = model.graph(["z_c"], training=True)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        outs = forward_rows(gm, lambda b: batch_args(model, plan, b, g, torch.device("cpu")), rows, 20)
    z = outs["z_c"]
    keep = {0: 0, 1: 1, 2: 2, 3: 3}  # vary index -> the one unit that varies in its block
    for i in range(0, 60, 20):
        v = int(rows["vary"][i])
        others = [u for u in range(z.shape[1]) if u != keep[v]]
        assert torch.allclose(z[i : i + 20, others], z[i : i + 1, others].expand(20, -1))  # clamped per block
        assert z[i : i + 20, keep[v]].std() > 0


def test_epoch_picture_reconstructs_one_whole_block(tmp_path):
    from latentspec.train.pictures import epoch_blocks
    from latentspec.train.trainer import Trainer

    tr = Trainer(load_spec(SPEC, TINY), str(tmp_path), quiet=True, device="cpu")
    tr.model.eval()
    blocks = dict(epoch_blocks(tr, 16))
    block = {f: v[:20] for f, v in tr.test_data.fields.items()}  # the first of the split's blocks
    gm, plan = tr.model.graph(["x_logits"], training=True)
    with torch.no_grad():
        outs = gm(*batch_args(tr.model, plan, block, torch.Generator().manual_seed(0), torch.device("cpu")))
    np.testing.assert_array_equal(blocks["input"], block["x"][:16].numpy())
    np.testing.assert_allclose(blocks["reconstruction"], torch.sigmoid(outs["x_logits"][:16]).numpy(), atol=1e-6)
