"""One tiny trained run shared by the reliability tests (each test works on its own copy)."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # for `from _reliability import ...` under any pytest import mode
    sys.path.insert(0, HERE)

from _reliability import TINY, VAE  # noqa: E402


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> str:
    from latentspec.spec import load_spec
    from latentspec.train.trainer import train

    run = str(tmp_path_factory.mktemp("reliability") / "run")
    train(load_spec(VAE, TINY), run, quiet=True, device="cpu")
    return run


@pytest.fixture
def run_copy(trained_run, tmp_path) -> str:
    out = str(tmp_path / "run")
    shutil.copytree(trained_run, out)
    return out
