"""Every script in examples/ runs end to end at a small size."""

from __future__ import annotations

import glob
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "examples", "*.py")))
SMALL = {
    "deploy_onnxruntime.py": ["--epochs", "1"],
    "edit_latents.py": ["--epochs", "8"],
    "inpaint_glo.py": ["--epochs", "5", "--train-rows", "1500", "--steps", "100"],
    "swap_faces.py": ["--epochs", "2", "--size", "600"],
}


def load(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_example_is_listed():
    assert sorted(os.path.basename(p) for p in EXAMPLES) == sorted(SMALL)


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_example_runs(path, tmp_path):
    result = load(path).main(["--out", str(tmp_path / "out"), *SMALL[os.path.basename(path)]])
    pngs = glob.glob(str(tmp_path / "out" / "*.png"))
    assert pngs, "the example wrote no picture"
    name = os.path.basename(path)
    if name == "inpaint_glo.py":
        assert result["hole_l1"] < result["baseline_l1"] * 1.5
    if name == "swap_faces.py":
        assert result["swap_l1"] < 1.0
    if name == "edit_latents.py":
        assert result["to_seven"][-1] < result["to_seven"][0]  # the edit moves 1s towards 7s
