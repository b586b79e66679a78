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
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence

from latentspec.errors import ExportError

FORMATS = ("onnx", "pt2", "triton", "torchscript")  # the writers below; names from the EXPORTS registry
DEFAULT_OPSET = 18


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
) -> dict:
    """Export ``model`` (compiled from ``spec``) as a bundle folder ``out``; return the manifest.

    formats: any of onnx (always written), pt2, triton, torchscript. verify: run every entry in
    ONNX Runtime against PyTorch and the finished bundle through latentspec-runtime; raise
    :class:`ExportError` with a table when they differ. entries: only these entry points.
    """
    from latentspec.export._manifest import build_manifest, plain_permissions, write_manifest
    from latentspec.export._onnx import export_graph_entry
    from latentspec.export._optimize import export_optimize_entry, frozen
    from latentspec.spec import dump_resolved

    fmts = _formats(formats)
    names = _entry_names(spec, entries)
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < _min_opset():
        raise ExportError(f"--opset must be an integer >= {_min_opset()}, got {opset!r}")
    out = os.path.abspath(out)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    _check_out(out)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(out)}.tmp-")
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
                spec, dump_resolved(spec), manifest_entries, tmp, metrics=metrics, directions=directions
            )
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


def _directions(spec, model, run: str, asked: Sequence[str] | dict | None) -> dict:
    """{name: {latent, vector}}: the run's ``directions.json``, plus ``NAME=FIELD:A:B`` requests
    (the mean code of training examples with FIELD = B minus that of FIELD = A)."""
    found: dict = {}
    path = os.path.join(run, "directions.json")
    if os.path.isfile(path):
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            raise ExportError(f"{path}: cannot read it ({exc})") from None
        found.update(data if isinstance(data, dict) else {})
    if isinstance(asked, dict):
        found.update(asked)
    elif asked:
        from latentspec.export._manifest import code_output, latent_means
        from latentspec.train.directions import direction, parse_direction

        encode = spec.export.get("encode")
        code = code_output(spec, encode) if encode is not None else None
        latent = latent_means(spec).get(code, code if code in spec.latents else None)
        for text in asked:
            name, field, a, b = parse_direction(text)
            found[name] = {"latent": latent, "vector": [float(v) for v in direction(spec, model, field, a, b)]}
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
) -> dict:
    """Export the trained run directory ``run`` (checkpoint ``which``: last | best) as bundle ``out``.

    The manifest's metrics are the run's ``eval.json``, else the last epoch's test metrics; its
    directions those of ``RUN/directions.json`` and ``directions`` (``NAME=FIELD:A:B`` strings,
    or ``{name: {"latent": ..., "vector": [...]}}``).
    """
    from latentspec.export._manifest import run_metrics
    from latentspec.train.trainer import load_run

    spec, model = load_run(run, which=which)
    return export_model(
        spec,
        model,
        out,
        formats=formats,
        verify=verify,
        opset=opset,
        metrics=run_metrics(run),
        entries=entries,
        directions=_directions(spec, model, run, directions),
    )


__all__ = ["FORMATS", "export_model", "export_run"]
