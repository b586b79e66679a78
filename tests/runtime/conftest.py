"""Test setup: import the runtime (and ``_bundles``) from the source tree when not installed."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
RUNTIME_SRC = HERE.parents[1] / "runtime"

if importlib.util.find_spec("latentspec_runtime") is None:
    sys.path.insert(0, str(RUNTIME_SRC))
if str(HERE) not in sys.path:  # for `import _bundles` under any pytest import mode
    sys.path.insert(0, str(HERE))

import _bundles  # noqa: E402

import latentspec_runtime  # noqa: E402


@pytest.fixture
def weights() -> _bundles.Weights:
    return _bundles.Weights()


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    """A folder holding the standard tiny bundle (every entry kind)."""
    return _bundles.make_bundle(tmp_path / "tiny.bundle")


@pytest.fixture
def bundle(bundle_dir: Path) -> latentspec_runtime.Bundle:
    return latentspec_runtime.Bundle.load(bundle_dir, device="cpu")


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for child Pythons: they import the same latentspec_runtime as the tests."""
    package_parent = Path(latentspec_runtime.__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package_parent), env.get("PYTHONPATH")]))
    return env
