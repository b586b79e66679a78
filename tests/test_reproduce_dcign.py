"""`python -m benchmarks.reproduce dcign --quick`: the DC-IGN result runs end to end at a tiny size
(both clamping modes and the plain VAE, `eval --disentanglement`, `viz`, `check`), and its JSON has
every number the README row reads and its claims checked (their verdicts are not asserted: at this
size they mean nothing)."""

from __future__ import annotations

import json

import pytest

from benchmarks import reproduce


@pytest.mark.slow
def test_dcign_quick(tmp_path):
    result = reproduce.reproduce("dcign", quick=True, out=str(tmp_path))
    with open(tmp_path / "dcign.json") as f:
        assert json.load(f) == result
    numbers = result["numbers"]
    assert set(numbers) == {"dcign_mean", "dcign_first", "vae"}
    for n in numbers.values():
        assert 0 <= n["mig"] <= 1 and 0 <= n["sap"] <= 1 and 0 <= n["factorvae"] <= 1
        assert set(n["dci"]) == {"disentanglement", "completeness", "informativeness"}
        assert set(n["factors"]) >= {"rotation", "scale", "posx", "posy"}
        assert all(0 <= f["spearman"] <= 1 for f in n["factors"].values())
    # the spec's claims went through `latentspec check` for both DC-IGN runs ...
    for name in ("dcign_mean", "dcign_first"):
        checked = result["claims"][name]
        assert [c["name"] for c in checked] == [f"{f}_in_its_unit" for f in ("rotation", "scale", "posx", "posy")]
        assert all(isinstance(c["holds"], bool) for c in checked)
    # ... and the cross-run claim was decided from the two measured MIGs
    for c, name in zip(result["claims"]["derived"], ("dcign_mean", "dcign_first"), strict=True):
        assert c["value"] == numbers[name]["mig"] and c["target"] == numbers["vae"]["mig"]
        assert c["holds"] == (c["value"] > c["target"])
    trained = [s for s in result["steps"] if s.startswith("latentspec train specs/dcign_shapes.yaml")]
    assert [s.split(" --set ")[1] for s in trained] == ["nodes.clamp.to=mean", "nodes.clamp.to=first", "nodes.dec.in=z"]
    assert sum(s.startswith("latentspec viz") for s in result["steps"]) == 3
    assert len(result["figures"]) == 3
    for png in result["figures"]:
        with open(png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert all(len(row) == 3 for row in result["rows"])
