"""Exporter tests: small specs (no training), each exported once per module and shared.

``latentspec_runtime`` is imported from ``<repo>/runtime`` when it is not installed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if importlib.util.find_spec("latentspec_runtime") is None:
    sys.path.insert(0, str(ROOT / "runtime"))
if str(Path(__file__).parent) not in sys.path:  # for `import _export_specs` under any import mode
    sys.path.insert(0, str(Path(__file__).parent))

from _export_specs import GLO_SPEC, LOOP_SPEC  # noqa: E402

VAE_OVERRIDES = ["data.split.train=200", "data.split.test=100", "train.epochs=1", "train.samples_every=0"]


def _spec_file(folder: Path, name: str, text: str) -> str:
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="session")
def vae():
    """(spec, model) of specs/vae_mnist.yaml, shrunk, untrained."""
    from latentspec.compiler import compile_spec
    from latentspec.spec import load_spec

    spec = load_spec(str(ROOT / "specs" / "vae_mnist.yaml"), VAE_OVERRIDES)
    return spec, compile_spec(spec)


@pytest.fixture(scope="session")
def vae_bundle(vae, tmp_path_factory) -> tuple[str, dict]:
    """The VAE exported with every format and verified: (bundle folder, manifest)."""
    from latentspec.export import export_model

    spec, model = vae
    out = str(tmp_path_factory.mktemp("vae") / "vae.bundle")
    manifest = export_model(spec, model, out, formats="onnx,pt2,triton,torchscript", verify=True, opset=18)
    return out, manifest


@pytest.fixture(scope="session")
def glo(tmp_path_factory):
    """(spec, model) of a GLO-like spec; the table rows are random unit codes (as after training)."""
    import torch

    from latentspec.compiler import compile_spec
    from latentspec.data.pipeline import table_sizes
    from latentspec.spec import load_spec

    spec = load_spec(_spec_file(tmp_path_factory.mktemp("glo_spec"), "glo_tiny", GLO_SPEC))
    model = compile_spec(spec, table_sizes=table_sizes(spec))
    table = model.module_of("z")
    table.init_from(torch.randn(table.weight.shape, generator=torch.Generator().manual_seed(0)))
    return spec, model


@pytest.fixture(scope="session")
def glo_bundle(glo, tmp_path_factory) -> tuple[str, dict]:
    from latentspec.export import export_model

    spec, model = glo
    out = str(tmp_path_factory.mktemp("glo") / "glo.bundle")
    return out, export_model(spec, model, out, formats="onnx", verify=True)


@pytest.fixture(scope="session")
def loop(tmp_path_factory):
    from latentspec.compiler import compile_spec
    from latentspec.spec import load_spec

    spec = load_spec(_spec_file(tmp_path_factory.mktemp("loop_spec"), "loop_tiny", LOOP_SPEC))
    return spec, compile_spec(spec)


@pytest.fixture(scope="session")
def loop_bundle(loop, tmp_path_factory) -> tuple[str, dict]:
    from latentspec.export import export_model

    spec, model = loop
    out = str(tmp_path_factory.mktemp("loop") / "loop.bundle")
    return out, export_model(spec, model, out, formats="onnx,triton", verify=True)
