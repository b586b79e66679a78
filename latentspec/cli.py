"""The `latentspec` command line. Argparse only; the work happens in the packages."""

from __future__ import annotations

import argparse
import json
import os
import sys

_ALLOW_PYTHON = "allow `module: python` nodes (runs their code; specs are otherwise data)"


def _seed(text: str) -> int:
    """A seed: an integer in the uint64 range."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"a seed is an integer from 0 to 2**64-1, got {value}")
    return value


def _registry_help() -> str:
    from latentspec.components import ALL
    from latentspec.registries import load_all

    load_all()
    lines = ["components (from the registries):"]
    for reg in ALL:
        lines.append(f"  {reg.kind + 's':<16} {', '.join(reg.names())}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    from latentspec.components.exports import DEFAULT_OPSET

    p = argparse.ArgumentParser(
        prog="latentspec",
        description="Declarative latent-variable models: validate, compile, train, export.",
        epilog=_registry_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")
    sub = p.add_subparsers(dest="cmd", required=True)

    v = sub.add_parser("validate", help="check specs: YAML, schema, tensor graph")
    v.add_argument("specs", nargs="+")
    v.add_argument("--format", choices=["text", "json"], default="text")
    v.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")

    sub.add_parser("schema", help="print the JSON Schema of the spec language")
    d = sub.add_parser("docs", help="print the component tables (Markdown)")
    d.add_argument("--kind", help="only this registry")
    d.add_argument("--datasets", action="store_true", help="the datasets' arrays, shapes and factor ranges instead")

    c = sub.add_parser("compile", help="compile a spec and summarise the model")
    c.add_argument("spec")
    c.add_argument("--emit", choices=["summary", "python", "graph"], default="summary")
    c.add_argument("--format", choices=["dot", "mermaid"], default="dot", help="graph format for --emit graph")
    c.add_argument("--entry", help="with --emit python: the code of this export entry point")
    c.add_argument("-o", "--out", help="write to this file (.svg renders DOT with Graphviz)")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    c.add_argument("--allow-python", action="store_true", help=_ALLOW_PYTHON)

    t = sub.add_parser("train", help="train a spec into a run directory")
    t.add_argument("spec")
    t.add_argument("--out", required=True, help="the run directory")
    t.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec value, e.g. data.batch=64"
    )
    t.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    t.add_argument(
        "--force", action="store_true", help="with --resume: accept changed training settings (recorded in history)"
    )
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    t.add_argument("--quiet", action="store_true")
    t.add_argument("--allow-python", action="store_true", help=_ALLOW_PYTHON)

    t.add_argument(
        "--track",
        action="append",
        default=[],
        metavar="TRACKER",
        help="also stream the run to this tracker (tensorboard, mlflow; beside the spec's train.track)",
    )

    e = sub.add_parser("eval", help="evaluate a run on its test split")
    e.add_argument("run")
    e.add_argument("--allow-python", action="store_true", help=_ALLOW_PYTHON)
    e.add_argument("--iwae", type=int, metavar="K", help="importance-weighted bound with K samples (VAEs)")
    e.add_argument("--probe", metavar="FIELD", help="linear probe of the codes on a label field")
    e.add_argument(
        "--features",
        metavar="FEATURE_RUN",
        help="sample quality (FD, KID, precision/recall) in the feature space of this run's `features` entry",
    )
    e.add_argument("--feature-tensor", metavar="NAME", help="with --features: this tensor of the feature run instead")
    e.add_argument(
        "--samples",
        type=int,
        metavar="N",
        help="with --features: samples to draw (default: test size); with --class-fidelity: in all, split over the classes (default: 100 per class)",
    )
    e.add_argument(
        "--class-fidelity",
        metavar="CLASSIFIER_RUN",
        help="draw samples of each class from a conditional sampling entry and classify them with this run's `predict` entry: accuracy and confusion matrix",
    )
    e.add_argument(
        "--disentanglement", action="store_true", help="MIG, DCI, SAP, FactorVAE score against the dataset's factors"
    )
    e.add_argument(
        "--edit-fidelity",
        action="append",
        metavar="DIRECTION",
        help="edit held-out items of a procedural dataset along a direction (repeatable: NAME of RUN/directions.json, "
        "NAME=FIELD:A:B or NAME=group:GROUP) and compare with the items rendered with its factor changed: MSE before and after",
    )
    e.add_argument(
        "--edit-step",
        type=float,
        metavar="S",
        help="with --edit-fidelity: the change of the direction's factor, in its units (default: half its range)",
    )
    e.add_argument(
        "--pca",
        action="store_true",
        help="the decode entry against PCA with as many components: test MSE, cosines of the principal angles",
    )
    e.add_argument("--checkpoint", choices=["last", "best"], default="last")
    e.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")

    ck = sub.add_parser(
        "check",
        help="check the spec's `claims:` against the run's eval.json (exit 1 if one fails); writes RUN/claims.json",
    )
    ck.add_argument("run")
    ck.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="NAME=RUN",
        help="the run that the spec's baseline NAME is (claims on NAME:path read its eval.json); repeatable",
    )

    x = sub.add_parser("export", help="export a run's entry points as a verified bundle")
    x.add_argument("run")
    x.add_argument("--allow-python", action="store_true", help=_ALLOW_PYTHON)
    x.add_argument("--out", required=True, help="the bundle folder")
    x.add_argument("--format", default="onnx", help="comma-separated: onnx, pt2, triton, torchscript")
    x.add_argument("--verify", action="store_true", help="check ONNX Runtime against PyTorch (max abs diff <= 1e-4)")
    x.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    x.add_argument("--checkpoint", choices=["last", "best"], default="last")
    x.add_argument("--entry", action="append", help="only these entry points")
    x.add_argument(
        "--direction",
        action="append",
        metavar="NAME=FIELD:A:B|NAME=group:GROUP|NAME=unit:K",
        help="store a latent editing direction (repeatable): the mean code of FIELD=B minus FIELD=A; "
        "a latent group's direction (+1 of its factor when calibrated); or code unit K",
    )
    x.add_argument(
        "--no-calibrate",
        dest="calibrate",
        action="store_false",
        help="record latent groups without fitting them to the factors they are named after",
    )

    s = sub.add_parser("sample", help="draw samples from a run's prior into a PNG grid")
    s.add_argument("run")
    s.add_argument("--allow-python", action="store_true", help=_ALLOW_PYTHON)
    s.add_argument("-n", "--n", "--count", dest="n", type=int, default=64, help="number of samples (default 64)")
    s.add_argument("--seed", type=_seed, default=0, help="noise seed, 0 .. 2**64-1")
    s.add_argument("--out", "-o", required=True)
    s.add_argument("--checkpoint", choices=["last", "best"], default="last")
    s.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a named input of the sample entry, the same for every sample: a number, or for a class "
        "label its index or class name (e.g. --input y=7, --input class=heart); a conditional model "
        "sampled without its one label input draws a row per class",
    )

    vz = sub.add_parser("viz", help="traversals, 2-D manifold and scatter, interpolations and learning curves as PNGs")
    vz.add_argument("run")
    vz.add_argument("--out", "-o", help="the folder for the PNGs (default: RUN/viz)")
    vz.add_argument("--checkpoint", choices=["last", "best"], default="last")
    vz.add_argument("--seed", type=int, default=0, help="picks the example whose code is traversed")
    vz.add_argument(
        "--units", type=int, default=32, metavar="N", help="traverse the N most variable units (default 32)"
    )

    da = sub.add_parser("data", help="look at datasets")
    dsub = da.add_subparsers(dest="data_cmd", required=True)
    ds = dsub.add_parser("show", help="draw a grid of a dataset's items with factor captions")
    ds.add_argument("dataset")
    ds.add_argument("-n", "--n", "--count", dest="n", type=int, default=64, help="number of items (default 64)")
    ds.add_argument("-o", "--out", required=True, help="the PNG to write")
    ds.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dataset parameter")
    dx = dsub.add_parser(
        "export",
        help="write a split's rows, as the model sees them, to .npy/.npz for latentspec-runtime",
        description="SOURCE is a spec file or a run directory: its data section says which dataset, "
        "split and fields. .npy holds one field (--field; default: the first image field), .npz every field.",
    )
    dx.add_argument("source", help="a spec file or a run directory")
    dx.add_argument("--split", default="test", help="train or test (default test)")
    dx.add_argument("-n", "--n", "--count", dest="n", type=int, default=64, help="number of rows (default 64)")
    dx.add_argument("--field", help="with .npy: the field to write")
    dx.add_argument("-o", "--out", required=True, help="the .npy or .npz file to write")
    dx.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec value")
    _tracking_parsers(sub)
    return p


def _tracking_parsers(sub) -> None:
    """`track`, `sweep` and `compare` (latentspec.track, latentspec.sweep, latentspec.compare)."""
    tr = sub.add_parser("track", help="back-fill TensorBoard or MLflow from existing run directories")
    tr.add_argument("runs", nargs="+", metavar="RUN")
    tr.add_argument("--to", action="append", required=True, metavar="TRACKER", help="tensorboard or mlflow")
    tr.add_argument("--uri", help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else ./mlruns)")
    tr.add_argument("--experiment", help="MLflow experiment (default the spec's name)")
    tr.add_argument("--bundle", help="log this exported bundle folder as an artifact (one RUN)")

    sw = sub.add_parser(
        "sweep",
        help="search spec values with Optuna (the spec's `sweep:` section or --param)",
        description="Each trial trains normal run directories (OUT/trials/...), evaluates them and "
        "reports the metric's mean over --seeds. The study is SQLite in OUT unless --storage names a "
        "shared database; rerun the same command to resume, start more processes with --worker to share it.",
    )
    sw.add_argument("spec")
    sw.add_argument("--out", required=True, help="the sweep folder: study.db, trials/, results, best.yaml, plot.png")
    sw.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="PATH=DIST",
        help="search a spec path, e.g. 'train.optimizer.lr={loguniform: [1.0e-4, 1.0e-2]}' (uniform, int, choice)",
    )
    sw.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec value")
    sw.add_argument("--metric", help="a path into eval.json, e.g. test.neg_elbo")
    sw.add_argument("--direction", choices=["minimize", "maximize"])
    sw.add_argument("--trials", type=int, help="trials the study runs to, all workers together")
    sw.add_argument("--seeds", type=int, help="runs per trial with seeds seed..seed+K-1; the value is their mean")
    sw.add_argument("--sampler", choices=["tpe", "random"])
    sw.add_argument("--storage", metavar="URL", help="a shared study database, e.g. postgresql://user@host/db")
    sw.add_argument("--study", help="the study's name (default the spec's name)")
    sw.add_argument("--worker", action="store_true", help="only run trials (no reports): one of many processes")
    sw.add_argument(
        "--grace",
        type=int,
        default=30,
        metavar="S",
        help="retry a trial whose worker was silent this long (default 30)",
    )
    sw.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    sw.add_argument("--track", action="append", default=[], metavar="TRACKER", help="stream each trial's runs to it")
    sw.add_argument("--quiet", action="store_true")

    cp = sub.add_parser("compare", help="compare runs: mean ± std over seeds, overlaid learning curves")
    cp.add_argument("runs", nargs="+", metavar="RUN")
    cp.add_argument("--metric", action="append", default=[], metavar="PATH", help="a path into eval.json (repeatable)")
    cp.add_argument("--plot", default="curves.png", metavar="PNG", help="the learning-curve plot (default curves.png)")
    cp.add_argument("--no-plot", action="store_true")
    cp.add_argument("--format", choices=["markdown", "json"], default="markdown")


def cmd_track(args) -> int:
    from latentspec.track import backfill

    for run in backfill(args.runs, args.to, uri=args.uri, experiment=args.experiment, bundle=args.bundle):
        print(f"tracked {run} -> {', '.join(args.to)}", file=sys.stderr)
    return 0


def cmd_sweep(args) -> int:
    from latentspec.sweep import SweepOptions, run_sweep

    opts = SweepOptions(
        params=args.param,
        sets=args.set,
        metric=args.metric,
        direction=args.direction,
        trials=args.trials,
        seeds=args.seeds,
        sampler=args.sampler,
        storage=args.storage,
        study=args.study,
        worker=args.worker,
        device=args.device,
        grace=args.grace,
        track=args.track,
        quiet=args.quiet,
    )
    summary = run_sweep(args.spec, args.out, opts)
    if "table" in summary:
        print(summary["table"], end="")
        print(f"wrote {', '.join(os.path.join(args.out, f) for f in summary['files'])}", file=sys.stderr)
    return 0


def cmd_compare(args) -> int:
    from latentspec.compare import as_json, compare, plot, table

    groups, metrics = compare(args.runs, args.metric)
    print(json.dumps(as_json(groups, metrics), indent=2) if args.format == "json" else table(groups, metrics))
    if not args.no_plot:
        plot(groups, args.metric[0] if args.metric else None, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def cmd_validate(args) -> int:
    from latentspec.spec import format_diagnostics, validate_file

    every, bad = [], False
    for path in args.specs:
        spec, diags = validate_file(path, args.set)
        every.extend(diags)
        bad |= spec is None
    if args.format == "json":
        print(format_diagnostics(every, "json"))
    elif every:
        print(format_diagnostics(every))
    if not bad and args.format == "text":
        print(f"{len(args.specs)} spec{'s' if len(args.specs) > 1 else ''} valid", file=sys.stderr)
    return 1 if bad else 0


def _load(path: str, overrides: list[str]):
    from latentspec.spec import load_spec

    return load_spec(path, overrides)


def cmd_compile(args) -> int:
    from latentspec.compiler.summary import emit

    spec = _load(args.spec, args.set)
    text = emit(spec, args.emit, args.format, args.entry, allow_python=args.allow_python)
    if args.out and args.out.endswith(".svg"):
        from latentspec.compiler.summary import render_svg

        render_svg(text if args.emit == "graph" else emit(spec, "graph", "dot", None), args.out)
    elif args.out:
        from latentspec_runtime._atomic import write_text

        write_text(args.out, text + "\n")
    else:
        print(text)
    return 0


def cmd_train(args) -> int:
    from latentspec.track import tracked_train

    spec = _load(args.spec, args.set)
    summary = tracked_train(
        spec,
        args.out,
        track=args.track,
        resume=args.resume,
        device=args.device,
        quiet=args.quiet,
        allow_python=args.allow_python,
        force=args.force,
    )
    if not args.quiet:
        print(json.dumps({"run": args.out, **({"test": summary["test"]} if "test" in summary else {})}))
    return 0


def cmd_eval(args) -> int:
    from latentspec.train.evaluate import evaluate_run

    result = evaluate_run(
        args.run,
        iwae=args.iwae,
        probe=args.probe,
        which=args.checkpoint,
        device=args.device,
        allow_python=args.allow_python,
        features=args.features,
        feature_tensor=args.feature_tensor,
        samples=args.samples,
        disentanglement=args.disentanglement,
        pca=args.pca,
        class_fidelity=args.class_fidelity,
        edit_fidelity=args.edit_fidelity,
        edit_step=args.edit_step,
    )
    print(json.dumps(result, indent=2))
    from latentspec.track import after_eval

    after_eval(args.run, result)  # to the run's tracking sinks, if it has any
    return 0


def cmd_export(args) -> int:
    from latentspec.export import export_run

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    manifest = export_run(
        args.run,
        args.out,
        formats=formats,
        verify=args.verify,
        opset=args.opset,
        which=args.checkpoint,
        entries=args.entry,
        directions=args.direction,
        allow_python=args.allow_python,
        calibrate=args.calibrate,
    )
    print(f"wrote {args.out}: " + ", ".join(manifest["entries"]), file=sys.stderr)
    from latentspec.track import after_export

    after_export(args.run, args.out)  # the bundle as an artifact of the run's MLflow run, if any
    if args.verify:
        print(verified_summary(manifest.get("verified") or {}), file=sys.stderr)
    return 0


def verified_summary(verified: dict) -> str:
    """What ``--verify`` checked, one line per entry point."""
    lines = ["verified (ONNX Runtime against eager PyTorch, then the bundle through latentspec-runtime):"]
    for entry, v in verified.items():
        line = (
            f"  {entry}: batches {', '.join(str(b) for b in v.get('batches', []))} on {v.get('provider', '?')}, "
            f"max abs diff {v.get('max_abs_diff', 0.0):.2g}"
        )
        if "runtime_max_abs_diff" in v:
            line += f"; runtime {v['runtime_max_abs_diff']:.2g}"
        if "reference_steps" in v:
            line += f" over {v['reference_steps']} optimisation steps"
        lines.append(line)
    return "\n".join(lines)


def cmd_sample(args) -> int:
    import math

    from latentspec.run import load_run
    from latentspec.run._inputs import parse_inputs
    from latentspec.train.images import labelled_grid, save_png
    from latentspec.train.pictures import sample_blocks, sampling_entry

    _, model = load_run(args.run, which=args.checkpoint, allow_python=args.allow_python)
    inputs = parse_inputs(model.spec, sampling_entry(model.spec), args.input)
    blocks = sample_blocks(model, args.n, args.seed, inputs)
    if len(blocks) > 1:  # a row of n per class
        ncol = args.n
    else:
        side = math.isqrt(args.n)
        ncol = side if side * side == args.n else side + 1  # a square-ish grid, as before
    save_png(args.out, labelled_grid(blocks, ncol=max(ncol, 1)))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def cmd_viz(args) -> int:
    from latentspec.train.viz import viz_run

    out = args.out or os.path.join(args.run, "viz")
    for path in viz_run(args.run, out, which=args.checkpoint, seed=args.seed, max_units=args.units):
        print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_data(args) -> int:
    from latentspec.data.rows import check_suffix
    from latentspec.errors import UserError

    if args.n < 1:
        raise UserError(f"-n {args.n}: the count must be at least 1")
    if args.data_cmd == "export":
        from latentspec.data.rows import export_rows

        check_suffix(args.out, (".npy", ".npz"))
        spec = _load_source(args.source, args.set)
        written = export_rows(spec, args.split, args.n, args.out, args.field)
        print(f"wrote {args.out}: {written}", file=sys.stderr)
        return 0
    from latentspec.data.show import parse_params, show

    check_suffix(args.out, (".png",))
    show(args.dataset, parse_params(args.set), args.n, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _load_source(source: str, overrides: list[str]):
    """A spec file, or a run directory's resolved spec."""
    from latentspec.errors import UserError

    if os.path.isdir(source):
        path = os.path.join(source, "spec.yaml")
        if not os.path.isfile(path):
            raise UserError(f"{source}: a directory without spec.yaml is not a run directory")
        return _load(path, overrides)
    return _load(source, overrides)


