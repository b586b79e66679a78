"""latentspec.run: a run directory read back (load_run) without the trainer and without data."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from _tiny import tiny_spec
from safetensors.torch import load_file

from latentspec.compiler._compile import table_key
from latentspec.errors import RunError
from latentspec.run import load_run, table_sizes_of
from latentspec.spec import load_spec
from latentspec.train.trainer import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLO = os.path.join(ROOT, "tests", "gallery", "glo.yaml")

_AUDIT_LOAD = """
import json, os, sys
opened = []
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        opened.append(os.fsdecode(args[0]))
sys.addaudithook(hook)
from latentspec.run import load_run
spec, model = load_run(sys.argv[1])
print("AUDIT " + json.dumps({"opened": opened, "rows": model.module_of("z").weight.shape[0]}))
"""


@pytest.fixture(scope="module")
def glo_run(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("glo")
    run = str(folder / "run")
    train(load_spec(tiny_spec(GLO, str(folder), rows=120, epochs=1)), run, quiet=True, device="cpu")
    return run


def test_load_run_sizes_latent_tables_from_the_checkpoint_without_data(glo_run):
    res = subprocess.run([sys.executable, "-c", _AUDIT_LOAD, glo_run], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    audit = json.loads(next(line for line in res.stdout.splitlines() if line.startswith("AUDIT "))[6:])
    assert audit["rows"] == 90  # the training split of 120 rows
    data = [p for p in audit["opened"] if p.endswith((".npz", ".npy", ".gz", "-ubyte", ".png", ".jpg"))]
    assert data == []
    assert any(p.endswith("weights.safetensors") for p in audit["opened"])  # the hook saw the files


def test_load_run_gives_the_trained_weights(glo_run):
    spec, model = load_run(glo_run)
    saved = load_file(os.path.join(glo_run, "checkpoints", "last", "weights.safetensors"))
    assert table_sizes_of(spec, os.path.join(glo_run, "checkpoints", "last")) == {"z": 90}
    assert torch.equal(model.state_dict()[table_key("z")], saved[table_key("z")])
    assert not model.training


def test_a_run_without_spec_is_refused(tmp_path):
    with pytest.raises(RunError, match="not a run directory"):
        load_run(str(tmp_path))
