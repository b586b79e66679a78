"""Latent tables update row-wise: a step reads and writes only the batch's rows (sparse lookup
gradients, lazy Adam / SGD / Adagrad), projects only those rows, and resumes bit-exactly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torch.nn import functional as F

from latentspec.nn import optim
from latentspec.nn.modules import LatentTable
from latentspec.spec import load_spec
from latentspec.train.trainer import Trainer, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLO = os.path.join(ROOT, "tests", "gallery", "glo.yaml")
TINY = ["data.split.train=192", "data.split.test=64", "data.batch=64", "train.epochs=2"]


def trainer(tmp_path, *extra: str) -> Trainer:
    return Trainer(load_spec(GLO, [*TINY, *extra]), str(tmp_path / "run"), quiet=True)


def one_step(t: Trainer, batch: dict) -> None:
    stage = t.spec.train.stages[0]
    forward, plan, opt, lrs = t.begin_stage(stage)
    t.step(stage, forward, plan, opt, lrs, batch, 0, 0.0)
    return opt


def test_a_step_changes_and_projects_only_the_batch_rows(tmp_path):
    t = trainer(tmp_path)
    t._init_tables()
    table = t.model.module_of("z")
    batch = t.train_data.batches(t.spec, 0)[0]
    rows = batch["i"].unique()
    with torch.no_grad():
        out = torch.ones(len(table.weight), dtype=torch.bool)
        out[rows] = False
        away = int(out.nonzero()[0])
        table.weight[away] *= 3.0  # off the sphere: a projection of every row would move it
    before = table.weight.detach().clone()
    opt = one_step(t, batch)
    assert isinstance(opt, optim.Optimizers)
    assert [type(p).__name__ for p in opt.parts] == ["Adam", "SparseAdam"]
    assert table.sparse and table.weight.grad.is_sparse
    after = table.weight.detach()
    assert torch.equal(after[out], before[out])  # untouched rows: bit-identical, not projected
    assert torch.equal(after[away], before[away]) and after[away].norm() > 2.9
    assert not torch.isclose(after[rows], before[rows]).all(dim=1).any()  # every batch row moved
    torch.testing.assert_close(after[rows].norm(dim=1), torch.ones(len(rows)))  # and is projected


def test_dense_updates_when_asked_or_when_the_setting_has_no_row_form(tmp_path):
    for extra in (["train.table_updates=dense"], ["train.optimizer.weight_decay=0.001"]):
        t = trainer(tmp_path, *extra)
        t._init_tables()
        batch = t.train_data.batches(t.spec, 0)[0]
        opt = one_step(t, batch)
        assert isinstance(opt, torch.optim.Adam), extra
        table = t.model.module_of("z")
        assert not table.sparse and not table.weight.grad.is_sparse
        torch.testing.assert_close(table.weight.norm(dim=1), torch.ones(len(table.weight)))


def test_row_wise_adam_is_adam_when_every_row_is_in_every_batch():
    torch.manual_seed(0)
    dense, rows = LatentTable(12, 5).double(), LatentTable(12, 5).double()  # float64: formulas, not rounding
    rows.load_state_dict(dense.state_dict())
    rows.sparse = True
    # eps ~ 0: SparseAdam adds eps to sqrt(v) before the bias correction, Adam after it
    a = torch.optim.Adam(dense.parameters(), lr=0.01, eps=1e-30)
    b = optim.rowwise("Adam", [{"params": list(rows.parameters())}], {"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-30})
    target = torch.randn(12, 5, dtype=torch.float64)
    for step in range(20):
        index = torch.randperm(12, generator=torch.Generator().manual_seed(step))
        for table, opt in ((dense, a), (rows, b)):
            opt.zero_grad(set_to_none=True)
            F.mse_loss(table(index), target[index]).backward()
            optim.grad_norm_(list(table.parameters()), None)
            opt.step()
    torch.testing.assert_close(rows.weight, dense.weight, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("name", "kw"), [("SGD", {"lr": 0.1}), ("Adagrad", {"lr": 0.1, "eps": 1e-10})])
def test_row_wise_sgd_and_adagrad_touch_only_the_batch(name, kw):
    table = LatentTable(10, 3)
    table.sparse = True
    opt = optim.Optimizers([optim.rowwise(name, [{"params": [table.weight]}], kw)])
    before = table.weight.detach().clone()
    table(torch.tensor([2, 2, 7])).pow(2).sum().backward()
    opt.step()
    changed = (table.weight != before).any(dim=1).nonzero().flatten().tolist()
    assert changed == [2, 7]


def test_gradient_norm_and_clipping_of_sparse_gradients_match_the_dense_ones():
    torch.manual_seed(1)
    index = torch.tensor([1, 4, 1, 9])  # a row twice: its gradients add up
    tables = [LatentTable(10, 4), LatentTable(10, 4)]
    tables[1].load_state_dict(tables[0].state_dict())
    tables[1].sparse = True
    lin = [torch.nn.Linear(4, 2), torch.nn.Linear(4, 2)]
    lin[1].load_state_dict(lin[0].state_dict())
    norms = []
    for table, layer in zip(tables, lin):
        layer(table(index)).pow(2).sum().backward()
        norms.append(optim.grad_norm_([table.weight, *layer.parameters()], 0.5))
    torch.testing.assert_close(norms[1], norms[0])
    assert tables[1].weight.grad.is_sparse
    torch.testing.assert_close(tables[1].weight.grad.to_dense(), tables[0].weight.grad)
    torch.testing.assert_close(lin[1].weight.grad, lin[0].weight.grad)


def test_row_wise_training_resumes_bit_exactly(tmp_path):
    spec = load_spec(GLO, [*TINY, "train.eval_every=0"])
    straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
    train(spec, straight, quiet=True)
    train(load_spec(GLO, [*TINY, "train.eval_every=0", "train.epochs=1"]), split, quiet=True)
    train(spec, split, quiet=True, resume=True, force=True)
    from safetensors.torch import load_file

    for name in ("weights.safetensors", "optimizer.safetensors"):
        a = load_file(os.path.join(straight, "checkpoints", "last", name))
        b = load_file(os.path.join(split, "checkpoints", "last", name))
        assert a.keys() == b.keys() and a
        for k in a:
            assert torch.equal(a[k], b[k]), (name, k)


def test_a_checkpoint_of_another_optimizer_layout_is_refused():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3, 2))
    both = optim.Optimizers([torch.optim.Adam([a]), torch.optim.SparseAdam([b])])
    saved = both.state_dict()
    assert [g["optimizer"] for g in saved["param_groups"]] == ["Adam", "SparseAdam"]
    both.load_state_dict(saved)
    swapped = {**saved, "param_groups": saved["param_groups"][::-1]}
    with pytest.raises(ValueError, match="not those of Adam"):
        both.load_state_dict(swapped)


def torchrun(out: str, *overrides: str, resume: bool = False) -> None:
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    args += ["-m", "latentspec", "train", GLO, "--out", out, "--quiet", "--device", "cpu"]
    args += [a for s in [*TINY, "train.eval_every=0", *overrides] for a in ("--set", s)]
    args += ["--resume", "--force"] if resume else []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.mark.slow
def test_torchrun_shards_the_table_and_resumes_bit_exactly(tmp_path):
    """2 CPU processes: each rank updates the rows of its own examples (row % 2 == rank), the
    checkpoint gathers them, and 1 epoch + resume gives the bytes of 2 straight epochs."""
    from safetensors.torch import load_file

    straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
    torchrun(straight, "train.clip_grad=1.0")
    torchrun(split, "train.clip_grad=1.0", "train.epochs=1")
    first = load_file(os.path.join(split, "checkpoints", "last", "weights.safetensors"))
    torchrun(split, "train.clip_grad=1.0", resume=True)
    spec = load_spec(GLO, TINY)
    t = Trainer(spec, str(tmp_path / "init"), quiet=True)
    t._init_tables()
    init = t.model.module_of("z").weight.detach()
    table = next(k for k in first if k.endswith("weight") and first[k].shape == init.shape)
    # after one epoch every row moved (each rank's rows, gathered), and all are on the sphere
    assert not torch.isclose(first[table], init).all(dim=1).any()
    torch.testing.assert_close(first[table].norm(dim=1), torch.ones(len(init)))
    for name in ("weights.safetensors", "optimizer.safetensors"):
        a = load_file(os.path.join(straight, "checkpoints", "last", name))
        b = load_file(os.path.join(split, "checkpoints", "last", name))
        assert a.keys() == b.keys() and a
        for k in a:
            assert torch.equal(a[k], b[k]), (name, k)