def cmd_schema(args) -> int:
    from latentspec.spec import spec_schema

    print(json.dumps(spec_schema(), indent=2))
    return 0


def cmd_docs(args) -> int:
    from latentspec.components import ALL
    from latentspec.registries import load_all

    if args.datasets:
        from latentspec.data.docs import datasets_markdown

        print(datasets_markdown(), end="")
        return 0
    load_all()
    for reg in ALL:
        if args.kind and reg.kind != args.kind:
            continue
        print(f"### {reg.kind}s\n\n{reg.doc}\n\n{reg.docs_table()}\n")
    return 0


def cmd_check(args) -> int:
    from latentspec.errors import UserError
    from latentspec.spec._claims import check_with_baselines, write_record

    given: dict[str, str] = {}
    for item in args.baseline:
        name, sep, run = item.partition("=")
        if not sep or not name.strip() or not run.strip():
            raise UserError(f"--baseline {item}: expected NAME=RUN, e.g. --baseline vae=runs/vae")
        if name.strip() in given:
            raise UserError(f"--baseline {item}: baseline '{name.strip()}' is given twice")
        given[name.strip()] = run.strip()
    spec, checked, baselines = check_with_baselines(args.run, given)
    if not checked:
        print(f"{spec.name}: the spec states no claims (add a `claims:` section)")
        return 0
    write_record(args.run, spec, checked, baselines)
    for c in checked:
        print(c.line())
    unchecked = [c.claim.name for c in checked if c.holds is None]
    failed = [c.claim.name for c in checked if c.holds is False]
    if unchecked:
        names = ", ".join(unchecked)
        what = "a number is missing"
        if any(c.holds is None and (c.missing or "").startswith("needs --baseline") for c in checked):
            what = "a number or a --baseline run is missing"
        raise UserError(f"{len(unchecked)} of {len(checked)} claims unchecked ({what}): {names}")
    if failed:
        raise UserError(f"{len(failed)} of {len(checked)} claims fail: {', '.join(failed)}")
    return 0


