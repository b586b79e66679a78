"""`latentspec eval RUN --edit-fidelity DIRECTION`: does a latent edit move a held-out item
towards the item the dataset renders with the edited factor changed?

For a run on a procedural dataset (``shapes``, ``hands``, ``faces``: every item is rendered from
its factors, so the ground truth of a changed factor can be rendered too), a direction d that
moves factor F (its ``factor``; ``per_alpha`` factor units per unit of alpha):

* the held-out items are the test rows whose F + step stays inside F's range;
* the truth is each of them rendered again with F + step (``ProceduralDataset.rerender``);
* the edit is decode(code(x) + alpha·d) with alpha = step / per_alpha, code the encoder's
  deterministic code (a VAE's posterior mean) and decode the spec's `decode` entry; the runtime's
  ``Bundle.edit(x, d, alpha)`` computes the same;
* written to ``eval.json`` under ``edit.<name>``: ``mse_before``, the MSE of decode(code(x)) (the
  model's item before the edit) to the truth, ``mse_after``, that of the edit, ``mse_input``, that
  of the unedited input, ``fraction_closer``, the fraction of items whose own MSE the edit lowers,
  and, when the dataset marks the region F changes (``faces``: the eyes, for gaze_x, gaze_y and
  eyes), the same MSEs over that region's pixels only (``region_mse_*``).

DIRECTION is ``NAME`` (a direction of ``RUN/directions.json`` that records ``factor`` and
``factor_per_alpha``, e.g. one from explicit pairs of renders), or a request in the form of
``export --direction`` (``latentspec.run.directions.FORMS``) built on the training split:
``NAME=FIELD:A:B``, the group-means direction, moves F (the dataset factor FIELD is read from) by
the mean of F over the B rows minus that over the A rows per unit of alpha; ``NAME=group:GROUP``, a
calibrated group, moves its factor by 1 per unit of alpha.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence

import numpy as np
import torch

from latentspec.errors import RunError
from latentspec.spec import Spec

FLAG = "--edit-fidelity"


@dataclasses.dataclass(frozen=True)
class EditDirection:
    """A direction in the code and the dataset factor it moves: ``per_alpha`` factor units per
    unit of alpha."""

    name: str
    vector: np.ndarray
    factor: str
    per_alpha: float
    source: str


def _dataset(spec: Spec):
    """The spec's procedural dataset and its resolved config; RunError for any other."""
    from latentspec.data.pipeline import _dataset_cfg

    ds = spec.data.dataset
    inst = getattr(ds, "instance", None)
    if not getattr(inst, "procedural", False) or not hasattr(inst, "rerender"):
        raise RunError(
            f"{FLAG}: dataset '{ds.name}' cannot render an item again with a changed factor; "
            "it needs a procedural dataset (shapes, hands, faces)"
        )
    return inst, inst.resolve(_dataset_cfg(spec))


def _factor(spec: Spec, name: str, what: str):
    """The dataset's continuous, not fixed factor ``name`` (a ``Factor``)."""
    inst, cfg = _dataset(spec)
    factors = {f.name: f for f in inst.factors(cfg)}
    f = factors.get(name)
    continuous = [n for n, g in factors.items() if not g.categorical and not g.fixed]
    if f is None or f.categorical:
        kind = "is categorical" if f is not None else f"is no factor of dataset '{spec.data.dataset.name}'"
        raise RunError(
            f"{FLAG} {what}: '{name}' {kind}; an edit is measured along a continuous factor "
            f"({', '.join(continuous) or 'the dataset has none'})"
        )
    if f.fixed:
        raise RunError(f"{FLAG} {what}: factor '{name}' is fixed by the dataset's `factors:`, so no item can change it")
    return f


def _field_factor(spec: Spec, field: str, what: str) -> str:
    """The dataset factor that data field ``field`` holds as it is (no scale, no encoding)."""
    f = spec.data.fields.get(field)
    if f is None:
        raise RunError(f"{FLAG} {what}: no data field '{field}' (fields: {', '.join(spec.data.fields)})")
    if not isinstance(f.source, str) or f.scale is not None or f.encode is not None:
        raise RunError(
            f"{FLAG} {what}: field '{field}' is not one dataset factor as it is (it is stacked, scaled or "
            "encoded), so a step of the direction has no factor units"
        )
    _factor(spec, f.source, what)
    return f.source


