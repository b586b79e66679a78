"""`python -m benchmarks.reproduce iwae --quick`: the IWAE-against-VAE result runs end to end at a
tiny size (both trainings, `eval --iwae`, `check --baseline vae=VAE_RUN`), and its JSON has every
number the README row reads and the IWAE spec's three claims as `latentspec check` decided them: one
within the run, two on the VAE run (their verdicts are not asserted: at this size they mean
nothing)."""

from __future__ import annotations

import json

import pytest

from benchmarks import reproduce
from benchmarks.seeds import load_all

VAE_KEYS = {"neg_elbo", "neg_elbo_recon", "neg_elbo_kl", "iwae_nll", "iwae_samples", "active_units", "latent_dim"}


def test_the_vae_results_are_registered():
    assert {"vae_latent_size", "vae2d", "iwae"} <= set(load_all())


@pytest.mark.slow
def test_iwae_quick(tmp_path):
    result = reproduce.reproduce("iwae", quick=True, out=str(tmp_path))
    with open(tmp_path / "iwae.json") as f:
        assert json.load(f) == result
    numbers = result["numbers"]
    assert set(numbers) == {"epochs", "vae", "iwae"}
    for n in (numbers["vae"], numbers["iwae"]):
        assert set(n) == VAE_KEYS
        assert n["latent_dim"] == 20 and 0 <= n["active_units"] <= 20 and n["iwae_samples"] == 5
        assert abs(n["neg_elbo_recon"] + n["neg_elbo_kl"] - n["neg_elbo"]) < 1e-3 * n["neg_elbo"]
    # every claim went through `latentspec check`, the cross-run ones with --baseline vae=VAE_RUN
    assert set(result["claims"]) == {"iwae_mnist"}
    checked, nll, units = result["claims"]["iwae_mnist"]
    assert checked["name"] == "iwae_tighter" and isinstance(checked["holds"], bool)
    assert (checked["value"], checked["target"]) == (numbers["iwae"]["iwae_nll"], numbers["iwae"]["neg_elbo"])
    assert (nll["name"], nll["claim"]) == ("iwae_beats_vae", "test.iwae_nll < vae:test.iwae_nll")
    assert (nll["value"], nll["target"]) == (numbers["iwae"]["iwae_nll"], numbers["vae"]["iwae_nll"])
    assert nll["holds"] == (nll["value"] < nll["target"])
    assert (units["value"], units["target"]) == (numbers["iwae"]["active_units"], numbers["vae"]["active_units"])
    assert units["holds"] == (units["value"] >= units["target"])
    for c in (nll, units):
        assert (c["value_from"], c["target_from"]) == ("RUNS/iwae_mnist", "vae=RUNS/vae_mnist")
        assert "checked_by" not in c
    assert "latentspec check RUNS/iwae_mnist --baseline vae=RUNS/vae_mnist" in result["steps"]
    trained = [s.split(" --out ")[0] for s in result["steps"] if s.startswith("latentspec train")]
    assert trained == ["latentspec train specs/vae_mnist.yaml", "latentspec train specs/iwae_mnist.yaml"]
    # same data and epochs for both: the two trainings got the same --set list
    sets = [s.split(" --set ", 1)[1] for s in result["steps"] if s.startswith("latentspec train")]
    assert sets[0] == sets[1]
    assert [s for s in result["steps"] if s.startswith("latentspec eval")] == [
        "latentspec eval RUNS/vae_mnist --iwae 5",
        "latentspec eval RUNS/iwae_mnist --iwae 5",
    ]
    assert all(len(row) == 3 for row in result["rows"])
