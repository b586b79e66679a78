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
    # every claim is the spec's, through `latentspec check RUN --baseline vae=VAE_RUN` for both
    # DC-IGN runs; none is decided by the module
    assert set(result["claims"]) == {"dcign_mean", "dcign_first"}
    for name in ("dcign_mean", "dcign_first"):
        checked = result["claims"][name]
        units = [f"{f}_in_its_unit" for f in ("rotation", "scale", "posx", "posy")]
        assert [c["name"] for c in checked] == [*units, "mig_beats_vae"]
        assert all(isinstance(c["holds"], bool) for c in checked)
        assert not any("checked_by" in c for c in checked)
        (mig,) = (c for c in checked if c["name"] == "mig_beats_vae")
        # the MIG of this run against the VAE run's, each read from its own eval.json
        assert mig["baselines"] == ["vae"]
        assert (mig["value_from"], mig["target_from"]) == (f"RUNS/{name}", "vae=RUNS/vae")
        assert mig["value"] == numbers[name]["mig"] and mig["target"] == numbers["vae"]["mig"]
        assert mig["holds"] == (mig["value"] > mig["target"])
        assert f"latentspec check RUNS/{name} --baseline vae=RUNS/vae" in result["steps"]
        (row,) = (r for r in result["rows"] if r[0].startswith(f"{name}: disentanglement.mig > vae:"))
        assert " vs vae's " in row[1] and row[2] == mig["holds"]
    assert not any("derived" in row[0] for row in result["rows"])
    trained = [s for s in result["steps"] if s.startswith("latentspec train specs/dcign_shapes.yaml")]
    assert [s.split(" --set ")[1] for s in trained] == ["nodes.clamp.to=mean", "nodes.clamp.to=first", "nodes.dec.in=z"]
    assert sum(s.startswith("latentspec viz") for s in result["steps"]) == 3
    assert len(result["figures"]) == 3
    for png in result["figures"]:
        with open(png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert all(len(row) == 3 for row in result["rows"])