def _means_per_alpha(spec: Spec, field: str, factor: str, a: str, b: str) -> float:
    """Mean factor over the training rows with ``field`` in b, minus that over a: the factor
    change of one unit of the group-means direction (``latentspec.run.directions.direction``
    takes the same rows)."""
    from latentspec.data.pipeline import SplitData, group_rows, load_arrays
    from latentspec.run._codes import code_field
    from latentspec.run.directions import _select

    data = SplitData.build(spec, "train")
    n = len(data.fields[code_field(spec)])
    values = data.fields[field].numpy()[:n]
    _, rows = group_rows(spec, "train")[spec.data.fields[field].group]
    raw = load_arrays(spec)[factor][rows][: len(values)].astype(np.float64)
    means = []
    for v in (a, b):
        sel = _select(values, field, v)
        if not sel.any():
            raise RunError(f"direction: no training example has {field} = {v}")
        means.append(float(raw[sel].mean()))
    return means[1] - means[0]


def _from_request(spec: Spec, model, text: str) -> EditDirection:
    from latentspec.run.directions import code_latent, direction, group_direction, latent_groups, parse_direction

    r = parse_direction(text)
    what = f"{r.name}={r.source}"
    latent = code_latent(spec)
    if latent is None:
        raise RunError(f"{FLAG} {what}: the model has no encoder code to edit")
    if r.kind == "unit":
        raise RunError(
            f"{FLAG} {what}: a code unit moves no factor of known size; use NAME=FIELD:A:B (group means of a "
            "factor field) or NAME=group:GROUP (a group calibrated to its factor)"
        )
    if r.kind == "means":
        factor = _field_factor(spec, r.field, what)
        per_alpha = _means_per_alpha(spec, r.field, factor, r.a, r.b)
        if not abs(per_alpha) > 1e-12:
            raise RunError(f"{FLAG} {what}: the two groups have the same mean {factor}, so the direction moves it by 0")
        vector = direction(spec, model, r.field, r.a, r.b)
        return EditDirection(r.name, np.asarray(vector, np.float64), factor, per_alpha, r.source)
    known = latent_groups(spec, model).get(latent) or {}
    record = known.get(r.group)
    if record is None:
        listing = f"; it has: {', '.join(known)}" if known else " (it declares no `groups`)"
        raise RunError(f"{FLAG} {what}: latent '{latent}' has no group '{r.group}'{listing}")
    cal = record.get("calibration")
    if cal is None:
        raise RunError(
            f"{FLAG} {what}: group '{r.group}' is not calibrated (no continuous factor of that name), "
            "so its direction moves no factor of known size"
        )
    factor = _field_factor(spec, r.group, what) if cal["source"] == "field" else r.group
    _factor(spec, factor, what)
    vector, _ = group_direction(spec.latents[latent].dim, record)
    return EditDirection(r.name, np.asarray(vector, np.float64), factor, 1.0, r.source)


def _from_run(spec: Spec, run: str, name: str) -> EditDirection:
    from latentspec.run.directions import read_directions

    path = os.path.join(run, "directions.json")
    found = read_directions(run)
    if name not in found:
        have = f"{path} has: {', '.join(found)}" if found else f"{path} has none"
        raise RunError(
            f"{FLAG} {name}: no direction '{name}' ({have}); give NAME=FIELD:A:B or NAME=group:GROUP to build one"
        )
    d = found[name]
    vector, factor, per = d.get("vector"), d.get("factor"), d.get("factor_per_alpha")
    if not isinstance(factor, str) or isinstance(per, bool) or not isinstance(per, (int, float)) or not per:
        raise RunError(
            f"{FLAG} {name}: {path} does not record which factor the direction moves and by how much: it needs "
            '"factor" (a dataset factor) and "factor_per_alpha" (its change, in its units, per unit of alpha)'
        )
    if not isinstance(vector, list) or not vector:
        raise RunError(f"{FLAG} {name}: {path} holds no vector for it")
    _factor(spec, factor, name)
    return EditDirection(name, np.asarray(vector, np.float64), factor, float(per), str(d.get("source") or name))


def resolve(spec: Spec, model, run: str, text: str) -> EditDirection:
    """The direction ``--edit-fidelity`` names: a request (``NAME=...``) or ``RUN/directions.json``'s."""
    return _from_request(spec, model, text) if "=" in text else _from_run(spec, run, text)


def _parts(spec: Spec) -> tuple[str, str, list[str], str, str]:
    """(image field, code tensor, encoder conditions, decode entry, its code input)."""
    from latentspec.run._codes import code_tensors, conditions
    from latentspec.run.directions import code_latent
    from latentspec.spec._evalkeys import decoder_of_field

    field, code = code_tensors(spec)
    dec = decoder_of_field(spec)
    latent = code_latent(spec)
    if dec is None or dec[2] != field or dec[1] != latent:
        raise RunError(
            f"{FLAG}: it needs a `decode` entry from the code latent ({latent or 'none'}) to the image field "
            f"'{field}' the encoder reads, e.g. `decode: {{in: [z], out: [x_mean]}}`"
        )
    return field, code, conditions(spec, [code], [field]), dec[0], dec[1]


