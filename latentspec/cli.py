"""The `latentspec` command line. Argparse only; the work happens in the packages."""

from __future__ import annotations

import argparse
import json
import os
import sys


def _registry_help() -> str:
    from latentspec.components import ALL, load_all

    load_all()
    lines = ["components (from the registries):"]
    for reg in ALL:
        lines.append(f"  {reg.kind + 's':<16} {', '.join(reg.names())}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
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

    c = sub.add_parser("compile", help="compile a spec and summarise the model")
    c.add_argument("spec")
    c.add_argument("--emit", choices=["summary", "python", "graph"], default="summary")
    c.add_argument("--format", choices=["dot", "mermaid"], default="dot", help="graph format for --emit graph")
    c.add_argument("--entry", help="with --emit python: the code of this export entry point")
    c.add_argument("-o", "--out", help="write to this file (.svg renders DOT with Graphviz)")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    c.add_argument("--allow-python", action="store_true", help="allow `module: python` nodes (runs their code)")

    t = sub.add_parser("train", help="train a spec into a run directory")
    t.add_argument("spec")
    t.add_argument("--out", required=True, help="the run directory")
    t.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec value, e.g. data.batch=64"
    )
    t.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    t.add_argument("--quiet", action="store_true")
    t.add_argument("--allow-python", action="store_true")

    e = sub.add_parser("eval", help="evaluate a run on its test split")
    e.add_argument("run")
    e.add_argument("--iwae", type=int, metavar="K", help="importance-weighted bound with K samples (VAEs)")
    e.add_argument("--probe", metavar="FIELD", help="linear probe of the codes on a label field")
    e.add_argument("--checkpoint", choices=["last", "best"], default="last")
    e.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")

    x = sub.add_parser("export", help="export a run's entry points as a verified bundle")
    x.add_argument("run")
    x.add_argument("--out", required=True, help="the bundle folder")
    x.add_argument("--format", default="onnx", help="comma-separated: onnx, pt2, triton, torchscript")
    x.add_argument("--verify", action="store_true", help="check ONNX Runtime against PyTorch (max abs diff <= 1e-4)")
    x.add_argument("--opset", type=int, default=18)
    x.add_argument("--checkpoint", choices=["last", "best"], default="last")
    x.add_argument("--entry", action="append", help="only these entry points")
    x.add_argument(
        "--direction",
        action="append",
        metavar="NAME=FIELD:A:B",
        help="store a latent editing direction: mean code of FIELD=B minus FIELD=A",
    )

    s = sub.add_parser("sample", help="draw samples from a run's prior into a PNG grid")
    s.add_argument("run")
    s.add_argument("-n", type=int, default=64)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", "-o", required=True)
    s.add_argument("--checkpoint", choices=["last", "best"], default="last")

    da = sub.add_parser("data", help="look at datasets")
    dsub = da.add_subparsers(dest="data_cmd", required=True)
    ds = dsub.add_parser("show", help="draw a grid of a dataset's items with factor captions")
    ds.add_argument("dataset")
    ds.add_argument("--n", type=int, default=64)
    ds.add_argument("-o", "--out", required=True)
    ds.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dataset parameter")
    return p


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
        from latentspec.train.checkpoint import atomic_write_text

        atomic_write_text(args.out, text + "\n")
    else:
        print(text)
    return 0


def cmd_train(args) -> int:
    from latentspec.train.trainer import train

    spec = _load(args.spec, args.set)
    summary = train(
        spec, args.out, resume=args.resume, device=args.device, quiet=args.quiet, allow_python=args.allow_python
    )
    if not args.quiet:
        print(json.dumps({"run": args.out, **({"test": summary["test"]} if "test" in summary else {})}))
    return 0


def cmd_eval(args) -> int:
    from latentspec.train.evaluate import evaluate_run

    result = evaluate_run(args.run, iwae=args.iwae, probe=args.probe, which=args.checkpoint, device=args.device)
    print(json.dumps(result, indent=2))
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
    )
    print(f"wrote {args.out}: " + ", ".join(manifest["entries"]), file=sys.stderr)
    return 0


def cmd_sample(args) -> int:
    from latentspec.train.images import grid, save_png
    from latentspec.train.pictures import sample_images
    from latentspec.train.trainer import load_run

    _, model = load_run(args.run, which=args.checkpoint)
    images = sample_images(model, args.n, args.seed)
    save_png(args.out, grid(images))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def cmd_data(args) -> int:
    from latentspec.data.show import parse_params, show

    show(args.dataset, parse_params(args.set), args.n, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def cmd_schema(args) -> int:
    from latentspec.spec import spec_schema

    print(json.dumps(spec_schema(), indent=2))
    return 0


def cmd_docs(args) -> int:
    from latentspec.components import ALL, load_all

    load_all()
    for reg in ALL:
        if args.kind and reg.kind != args.kind:
            continue
        print(f"### {reg.kind}s\n\n{reg.doc}\n\n{reg.docs_table()}\n")
    return 0


COMMANDS = {
    "validate": cmd_validate,
    "schema": cmd_schema,
    "docs": cmd_docs,
    "compile": cmd_compile,
    "train": cmd_train,
    "eval": cmd_eval,
    "export": cmd_export,
    "sample": cmd_sample,
    "data": cmd_data,
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
    except KeyboardInterrupt:
        print("latentspec: interrupted; the last checkpoint is kept (continue with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
