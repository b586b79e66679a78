"""`python -m benchmarks.reproduce faceswap --quick`: the deepfake-swap result runs end to end at a
tiny size (the paired autoencoders trained from their spec, evaluated, the swap measured against
the ground-truth render of B in A's pose next to both baselines). Its verdicts at this size mean
nothing; only that both claims were checked on the numbers the JSON reports."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import reproduce
from benchmarks.seeds import generation


@pytest.mark.slow
def test_quick_faceswap_measures_the_swap_against_both_baselines(tmp_path):
    result = reproduce.reproduce("faceswap", quick=True, out=str(tmp_path))
    with open(tmp_path / "faceswap.json") as f:
        assert json.load(f) == result
    n = result["numbers"]
    assert n["test_examples"] > 0
    l1 = n["swap_l1"]
    assert set(l1) == set(n["swap_mse"]) == {"swap", "a_unchanged", "b_mean_face"}
    assert all(0.0 < v < 1.0 for v in l1.values())
    claims = result["claims"]["faceswap_faces"]
    assert [c["name"] for c in claims] == ["swap_beats_a_unchanged", "swap_beats_b_mean_face"]
    for c, base in zip(claims, ("a_unchanged", "b_mean_face"), strict=True):
        assert isinstance(c["holds"], bool) and c["derived"]
        assert c["value"] == l1["swap"] and c["target"] == l1[base]
        assert c["holds"] == (l1["swap"] < l1[base])
    (png,) = result["figures"]
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert any(s.startswith("latentspec train specs/faceswap_faces.yaml") for s in result["steps"])


def test_sharpness_and_iou_measures():
    flat, edge = np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 4, 4))
    edge[..., 2:] = 1.0
    assert generation.sharpness(flat) == 0.0
    assert generation.sharpness(edge) == pytest.approx(3 / 9)  # one column step in each of 3 rows of 3
    a = np.zeros((2, 1, 2, 2))
    a[0, 0, 0] = 1.0  # 2 pixels
    b = a.copy()
    b[0, 0, 1, 0] = 1.0  # 3 pixels, 2 shared
    assert generation._iou(b, a) == pytest.approx((2 / 3 + 1.0) / 2)  # the second pair: both empty