COMMANDS = {
    "validate": cmd_validate,
    "schema": cmd_schema,
    "docs": cmd_docs,
    "compile": cmd_compile,
    "train": cmd_train,
    "eval": cmd_eval,
    "check": cmd_check,
    "export": cmd_export,
    "sample": cmd_sample,
    "data": cmd_data,
    "viz": cmd_viz,
    "track": cmd_track,
    "sweep": cmd_sweep,
    "compare": cmd_compare,
}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    from latentspec.errors import UserError
    from latentspec.spec import SpecError, format_diagnostics

    try:
        return COMMANDS[args.cmd](args)
    except SpecError as exc:
        print(format_diagnostics(exc.diagnostics), file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        if args.debug:
            raise
        print(f"latentspec: error: {exc}", file=sys.stderr)
        return 2
    except UserError as exc:
        if args.debug:
            raise
        print(f"latentspec: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # an output that cannot be written: read-only, full disk, permissions
        if args.debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"latentspec: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("latentspec: interrupted; the last checkpoint is kept (continue with --resume)", file=sys.stderr)
        return 130
    except Exception as exc:  # the last resort: every known class of bad input is a UserError above
        if args.debug:
            raise
        print(internal_error(f"latentspec {args.cmd}", exc), file=sys.stderr)
        return 1


def internal_error(command: str, exc: BaseException) -> str:
    """The one line shown for an unexpected exception (a bug to report, not a user error)."""
    first = (str(exc).splitlines() or [""])[0][:200]
    return (
        f"latentspec: internal error in `{command}`: {type(exc).__name__}: {first} "
        "(re-run with `latentspec --debug ...` for the traceback and report it)"
    )


if __name__ == "__main__":
    sys.exit(main())
