"""The bundle's ``manifest.json`` (docs/bundle-format.md): what each entry point takes and gives.

Torch-free: everything here is read off the spec and the compiler's plan, so the same rules
describe a tensor whichever format it is exported in.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from latentspec._jsonl import read_rows
from latentspec.graph import Field, Placeholder, Plan
from latentspec.run._inputs import class_names
from latentspec.spec._model import EntrySpec, Spec
from latentspec_runtime._atomic import sha256_file, write_text

FORMAT = "latentspec.bundle"
FORMAT_VERSION = 1
MEANINGS = ("image", "mask", "latent", "noise", "label", "iterations", "value")


# -- files ---------------------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def plain_permissions(path: str) -> None:
    """The permissions an ordinary mkdir() would give a folder (mkdtemp's are 0700); files get
    0644 from the atomic-write helper."""
    os.chmod(path, 0o777 & ~_umask())


def file_hashes(root: str) -> dict[str, str]:
    """sha256 of every file under ``root`` but manifest.json, keyed by relative posix path."""
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            if rel != "manifest.json" and not name.startswith(".tmp-"):
                out[rel] = sha256_file(path)
    return out


# -- tensors -------------------------------------------------------------------------------------


def _range(r) -> list[float] | None:
    return None if r is None else [float(r[0]), float(r[1])]


def mask_tensors(spec: Spec, entry: EntrySpec | None = None) -> set[str]:
    """Tensors that are masks by declaration, never by name: the input of a term in its "mask"
    role (``masked_recon``'s third), or an entry-only input declared with ``meaning: mask``."""
    terms = list(spec.objective.values()) + list(entry.terms if entry else ())
    found = {m for t in terms if (m := t.role("mask")) is not None}
    if entry is not None:
        found |= {t for t, decl in entry.local.items() if decl.meaning == "mask"}
    return found


def latent_means(spec: Spec) -> dict[str, str]:
    """{tensor: latent} for the means of latents: the first input of a reparameterize node
    whose output is a latent (``z_mu`` of a VAE)."""
    out = {}
    for n in spec.nodes.values():
        if n.kind == "op" and n.type == "reparameterize" and n.outputs and n.outputs[0] in spec.latents:
            out.setdefault(n.inputs[0], n.outputs[0])
    return out


def iterations_default(spec: Spec, entry: EntrySpec, plan: Plan) -> int:
    """The trip count a loop entry runs when the caller gives none."""
    if entry.iterations is not None:
        return int(entry.iterations)
    for name in plan.loops:
        return int(spec.nodes[name].cfg.get("steps", 2))
    return 2


def _batched_shape(ph: Placeholder) -> list:
    batch = "batch" if ph.batch_factor == 1 else f"batch*{ph.batch_factor}"
    return [batch, *(ph.shape or ())]


def describe_input(spec: Spec, entry: EntrySpec, plan: Plan, ph: Placeholder) -> dict[str, Any]:
    """One manifest input: name, dtype, shape, meaning, latent, range, distribution(, default)."""
    info = spec.infos.get(ph.tensor)
    d: dict[str, Any] = {
        "name": ph.name,
        "dtype": ph.dtype,
        "shape": _batched_shape(ph),
        "meaning": "value",
        "latent": None,
        "range": None,
        "distribution": None,
    }
    if ph.kind == "steps":
        d.update(shape=[], meaning="iterations", default=iterations_default(spec, entry, plan))
        return d
    if ph.kind == "noise":
        d.update(meaning="noise", distribution=ph.distribution or "normal", latent=ph.latent)
        return d
    t = ph.tensor
    declared = entry.local[t].meaning if t in entry.local else None
    rng = _range(info.range) if info is not None else None
    shape = ph.shape or ()
    if t in spec.latents:
        d.update(meaning="latent", latent=t)
    elif declared in MEANINGS and declared not in ("noise", "iterations", "latent"):
        d["meaning"] = declared
    elif t in mask_tensors(spec, entry):
        d["meaning"] = "mask"
    elif ph.dtype == "int64" and info is not None and info.classes:
        d["meaning"] = "label"
        rng = [0, int(info.classes) - 1]
        names = class_names(spec, t)  # the runtime takes y=heart as well as y=0
        if names:
            d["classes"] = list(names)
    elif ph.dtype == "float32" and len(shape) == 3 and isinstance(spec.producers.get(t, Field(t)), Field):
        d["meaning"] = "image"  # a field, or the entry's own input (no producer in the model)
    if d["meaning"] == "mask":
        rng = rng or [0.0, 1.0]
    d["range"] = rng
    return d


def describe_output(
    spec: Spec, name: str, shape: tuple[int, ...] | None, dtype: str = "float32", batch_factor: int = 1
) -> dict[str, Any]:
    """One manifest output: name, dtype, shape, meaning, latent, range. ``batch_factor`` k > 1:
    k rows per example (a stochastic node drawing k samples), leading axis ``batch*k``."""
    info = spec.infos.get(name)
    shape = tuple(shape if shape is not None else (info.shape if info is not None and info.shape else ()))
    d: dict[str, Any] = {
        "name": name,
        "dtype": dtype,
        "shape": ["batch" if batch_factor == 1 else f"batch*{batch_factor}", *shape],
        "meaning": "value",
        "latent": None,
        "range": _range(info.range) if info is not None else None,
        "distribution": None,
    }
    means = latent_means(spec)
    if name in spec.latents:
        d.update(meaning="latent", latent=name)
    elif name in means:
        d.update(meaning="latent", latent=means[name])
    elif name in mask_tensors(spec):
        d["meaning"] = "mask"
    elif dtype == "int64" and info is not None and info.classes:
        d.update(meaning="label", range=[0, int(info.classes) - 1])
    elif dtype == "float32" and len(shape) == 3:
        d["meaning"] = "image"
    return d


def code_output(spec: Spec, entry: EntrySpec) -> str | None:
    """The ``code`` of an entry of kind ``encode``: the first output that is the mean of a
    latent, else the first output that is a latent."""
    if entry.kind != "encode":
        return None
    means = latent_means(spec)
    for t in entry.outputs:
        if t in means:
            return t
    return next((t for t in entry.outputs if t in spec.latents), None)


# -- the manifest --------------------------------------------------------------------------------


def latents_block(spec: Spec, groups: dict[str, dict] | None = None) -> dict[str, Any]:
    """Each latent's dim, prior, projection and table flag; a latent that declares groups also
    its ``groups``: those of ``groups[latent]`` (with factor calibration, from
    ``latentspec.run.directions.latent_groups``), else each group's units alone."""
    out: dict[str, Any] = {}
    for name, lat in spec.latents.items():
        out[name] = {
            "dim": lat.dim,
            "prior": lat.prior,
            "project": lat.project,
            "radius": lat.radius if lat.project == "l2_ball" else None,
            "table": lat.table,
        }
        if lat.groups:
            given = (groups or {}).get(name) or {}
            out[name]["groups"] = {
                g: given.get(g) or {"units": [int(u) for u in units], "factor": None, "calibration": None}
                for g, units in lat.groups.items()
            }
    return out


def spec_block(text: str) -> dict[str, str]:
    return {"text": text, "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}


def build_manifest(
    spec: Spec,
    spec_text: str,
    entries: dict[str, dict],
    root: str,
    *,
    metrics: dict | None = None,
    directions: dict | None = None,
    verified: dict | None = None,
    groups: dict | None = None,
) -> dict[str, Any]:
    """The manifest of the bundle folder ``root`` (its files hashed now); ``groups``: the
    latents' groups with factor calibration (see :func:`latents_block`)."""
    from latentspec import __version__

    files = file_hashes(root)
    for e in entries.values():
        e["sha256"] = files[e["file"]]
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "latentspec_version": __version__,
        "name": spec.name,
        "spec": spec_block(spec_text),
        "latents": latents_block(spec, groups),
        "entries": entries,
        "directions": directions or {},
        "metrics": metrics or {},
        "files": files,
    }
    if verified is not None:
        manifest["verified"] = verified
    return manifest


def write_manifest(root: str, manifest: dict[str, Any]) -> None:
    """Write strict JSON: a NaN or infinity anywhere is refused, never written as ``NaN``."""
    from latentspec._finite import nonfinite_numbers
    from latentspec.errors import ExportError

    bad = nonfinite_numbers(manifest)
    if bad:
        raise ExportError(f"the manifest would hold a non-finite number at {bad[0]}; nothing non-finite is exported")
    write_text(os.path.join(root, "manifest.json"), json.dumps(manifest, indent=2, allow_nan=False) + "\n")


def run_metrics(run: str) -> dict[str, Any]:
    """The run's ``eval.json`` (its split blocks), else the last epoch row's ``test`` metrics."""
    path = os.path.join(run, "eval.json")
    if os.path.isfile(path):
        try:
            with open(path) as f:
                data = json.load(f)
            return {k: v for k, v in data.items() if isinstance(v, dict)}
        except (OSError, json.JSONDecodeError):
            pass
    last = None
    path = os.path.join(run, "metrics.jsonl")
    if os.path.isfile(path):
        for row in read_rows(path):
            if row.get("kind") == "epoch" and isinstance(row.get("test"), dict):
                last = row["test"]
    return {"test": last} if last is not None else {}
