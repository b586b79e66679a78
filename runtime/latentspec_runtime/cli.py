"""``latentspec-runtime``: run a bundle's entry points on files from the command line.

Inputs are ``.npy`` files or images (a folder or several files make a batch); outputs go to
``.npy`` (the main output), ``.npz`` (all outputs) or ``.png`` (a grid when several items).
User errors print one ``latentspec-runtime: error: ...`` line and exit 1 (usage errors: 2);
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from ._args import int_at_least
from ._atomic import atomic_path
from ._bundle import DEVICES, Bundle
from ._groups import CalibrationWarning
from ._images import IMAGE_SUFFIXES, is_image, read_array, read_inputs, write_image
from ._manifest import BundleError, EntrySpec, InputError, TensorSpec
from .serve._cli import add_serve_parser

PROG = "latentspec-runtime"


class UsageError(Exception):
    """A command line that cannot work as given (exit status 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "sample" and all("=" in x and not x.startswith("-") for x in extra):
        args.assign += extra  # `sample BUNDLE -n 16 y=7`: NAME=VALUE after the options
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if "out" in args:
            _check_out(args.out)
        if args.command == "serve":
            return args.serve(args)
        bundle = Bundle.load(args.bundle, device=args.device, threads=args.threads, finite=not args.allow_nonfinite)
        return args.func(args, bundle)
    except UsageError as err:
        if args.debug:
            raise
        _print_error(str(err))
        return 2
    except (BundleError, InputError, OSError, ImportError) as err:
        if args.debug:
            raise
        _print_error(str(err))
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # the last resort: every known bad input is one of the classes above
        if args.debug:
            raise
        first = (str(err).splitlines() or [""])[0][:200]
        print(
            f"{PROG}: internal error in `{PROG} {args.command}`: {type(err).__name__}: {first} "
            f"(re-run with --debug for the traceback and report it)",
            file=sys.stderr,
        )
        return 1


def _print_error(message: str) -> None:
    first, *rest = message.splitlines() or [""]
    print(f"{PROG}: error: {first}", file=sys.stderr)
    for line in rest:
        print(f"  {line.strip()}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one subcommand per entry-point family."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Run a latentspec bundle with onnxruntime (no PyTorch needed)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("bundle", help="the bundle folder written by `latentspec export`")
    common.add_argument("--device", choices=DEVICES, default="auto", help="default: auto")
    common.add_argument("--threads", type=_positive, help="onnxruntime intra-op threads")
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    common.add_argument(
        "--allow-nonfinite", action="store_true", help="run inputs holding NaN or infinity (refused by default)"
    )
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("-o", "--out", required=True, type=Path, help="output .npy, .npz or .png")
    out.add_argument("--seed", type=_seed, default=0, help="seed for noise and random starts (0 .. 2**64-1)")
    inputs = argparse.ArgumentParser(add_help=False)
    inputs.add_argument("inputs", nargs="+", help=".npy or image files, or folders (a batch)")

    def command(
        name: str, func: Callable[[argparse.Namespace, Bundle], int], help: str, *parents: Any
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common, *parents], help=help, description=help)
        p.set_defaults(func=func)
        return p

    command("info", _info, "describe the bundle: entry points, signatures, metrics, providers")
    p = command("sample", _sample, "draw samples from the prior", out)
    p.add_argument("-n", type=_positive, default=16, help="number of samples (default 16)")
    p.add_argument(
        "assign",
        nargs="*",
        metavar="NAME=VALUE",
        help="named inputs of the sample entry, the same for all n: a number, or for a class label "
        "its index or class name (e.g. y=7, class=heart); also as --input NAME=VALUE",
    )
    p.add_argument("--input", action="append", default=[], metavar="NAME=VALUE", help="as NAME=VALUE")
    command("encode", _encode, "encode inputs (.npy: the code; .npz: all outputs)", inputs, out)
    command("decode", _decode, "decode latent codes from .npy files", inputs, out)
    command("reconstruct", _reconstruct, "encode then decode inputs", inputs, out)
    p = command("interpolate", _interpolate, "decode codes between the codes of A and B", out)
    p.add_argument("a", help="start: a file or folder")
    p.add_argument("b", help="end: a file or folder")
    p.add_argument("--steps", type=_at_least_two, default=8, help="points, ends included (default 8)")
    p.add_argument("--method", choices=("lerp", "slerp"), default="lerp")
    p = command("edit", _edit, "move codes along a direction or a latent group and decode", inputs, out)
    p.add_argument("--direction", help="a direction name of the bundle or a .npy vector")
    p.add_argument("--alpha", type=float, default=1.0, help="step along the direction (default 1)")
    p.add_argument(
        "--factor",
        action="append",
        type=_factor,
        default=[],
        metavar="GROUP=AMOUNT",
        help="move a latent group (repeatable), e.g. yaw=2.0: in the factor's own units (see `info`)",
    )
    p.add_argument(
        "--units",
        choices=("factor", "code"),
        default="factor",
        help="--factor amounts in factor units (calibrated at export; default) or code units",
    )
    p = command("inpaint", _inpaint, "fill unknown pixels (mask 0) by optimising a code", inputs, out)
    p.add_argument("--mask", required=True, help="mask file or folder: 1 = known, 0 = unknown")
    p.add_argument("--steps", type=_non_negative, help="optimisation steps (default: the bundle's)")
    p = command("invert", _invert, "find the code of inputs by optimisation", inputs, out)
    p.add_argument("--steps", type=_non_negative, help="optimisation steps (default: the bundle's)")
    p = command("refine", _refine, "run the iterative refinement entry", inputs, out)
    p.add_argument("--iterations", type=_non_negative, help="loop trip count (default: the bundle's)")
    command("swap", _swap, "run the swap entry", inputs, out)
    add_serve_parser(sub, DEVICES)
    return parser


def _seed(text: str) -> int:
    value = _non_negative(text)
    if value >= 2**64:
        raise argparse.ArgumentTypeError(f"a seed is at most 2**64-1, got {value}")
    return value


_positive, _non_negative, _at_least_two = int_at_least(1), int_at_least(0), int_at_least(2)


# -- commands --------------------------------------------------------------------------------


def _check_out(out: Path) -> None:
    """Fail on an unusable output path before any work is done."""
    if out.suffix.lower() not in (".npy", ".npz", *IMAGE_SUFFIXES):
        raise UsageError(f"-o {out}: write .npy, .npz or an image such as .png")
    if not out.parent.is_dir():
        raise UsageError(f"-o {out}: the folder {out.parent} does not exist")


def _info(args: argparse.Namespace, bundle: Bundle) -> int:
    print(bundle.info())
    return 0


def _sample(args: argparse.Namespace, bundle: Bundle) -> int:
    inputs = dict(_assignment(a) for a in [*args.assign, *args.input])
    e = bundle._task("sample").spec
    takes = [t.name for t in e.inputs if t.meaning not in ("noise", "iterations")]
    for name in inputs:
        if name not in takes:
            close = difflib.get_close_matches(name, takes, 1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(
                f"entry {e.name!r} has no input {name!r}{hint}; it takes: {', '.join(takes) or 'no named inputs'}"
            )
    missing = [t for t in e.inputs if t.name in takes and t.name not in inputs]
    if missing:
        raise UsageError(
            f"entry {e.name!r} samples given "
            + ", ".join(f"{t.name} ({t.describe()})" for t in missing)
            + ": pass "
            + " ".join(f"{t.name}=VALUE" for t in missing)
        )
    return _write(args, bundle, "sample", bundle.sample(args.n, seed=args.seed, **inputs))


def _assignment(text: str) -> tuple[str, int | float | str]:
    """``y=7`` -> ("y", 7); ``z0=0.5`` -> 0.5; ``class=heart`` -> "heart" (a class name)."""
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value:
        raise UsageError(f"expected NAME=VALUE (e.g. y=7), got {text!r}")
    for kind in (int, float):
        try:
            return name, kind(value)
        except ValueError:
            pass
    return name, value


def _encode(args: argparse.Namespace, bundle: Bundle) -> int:
    x = _read(bundle, "encode", args.inputs)
    out = bundle.encode(x, seed=args.seed)
    return _write(args, bundle, "encode", out, main=bundle._task("encode").spec.code)


def _decode(args: argparse.Namespace, bundle: Bundle) -> int:
    z = _read(bundle, "decode", args.inputs, bundle._task("decode").latent)
    return _write(args, bundle, "decode", bundle.decode(z, seed=args.seed))


def _reconstruct(args: argparse.Namespace, bundle: Bundle) -> int:
    entry = "reconstruct" if bundle.has_task("reconstruct") else "encode"
    x = _read(bundle, entry, args.inputs)
    out = bundle.reconstruct(x, seed=args.seed)
    return _write(args, bundle, "reconstruct" if entry == "reconstruct" else "decode", out)


def _interpolate(args: argparse.Namespace, bundle: Bundle) -> int:
    a, b = _read(bundle, "encode", [args.a]), _read(bundle, "encode", [args.b])
    out = bundle.interpolate(a, b, steps=args.steps, method=args.method, seed=args.seed)
    return _write(args, bundle, "decode", out, rows=None if _is_batch(bundle, a) else 1)


def _factor(text: str) -> tuple[str, float]:
    name, sep, amount = text.partition("=")
    try:
        value = float(amount)
    except ValueError:
        value = float("nan")
    if not sep or not name or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected GROUP=AMOUNT with a finite number, e.g. yaw=2.0; got {text!r}")
    return name, value


def _edit(args: argparse.Namespace, bundle: Bundle) -> int:
    direction: str | np.ndarray | None = args.direction
    if args.direction is None and not args.factor:
        groups = ", ".join(bundle.latent_groups) or "none"
        directions = ", ".join(bundle._manifest.directions) or "none"
        raise UsageError(
            f"edit: give --direction NAME and/or --factor GROUP=AMOUNT (groups: {groups}; directions: {directions})"
        )
    if args.direction is not None and args.direction.lower().endswith(".npy"):
        direction = read_array(Path(args.direction))
    x = _read(bundle, "encode", args.inputs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CalibrationWarning)
        out = bundle.edit(x, direction, alpha=args.alpha, seed=args.seed, units=args.units, factors=dict(args.factor))
    for w in caught:
        print(f"{PROG}: warning: {w.message}", file=sys.stderr)
    return _write(args, bundle, "decode", out)


def _inpaint(args: argparse.Namespace, bundle: Bundle) -> int:
    x = _read(bundle, "inpaint", args.inputs)
    mask = _read(bundle, "inpaint", [args.mask], bundle._task("inpaint").mask)
    out = bundle.inpaint(x, mask, steps=args.steps, seed=args.seed)
    return _write(args, bundle, "inpaint", out)


def _invert(args: argparse.Namespace, bundle: Bundle) -> int:
    x = _read(bundle, "invert", args.inputs)
    return _write(args, bundle, "invert", bundle.invert(x, steps=args.steps, seed=args.seed))


def _refine(args: argparse.Namespace, bundle: Bundle) -> int:
    x = _read(bundle, "refine", args.inputs)
    out = bundle.refine(x, iterations=args.iterations, seed=args.seed)
    return _write(args, bundle, "refine", out)


def _swap(args: argparse.Namespace, bundle: Bundle) -> int:
    x = _read(bundle, "swap", args.inputs)
    return _write(args, bundle, "swap", bundle.swap(x, seed=args.seed))


# -- files -----------------------------------------------------------------------------------


def _read(bundle: Bundle, entry: str, paths: Sequence[str], spec: TensorSpec | None = None) -> np.ndarray:
    """Read the input ``spec`` (default: the main data input) of the entry doing the task
    ``entry`` from files.

    Images become float32 (C, H, W) with the entry's channel count, mapped from [0, 1] to the
    input's range, and are flattened when the entry takes flat vectors of the same size.
    """
    spec = spec or bundle._task(entry).data
    if spec is None:
        raise BundleError(f"entry {entry!r} has no data input to read files into")
    item = spec.shape[1:] if spec.batched else spec.shape
    return read_inputs(paths, item, spec.range if spec.meaning == "image" else None)


def _is_batch(bundle: Bundle, x: np.ndarray) -> bool:
    spec = bundle._task("encode").data
    return spec is None or x.ndim == len(spec.shape)


def _write(
    args: argparse.Namespace,
    bundle: Bundle,
    entry: str,
    out: np.ndarray | dict[str, np.ndarray],
    main: str | None = None,
    rows: int | None = None,
) -> int:
    """Write ``out`` to ``args.out``: .npz all outputs, .npy or an image the main one."""
    spec = bundle._task(entry).spec
    outs = out if isinstance(out, dict) else {spec.outputs[0].name: out}
    path: Path = args.out
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with atomic_path(path) as tmp:
            np.savez(tmp, **outs)
        written = ", ".join(f"{k} {list(v.shape)}" for k, v in outs.items())
    else:
        name = main or _main_output(spec, outs)
        array = outs[name]
        if suffix == ".npy":
            with atomic_path(path) as tmp:
                np.save(tmp, array)
        else:
            if not is_image(array):
                raise UsageError(
                    f"output {name!r} of shape {list(array.shape)} is not an image; write it to a .npy or .npz file"
                )
            out_spec = spec.output(name)
            write_image(path, array, out_spec.range if out_spec else None, rows)
        written = f"{name} {list(array.shape)}"
    print(f"wrote {path} ({written})")
    return 0


def _main_output(spec: EntrySpec, outs: dict[str, np.ndarray]) -> str:
    """The output worth a .npy or an image: the first image output, else the first output."""
    for t in spec.outputs:
        if t.meaning == "image" and t.name in outs:
            return t.name
    return next(iter(outs))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
