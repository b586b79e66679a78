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
    "inpaint_glo.py": ["--epochs", "5", "--train-rows", "1500", "--steps", "100", "--batch", "32"],
    "swap_faces.py": ["--epochs", "3", "--size", "2000"],
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
        # the fill beats filling the hole with the mean of the same digits (measured in this run;
        # 0.124 against 0.154 at this size, while GLO trained with batch 128 is still behind: 0.185)
        assert result["hole_l1"] < result["baseline_l1"], result
    if name == "swap_faces.py":
        # Baselines measured on the same faces: the swap must look like B, not return A. The
        # other baseline, B's mean training face, is reported but not asserted: at full size the
        # swap does not beat it either (benchmarks/results/faceswap.json).
        assert result["swap_l1"] < result["baseline_l1"]
        assert 0.0 < result["mean_face_l1"] < result["baseline_l1"]
    if name == "edit_latents.py":
        assert result["to_seven"][-1] < result["to_seven"][0]  # the edit moves 1s towards 7s