def _mse(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    d = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2
    return float(d[np.broadcast_to(mask, d.shape)].mean() if mask is not None else d.mean())


@torch.no_grad()
def edit_fidelity_report(
    spec: Spec, model, run: str, directions: Sequence[str], step: float | None = None, device: str = "cpu"
) -> dict:
    """{name: metrics} for every direction of ``directions`` (see the module's doc)."""
    from latentspec.data.pipeline import SplitData, group_rows, load_arrays
    from latentspec.train.pictures import run_entry

    inst, cfg = _dataset(spec)
    field, code, conds, dec_entry, dec_in = _parts(spec)
    if step is not None and not (math.isfinite(step) and step != 0.0):
        raise RunError(f"--edit-step {step:g}: the step must be a finite number other than 0")
    resolved = [resolve(spec, model, run, text) for text in directions]
    names = [d.name for d in resolved]
    if len(set(names)) != len(names):
        raise RunError(f"{FLAG}: two directions named '{next(n for n in names if names.count(n) > 1)}'")
    source = spec.data.fields[field].source
    test = SplitData.build(spec, "test")
    arrays = load_arrays(spec)
    _, rows = group_rows(spec, "test")[spec.data.fields[field].group]
    factor_names = [f.name for f in inst.factors(cfg)]
    dev = torch.device(device)
    enc, _ = model.graph([code], [field, *conds], training=False)

    def code_of(x: np.ndarray, keep: np.ndarray) -> np.ndarray:
        out = []
        for s in range(0, len(x), 250):
            ins = [torch.from_numpy(x[s : s + 250]).to(dev)]
            ins += [test.fields[c][keep[s : s + 250]].to(dev) for c in conds]
            out.append(enc(*ins).flatten(1).double().cpu().numpy())
        return np.concatenate(out)

    def decode(z: np.ndarray) -> np.ndarray:
        out = []
        for s in range(0, len(z), 250):
            zb = torch.from_numpy(z[s : s + 250].astype(np.float32)).to(dev)
            out.append(run_entry(model, dec_entry, {dec_in: zb}, len(zb))[0].double().cpu().numpy())
        return np.concatenate(out)

    report = {}
    for d in resolved:
        f = _factor(spec, d.factor, d.name)
        lo, hi = f.range
        size = step if step is not None else (hi - lo) / 2
        values = arrays[d.factor][rows].astype(np.float64)
        keep = np.flatnonzero((values + size >= lo) & (values + size <= hi))
        if len(keep) == 0:
            raise RunError(f"{FLAG} {d.name}: no test item has {d.factor} + {size:g} inside its range [{lo:g}, {hi:g}]")
        x = test.fields[field][keep].numpy()
        factors = {n: arrays[n][rows][keep] for n in factor_names}
        try:
            same = inst.rerender(cfg, factors, {})
            truth = inst.rerender(cfg, factors, {d.factor: (values[keep] + size).astype(np.float32)})
        except ValueError as exc:
            raise RunError(f"{FLAG} {d.name}: {exc}") from None
        if source not in same or same[source].shape != x.shape:
            raise RunError(f"{FLAG}: field '{field}' is not an array the dataset renders ('{source}')")
        drift = float(np.abs(same[source] - x).max())
        if drift > 1e-5:
            raise RunError(
                f"{FLAG}: rendering the test items again does not give field '{field}' (max difference {drift:.3g}); "
                "the field must be the rendered array as it is (no `scale`)"
            )
        z = code_of(x, keep)
        if d.vector.shape != (z.shape[1],):
            raise RunError(f"{FLAG} {d.name}: its vector has {d.vector.size} units; the code has {z.shape[1]}")
        alpha = size / d.per_alpha
        before, after = decode(z), decode(z + alpha * d.vector)
        gt = truth[source]

        def per_item(img: np.ndarray, gt: np.ndarray = gt) -> np.ndarray:
            return ((img - gt.astype(np.float64)) ** 2).reshape(len(gt), -1).mean(1)

        out = {
            "factor": d.factor,
            "source": d.source,
            "factor_per_alpha": d.per_alpha,
            "step": float(size),
            "alpha": float(alpha),
            "examples": len(keep),
            "mse_input": _mse(x, gt),
            "mse_before": _mse(before, gt),
            "mse_after": _mse(after, gt),
            "fraction_closer": float((per_item(after) < per_item(before)).mean()),
        }
        mask = inst.region(cfg, d.factor, [same, truth])
        if mask is not None:
            out["region"] = inst.regions[d.factor]
            out["region_mse_input"] = _mse(x, gt, mask)
            out["region_mse_before"] = _mse(before, gt, mask)
            out["region_mse_after"] = _mse(after, gt, mask)
        report[d.name] = out
    return report
