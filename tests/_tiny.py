"""Shrink a spec to a tiny size for tests: few rows, small batches, two short epochs per stage."""

from __future__ import annotations

import os

import yaml


def tiny_spec(path: str, out_dir: str, rows: int = 240, epochs: int = 2, batch: int = 32) -> str:
    with open(path) as f:
        raw = yaml.safe_load(f)
    data = raw["data"]
    ds = data["dataset"]
    if isinstance(ds, dict):
        ((name, cfg),) = ds.items()
        if isinstance(cfg, dict) and name in ("shapes", "hands", "faces"):
            cfg["size"] = rows * (2 if name == "faces" else 1)
    sampler = data.get("sampler")
    if isinstance(sampler, dict) and "fixed_factors" in sampler:
        batch = sampler["fixed_factors"].get("batch", batch)
    data["split"] = {"train": rows - rows // 4, "test": rows // 4}
    data["batch"] = batch
    train = raw.setdefault("train", {})
    if "stages" in train:
        for s in train["stages"]:
            if not s.get("fit"):
                s["epochs"] = epochs
    else:
        train["epochs"] = epochs
    train["samples_every"] = 0
    for entry in (raw.get("export") or {}).values():
        if "optimize" in entry:
            entry["steps"] = 10
    for term in (raw.get("objective") or {}).values():
        if isinstance(term, dict) and term.get("run"):  # a term through a trained run (perceptual)
            term["run"] = tiny_run(term["run"], out_dir)
    out = os.path.join(out_dir, os.path.basename(path))
    with open(out, "w") as f:
        yaml.safe_dump(raw, f, sort_keys=False)
    return out


def tiny_run(run: str, out_dir: str) -> str:
    """A tiny training of the spec a run path names (``runs/NAME`` is ``specs/NAME.yaml``), in
    ``out_dir``: what a spec's term that reads a trained run (e.g. a perceptual loss through a
    classifier) is pointed at in the tests."""
    from latentspec.spec import load_spec
    from latentspec.train.trainer import train

    name = os.path.basename(os.path.normpath(run))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "specs", f"{name}.yaml")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{run}: no specs/{name}.yaml trains it")
    where = os.path.join(out_dir, f"dependency-{name}")
    os.makedirs(where, exist_ok=True)
    spec = load_spec(tiny_spec(path, where, epochs=1))
    out = os.path.join(where, "run")
    if not os.path.isdir(out):
        train(spec, out, quiet=True, device="cpu")
    return out
