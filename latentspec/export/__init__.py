"""Export a trained model as a bundle: one ONNX graph per entry point + manifest.json
(docs/bundle-format.md), optionally ``model.pt2``, a Triton model repository and TorchScript.

>>> from latentspec.export import export_run
>>> manifest = export_run("runs/vae", "vae.bundle", verify=True)  # doctest: +SKIP
>>> sorted(manifest["entries"])  # doctest: +SKIP
['decode', 'encode', 'sample']

The bundle is written into a temporary folder beside ``out`` and renamed at the end, so a failed
export never leaves half a bundle (an existing bundle at ``out`` is replaced only on success).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence

from latentspec.components.exports import DEFAULT_OPSET
from latentspec.errors import ExportError, RunError, did_you_mean

FORMATS = ("onnx", "pt2", "triton", "torchscript")  # the writers below; names from the EXPORTS registry


def _formats(formats: str | Iterable[str]) -> list[str]:
    from latentspec.components import EXPORTS, load_all

    load_all()
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    items = [f.strip().lower() for f in items if f and f.strip()]
    unknown = [f for f in items if f not in EXPORTS or f not in FORMATS]
    if unknown:
        raise ExportError(f"unknown export format {unknown[0]!r}; choose from: {', '.join(EXPORTS.names())}")
    # the ONNX graphs are the bundle: the manifest, the runtime and Triton all use them
    return ["onnx", *[f for f in FORMATS[1:] if f in items]]


def _min_opset() -> int:
    from latentspec.components import EXPORTS, load_all

    load_all()
    return EXPORTS["onnx"].param("opset").minimum or 1


def _entry_names(spec, entries: Sequence[str] | None) -> list[str]:
    if not spec.export:
        raise ExportError(f"spec '{spec.name}' has no `export:` entry points to export")
    if not entries:
        return list(spec.export)
    unknown = [e for e in entries if e not in spec.export]
    if unknown:
        raise ExportError(f"no entry point {unknown[0]!r} in spec '{spec.name}'; it has: {', '.join(spec.export)}")
    return list(dict.fromkeys(entries))


def _check_out(out: str) -> None:
    if os.path.isfile(out):
        raise ExportError(f"--out {out} is a file; the bundle is a folder")
    if os.path.isdir(out) and os.listdir(out) and not os.path.isfile(os.path.join(out, "manifest.json")):
        raise ExportError(f"--out {out} is a folder that is not a bundle; choose another folder or empty it")


def _install(tmp: str, out: str) -> None:
    """Move the finished bundle into place (replacing an older bundle there)."""
    if not os.path.exists(out):
        os.replace(tmp, out)
        return
    old = tempfile.mkdtemp(dir=os.path.dirname(out), prefix=f".{os.path.basename(out)}.old-")
    os.rmdir(old)
    os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _eval_mode(model):
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


def export_model(
    spec,
    model,
    out: str,
    *,
    formats: str | Iterable[str] = ("onnx",),
    verify: bool = False,
    opset: int = DEFAULT_OPSET,
    metrics: dict | None = None,
    entries: Sequence[str] | None = None,
    directions: dict | None = None,
    groups: dict | None = None,
    claims: list[dict] | None = None,
) -> dict:
    """Export ``model`` (compiled from ``spec``) as a bundle folder ``out``; return the manifest.

    formats: any of onnx (always written), pt2, triton, torchscript. verify: run every entry in
    ONNX Runtime against PyTorch and the finished bundle through latentspec-runtime; raise
    :class:`ExportError` with a table when they differ. entries: only these entry points.
    groups: the latents' groups as ``latentspec.run.directions.latent_groups`` gives them
    (default: computed now, each group named after a continuous factor calibrated on the
    training split).
    """
    from latentspec.export._manifest import build_manifest, plain_permissions, write_manifest
    from latentspec.export._onnx import export_graph_entry
    from latentspec.export._optimize import export_optimize_entry
    from latentspec.nn.modules import frozen
    from latentspec.spec import dump_resolved

    fmts = _formats(formats)
    names = _entry_names(spec, entries)
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < _min_opset():
        raise ExportError(f"--opset must be an integer >= {_min_opset()}, got {opset!r}")
    if groups is None:
        from latentspec.run.directions import latent_groups

        groups = latent_groups(spec, model)
    out = os.path.abspath(out)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    _check_out(out)
    try:
        tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(out)}.tmp-")
    except OSError as exc:
        raise ExportError(f"--out {out}: cannot write in {parent} ({exc.strerror})") from None
    try:
        plain_permissions(tmp)
        with _eval_mode(model), frozen(model):
            exported = []
            for name in names:
                e = spec.export[name]
                export = export_optimize_entry if e.optimize else export_graph_entry
                exported.append(export(model, e, tmp, opset))
            blocks: dict = {"onnx": [ex.file for ex in exported]}
            if "pt2" in fmts:
                from latentspec.export._pt2 import export_pt2

                blocks["pt2"] = export_pt2(model, tmp)
            if "torchscript" in fmts:
                from latentspec.export._pt2 import export_torchscript

                blocks["torchscript"] = [f"torchscript/{n}.pt" for n in export_torchscript(model, tmp, exported)]
            manifest_entries = {ex.name: ex.manifest for ex in exported}
            if "triton" in fmts:
                from latentspec.export._triton import write_repository

                blocks["triton"] = write_repository(tmp, manifest_entries)
            manifest = build_manifest(
                spec,
                dump_resolved(spec),
                manifest_entries,
                tmp,
                metrics=metrics,
                directions=directions,
                groups=groups,
            )
            if claims is not None:
                manifest["claims"] = claims  # the spec's claims, checked on the run's eval.json
            manifest["formats"] = blocks
            write_manifest(tmp, manifest)
            if verify:
                from latentspec.export._verify import verify as run_verify

                manifest["verified"] = run_verify(model, tmp, exported)
                write_manifest(tmp, manifest)
        _install(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _directions(spec, model, run: str, asked: Sequence[str] | dict | None, groups: dict) -> dict:
    """{name: {latent, vector, source}}: the run's ``directions.json``, plus requests
    (``latentspec.run.directions.FORMS``): ``NAME=FIELD:A:B`` (the mean code of training examples
    with FIELD = B minus that of FIELD = A), ``NAME=group:GROUP`` (the group's direction from
    ``groups``: +1 of its factor when calibrated) or ``NAME=unit:K`` (code unit K)."""
    from latentspec.run.directions import read_directions

    try:
        found = dict(read_directions(run))
    except RunError as exc:
        raise ExportError(str(exc)) from None
    if isinstance(asked, dict):
        found.update(asked)
    elif asked:
        from latentspec.run.directions import code_latent, direction, group_direction, parse_direction

        requests = [parse_direction(text) for text in asked]  # every request's syntax before any work
        latent = code_latent(spec)
        for r in requests:
            if r.kind == "means":
                vector = direction(spec, model, r.field, r.a, r.b)
                found[r.name] = {"latent": latent, "vector": [float(v) for v in vector], "source": r.source}
                continue
            if latent is None:
                raise ExportError(f"--direction {r.name}={r.source}: the model has no encoder code to edit")
            dim = spec.latents[latent].dim
            if r.kind == "unit":
                if r.unit >= dim:
                    raise ExportError(f"--direction {r.name}={r.source}: latent '{latent}' has units 0..{dim - 1}")
                vector = [0.0] * dim
                vector[r.unit] = 1.0
                found[r.name] = {"latent": latent, "vector": vector, "source": r.source, "units": "code"}
                continue
            known = groups.get(latent) or {}
            if r.group not in known:
                hint = did_you_mean(r.group, known)
                listing = f"; it has: {', '.join(known)}" if known else " (it declares no `groups`)"
                raise ExportError(
                    f"--direction {r.name}={r.source}: latent '{latent}' has no group '{r.group}'{hint}{listing}"
                )
            try:
                vector, units = group_direction(dim, known[r.group])
            except RunError as exc:  # a group of several units without calibration
                raise ExportError(f"--direction {r.name}={r.source}: {exc}") from None
            found[r.name] = {"latent": latent, "vector": [float(v) for v in vector], "source": r.source, "units": units}
    return found


def export_run(
    run: str,
    out: str,
    *,
    formats: str | Iterable[str] = ("onnx",),
    verify: bool = False,
    opset: int = DEFAULT_OPSET,
    which: str = "last",
    entries: Sequence[str] | None = None,
    directions: Sequence[str] | dict | None = None,
    allow_python: bool = False,
    calibrate: bool = True,
) -> dict:
    """Export the trained run directory ``run`` (checkpoint ``which``: last | best) as bundle ``out``.

    The manifest's metrics are the run's ``eval.json``, else the last epoch's test metrics; its
    directions those of ``RUN/directions.json`` and ``directions`` (``NAME=FIELD:A:B``,
    ``NAME=group:GROUP`` or ``NAME=unit:K`` strings, or ``{name: {"latent": ..., "vector": [...]}}``);
    its latents' groups are calibrated against the factors they are named after (see
    ``latentspec.run.directions``; ``calibrate=False``: groups recorded without calibration,
    so exporting reads no training data for them).
    """
    from latentspec.export._manifest import run_metrics
    from latentspec.run import load_run
    from latentspec.run.directions import latent_groups

    spec, model = load_run(run, which=which, allow_python=allow_python)
    metrics = run_metrics(run)
    _refuse_non_finite(run, which, model, metrics)
    groups = latent_groups(spec, model if calibrate else None)
    from latentspec.spec._claims import claims_for_export

    claims = claims_for_export(spec, run)  # a claim on a baseline run: as `latentspec check` recorded it
    return export_model(
        spec,
        model,
        out,
        claims=claims or None,
        formats=formats,
        verify=verify,
        opset=opset,
        metrics=metrics,
        entries=entries,
        directions=_directions(spec, model, run, directions, groups),
        groups=groups,
    )


def _refuse_non_finite(run: str, which: str, model, metrics: dict) -> None:
    """A run whose weights or metrics hold NaN/Inf is not exported (it would serve garbage)."""
    import torch

    from latentspec._finite import nonfinite_numbers

    for name, value in model.state_dict().items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ExportError(f"{run}: checkpoint '{which}' has non-finite weights ({name}); nothing exported")
    bad = nonfinite_numbers(metrics, "metrics")
    if bad:
        raise ExportError(f"{run}: the run's {bad[0]} is not finite; nothing exported")


__all__ = ["FORMATS", "export_model", "export_run"]
