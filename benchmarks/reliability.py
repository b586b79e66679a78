"""Reliability figures: generated bad inputs per class, spec mutations, and kill points.

    python benchmarks/reliability.py [--json benchmarks/results/reliability.json]   # >= 1,000 bad inputs, kill -9
    python benchmarks/reliability.py --quick --json OUT    # a smaller sample (tests/reliability runs it)

Every bad input must end in a clear error: a ``UserError`` (one line), located spec
diagnostics, a runtime ``InputError``/``BundleError``, or a usage error (exit 2). Anything else
that escapes is a *traceback*; a bad input that is accepted is a *silent* result. A kill point
is a moment a checkpoint write is cut off (every file operation of ``checkpoint.save``, and in
the full run a real ``kill -9`` of ``latentspec train``): afterwards the run must resume from an
intact checkpoint, bit-exactly. The script exits 1 unless tracebacks and silent results are 0.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import glob
import io
import json
import math
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator

import numpy as np
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "runtime"))
sys.path.insert(0, os.path.join(ROOT, "tests", "runtime"))  # _bundles: tiny bundles built with onnx.helper
SPECS = sorted(
    glob.glob(os.path.join(ROOT, "specs", "*.yaml")) + glob.glob(os.path.join(ROOT, "tests", "gallery", "*.yaml"))
)
VAE = os.path.join(ROOT, "specs", "vae_mnist.yaml")


class Tally:
    """Outcomes per class of bad input."""

    def __init__(self) -> None:
        self.rows: dict[str, Counter] = {}
        self.examples: list[str] = []

    def record(self, cls: str, outcome: str, detail: str = "") -> None:
        self.rows.setdefault(cls, Counter())[outcome] += 1
        if outcome in ("traceback", "silent") and len(self.examples) < 20:
            self.examples.append(f"{cls}: {outcome}: {detail}")

    def expect_error(self, cls: str, fn: Callable[[], object], errors: tuple, check: Callable[[str], bool] = bool):
        """Run ``fn``: a clear error (of ``errors``, one line, passing ``check``) is handled."""
        try:
            fn()
        except errors as exc:
            text = str(exc)
            if len(text.splitlines()) > 1 and not _is_diagnostics(exc):
                self.record(cls, "silent", f"multi-line message: {text[:200]!r}")
            elif check(text):
                self.record(cls, "handled")
            else:
                self.record(cls, "silent", f"unclear message: {text[:200]!r}")
        except SystemExit as exc:
            self.record(cls, "handled" if exc.code == 2 else "traceback", f"exit {exc.code}")
        except Exception:
            self.record(cls, "traceback", traceback.format_exc(limit=3)[-600:])
        else:
            self.record(cls, "silent", "accepted")

    def total(self, outcome: str) -> int:
        return sum(c[outcome] for c in self.rows.values())


def _is_diagnostics(exc: BaseException) -> bool:
    from latentspec.spec import SpecError

    return isinstance(exc, SpecError) and all(len(str(d).splitlines()) == 1 for d in exc.diagnostics)


# -- spec mutations -----------------------------------------------------------------------------


def _paths(data, prefix=()) -> Iterator[tuple]:
    yield prefix
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _paths(v, (*prefix, i))


def _get(data, path):
    for p in path:
        data = data[p]
    return data


WEIRD = [
    None,
    True,
    "",
    "ünïcødé ✓",
    "\u202e\x00x",
    10**30,
    2**64,
    -(2**63),
    1e308,
    -1,
    0,
    0.5,
    [],
    {},
    [[[]]],
    {"a": 1},
]


def mutate(data, rng: random.Random) -> str:
    """1-3 random mutations: delete, rename, retype, huge, negative, unicode, deep, alias."""
    data = copy.deepcopy(data)
    for _ in range(rng.randint(1, 3)):
        every = [p for p in _paths(data) if p]
        if not every:
            break
        path = rng.choice(every)
        parent, key = _get(data, path[:-1]), path[-1]
        kind = rng.choice(["delete", "rename", "retype", "huge", "negative", "unicode", "deep", "alias"])
        if kind == "delete":
            del parent[key]
        elif kind == "rename" and isinstance(parent, dict):
            new = rng.choice([str(key)[:-1] or "x", str(key) + "s", str(key).upper(), "név", "a.b", " "])
            parent[new] = parent.pop(key)
        elif kind == "retype":
            parent[key] = copy.deepcopy(rng.choice(WEIRD))
        elif kind == "huge":
            parent[key] = rng.choice([10**30, 2**64, 2**63 - 1, 2**31, 10**9, 1e300])
        elif kind == "negative":
            v = parent[key]
            parent[key] = -abs(v) - 1 if isinstance(v, (int, float)) and not isinstance(v, bool) else -7
        elif kind == "unicode":
            parent[key] = "".join(chr(rng.randint(0x80, 0x2FFFF)) for _ in range(rng.randint(1, 6)))
        elif kind == "deep":
            v = parent[key]
            for _ in range(rng.randint(10, 90)):
                v = [v]
            parent[key] = v
        elif kind == "alias":  # the same object twice: an anchor and an alias in the YAML
            other = rng.choice(every)
            if other[: len(path)] != path[: len(other)]:  # neither holds the other: no cycle
                parent[key] = _get(data, other)
                break  # the data now shares an object: no further mutations walk it
    try:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    except RecursionError:
        return "latentspec: 1\nname: x\n"


def spec_mutations(tally: Tally, n_per_spec: int, rng: random.Random) -> dict:
    """Mutated specs: valid (then compiled) or located diagnostics; never an exception."""
    import torch

    from latentspec.compiler import compile_spec
    from latentspec.spec import validate_text

    stats = Counter()
    slowest = 0.0
    for path in SPECS:
        with open(path) as f:
            data = yaml.safe_load(f)
        for _ in range(n_per_spec):
            text = mutate(data, rng)
            stats["tried"] += 1
            t0 = time.process_time()
            try:
                spec, diags = validate_text(text, "mutated.yaml")
            except Exception:
                tally.record("spec mutation", "traceback", traceback.format_exc(limit=3)[-600:])
                continue
            slowest = max(slowest, time.process_time() - t0)
            if any(d.line < 1 or len(str(d).splitlines()) != 1 for d in diags):
                tally.record("spec mutation", "silent", f"unlocated diagnostic in {diags}")
                continue
            if spec is None:
                stats["diagnosed"] += 1
                tally.record("spec mutation", "handled")
                continue
            stats["valid"] += 1
            try:
                with torch.device("meta"):
                    compile_spec(spec)
                stats["compiled"] += 1
            except Exception:
                tally.record(
                    "spec mutation", "traceback", "valid spec did not compile: " + traceback.format_exc(limit=3)
                )
    stats["slowest_cpu_s"] = round(slowest, 3)
    return dict(stats)


def bad_overrides(tally: Tally, rng: random.Random, n: int) -> None:
    """`--set` values that must be refused, located at the argument."""
    from latentspec.spec import SpecError, load_spec

    common = [
        ".nan",
        ".inf",
        "-.inf",
        "1e400",
        "[",
        "{a: ",
        "!!python/object:os.system x",
        "fast",
        "&a [*a]",
        "[1e999]",
    ]
    own = {
        "train.optimizer.lr": ["0", "-1", "1e30", str(2**64)],
        "latents.z.dim": ["0", "-1", str(2**64), "[0]", "2.5"],
        "data.batch": ["0", "-1", str(2**64), "1e2"],
        "seed": ["-1", str(2**64), "0.5"],
        "train.epochs": ["-1", str(2**64), "2.5"],
        "nodes.enc.hidden": ["[0]", "[-5]", f"[{2**40}]", "[1000000, 1000000]"],
    }
    for _ in range(n):
        key = rng.choice(list(own))
        value = rng.choice(common + own[key])
        tally.expect_error(
            "--set value", lambda k=key, v=value: load_spec(VAE, [f"{k}={v}"]), (SpecError,), lambda t: "--set" in t
        )


# -- data -----------------------------------------------------------------------------------------


def _npz_cfg(path: str) -> str:
    return json.dumps({"path": path, "_base_dir": os.path.dirname(path)}, sort_keys=True)


def non_finite_data(tally: Tally, rng: random.Random, n: int, tmp: str) -> None:
    from latentspec.data.pipeline import _load_cached
    from latentspec.errors import UserError

    for i in range(n):
        shape = (rng.randint(2, 30), *[rng.randint(1, 6) for _ in range(rng.randint(0, 3))])
        a = np.random.default_rng(i).normal(size=shape).astype(rng.choice([np.float32, np.float64]))
        index = tuple(rng.randrange(s) for s in shape)
        a[index] = rng.choice([math.nan, math.inf, -math.inf])
        path = os.path.join(tmp, f"nan{i}.npz")
        np.savez(path, x=a, y=np.arange(shape[0]))
        want = "[" + ", ".join(map(str, index)) + "]"
        tally.expect_error(
            "non-finite data",
            lambda p=path: _load_cached("npz", _npz_cfg(p), None, None),
            (UserError,),
            lambda t, w=want: "'x'" in t and w in t,
        )


def _garbage_files(rng: random.Random, n: int) -> Iterator[tuple[str, bytes]]:
    buf = io.BytesIO()
    np.savez_compressed(buf, x=np.arange(64.0).reshape(8, 8))
    npz = buf.getvalue()
    buf = io.BytesIO()
    np.save(buf, np.arange(64.0))
    npy = buf.getvalue()
    obj = io.BytesIO()
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for i in range(n):
        kind = i % 6
        if kind == 0:
            yield "empty", b""
        elif kind == 1:
            yield "random bytes", bytes(rng.randrange(256) for _ in range(rng.randint(1, 400)))
        elif kind == 2:
            src = rng.choice([npz, npy])
            yield "truncated", src[: rng.randint(1, len(src) - 1)]
        elif kind == 3:
            yield "pickle", pickle.dumps({"x": list(range(rng.randint(0, 9)))})
        elif kind == 4:
            yield "object array", obj.getvalue()
        else:
            yield "garbage zip", b"PK\x03\x04" + bytes(rng.randrange(256) for _ in range(64))


def bad_array_files(tally: Tally, rng: random.Random, n: int, tmp: str) -> None:
    from latentspec.data.pipeline import _load_cached
    from latentspec.errors import UserError
    from latentspec_runtime._images import read_array
    from latentspec_runtime._manifest import InputError

    def clear(t: str) -> bool:
        return "allow_pickle" not in t and "unsafely" not in t

    for i, (_, raw) in enumerate(_garbage_files(rng, n)):
        path = os.path.join(tmp, f"bad{i}.npz")
        with open(path, "wb") as f:
            f.write(raw)
        tally.expect_error(
            "bad .npz (training data)",
            lambda p=path: _load_cached("npz", _npz_cfg(p), None, None),
            (UserError,),
            lambda t, p=path: p in t and clear(t),
        )
        npy = os.path.join(tmp, f"bad{i}.npy")
        os.replace(path, npy)
        tally.expect_error(
            "bad .npy (runtime input)",
            lambda p=npy: read_array(__import__("pathlib").Path(p)),
            (InputError,),
            lambda t, p=npy: p in t and clear(t),
        )


def bad_images(tally: Tally, rng: random.Random, n: int, tmp: str) -> None:
    from PIL import Image

    from latentspec.data.datasets import Images
    from latentspec.errors import UserError
    from latentspec_runtime._images import read_image
    from latentspec_runtime._manifest import InputError

    good = io.BytesIO()
    Image.new("L", (8, 8), 99).save(good, format="PNG")
    png = good.getvalue()
    for i in range(n):
        root = os.path.join(tmp, f"imgs{i}")
        os.makedirs(os.path.join(root, "a"))
        path = os.path.join(root, "a", "0.png")
        kind = i % 3
        with open(path, "wb") as f:
            f.write(
                # cut inside the pixel data (a PNG cut only in its CRC and end marker still decodes)
                png[: rng.randint(8, len(png) - 26)] if kind == 0 else png if kind == 2 else png[:8] + os.urandom(64)
            )
        limit = Image.MAX_IMAGE_PIXELS
        if kind == 2:
            Image.MAX_IMAGE_PIXELS = 16  # the 8x8 image counts as a decompression bomb
        try:
            cfg = {"path": root, "size": None, "mode": "L"}
            tally.expect_error("bad image (training data)", lambda c=cfg: Images().load(c), (UserError,),
                               lambda t, p=path: p in t)  # fmt: skip
            tally.expect_error("bad image (runtime input)", lambda p=path: read_image(__import__("pathlib").Path(p)),
                               (InputError,), lambda t, p=path: p in t)  # fmt: skip
        finally:
            Image.MAX_IMAGE_PIXELS = limit


# -- checkpoints ----------------------------------------------------------------------------------


def _tiny_checkpoint(folder: str, seed: int = 0):
    import torch

    from latentspec.run import checkpoint as ckpt

    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.Linear(8, 4))
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(3, 16)).sum().backward()
    opt.step()
    g = torch.Generator().manual_seed(seed)
    ckpt.save(folder, model, opt, {"stage": 0, "epoch": seed, "step": seed, "rng": ckpt.rng_state(g)})
    return model, opt


def damaged_checkpoints(tally: Tally, rng: random.Random, n: int, tmp: str) -> None:
    from latentspec.errors import UserError
    from latentspec.run import checkpoint as ckpt

    base = os.path.join(tmp, "ckpt-base")
    model, opt = _tiny_checkpoint(base)

    def load(folder: str) -> None:
        state = ckpt.load_state(folder)
        ckpt.load_weights(folder, model)
        ckpt.load_optimizer(folder, opt, state["optimizer"])
        ckpt.set_rng_state(__import__("torch").Generator(), state["rng"])

    for i in range(n):
        folder = os.path.join(tmp, f"ckpt{i}")
        shutil.copytree(base, folder)
        kind = i % 4
        if kind < 2:
            name = rng.choice(["weights.safetensors", "optimizer.safetensors"])
            path = os.path.join(folder, name)
            size = os.path.getsize(path)
            with open(path, "r+b") as f:
                if kind == 0:
                    f.seek(rng.randrange(size))
                    byte = f.read(1)[0]
                    f.seek(-1, 1)
                    f.write(bytes([byte ^ (1 << rng.randrange(8))]))
                else:
                    f.truncate(rng.randrange(size))
            what = name
        elif kind == 2:
            path = os.path.join(folder, "state.json")
            with open(path, "rb") as f:
                raw = f.read()
            cut = rng.choice([raw[: rng.randrange(len(raw))], raw.replace(b'"step": 0', b'"step": NaN'), b"\xff" * 9])
            with open(path, "wb") as f:
                f.write(cut)
            what = "state.json"
        else:
            path = os.path.join(folder, "state.json")
            with open(path) as f:
                state = json.load(f)
            state["rng"] = rng.choice(["@@@", "AAAA", "QUJD", 7, None])
            with open(path, "w") as f:
                json.dump(state, f)
            what = "RNG"
        tally.expect_error("damaged checkpoint", lambda fo=folder: load(fo), (UserError,), lambda t, w=what: w in t)


class _Cutter:
    """Wraps file operations; the ``at``-th call raises ``exc`` (the process "dies" there)."""

    def __init__(self, at: int, exc: type[BaseException]) -> None:
        self.at, self.exc, self.calls = at, exc, 0

    def wrap(self, fn: Callable) -> Callable:
        def f(*a, **k):
            self.calls += 1
            if self.calls == self.at:
                raise self.exc
            return fn(*a, **k)

        return f


def kill_points(tally: Tally, tmp: str) -> int:
    """Cut ``checkpoint.save`` off at each of its file operations; the checkpoint that loads
    afterwards must be the old one or the new one, whole (hashes verified)."""
    import torch

    from latentspec.run import checkpoint as ckpt

    class Killed(BaseException):
        pass

    survived = 0
    for point in range(64):
        folder = os.path.join(tmp, f"kill{point}", "last")
        old_model, _ = _tiny_checkpoint(folder, seed=1)
        torch.manual_seed(2)
        new_model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.Linear(8, 4))
        cutter = _Cutter(point + 1, Killed)
        real = {"replace": os.replace, "fsync": os.fsync, "save_file": ckpt.save_file, "rmtree": shutil.rmtree}
        os.replace, os.fsync = cutter.wrap(real["replace"]), cutter.wrap(real["fsync"])
        shutil.rmtree, ckpt.save_file = cutter.wrap(real["rmtree"]), cutter.wrap(real["save_file"])
        done = False
        try:
            ckpt.save(folder, new_model, None, {"stage": 0, "epoch": 2, "step": 2})
            done = True
        except Killed:
            pass
        finally:
            os.replace, os.fsync, shutil.rmtree = real["replace"], real["fsync"], real["rmtree"]
            ckpt.save_file = real["save_file"]
        probe = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.Linear(8, 4))
        try:
            state = ckpt.load_state(folder)
            ckpt.load_weights(folder, probe)
        except Exception:
            tally.record("kill point (checkpoint swap)", "traceback", traceback.format_exc(limit=3))
            continue
        want = new_model if state["epoch"] == 2 else old_model
        same = all(torch.equal(a, b) for a, b in zip(probe.state_dict().values(), want.state_dict().values()))
        tally.record("kill point (checkpoint swap)", "handled" if same else "silent", f"point {point}")
        survived += same
        if done:
            break
    return survived


def kill_9_runs(tally: Tally, n: int, tmp: str) -> int:
    """Real ``kill -9`` of ``latentspec train`` at random moments, then ``--resume``: the
    weights must equal an uninterrupted run's, bit for bit."""
    from safetensors.torch import load_file

    sets = ["data.split.train=480", "data.split.test=64", "data.batch=32", "train.samples_every=0", "train.epochs=6"]
    args = [a for s in sets for a in ("--set", s)]
    cmd = [sys.executable, "-m", "latentspec", "train", VAE, "--quiet", "--device", "cpu", *args]
    ref = os.path.join(tmp, "ref")
    quiet = {"check": True, "cwd": ROOT, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run([*cmd, "--out", ref], **quiet)
    t0 = time.time()
    subprocess.run([*cmd, "--out", os.path.join(tmp, "timing")], **quiet)
    duration = time.time() - t0
    want = load_file(os.path.join(ref, "checkpoints", "last", "weights.safetensors"))
    survived = 0
    rng = random.Random(7)
    for k in range(n):
        run = os.path.join(tmp, f"kill9-{k}")
        proc = subprocess.Popen([*cmd, "--out", run], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 0.9) * duration)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = subprocess.run([*cmd, "--out", run, "--resume"], cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            tally.record("kill -9 + resume", "traceback", done.stderr[-400:])
            continue
        got = load_file(os.path.join(run, "checkpoints", "last", "weights.safetensors"))
        same = got.keys() == want.keys() and all((got[x] == want[x]).all() for x in want)
        tally.record("kill -9 + resume", "handled" if same else "silent", f"kill {k}")
        survived += same
    return survived


# -- runtime --------------------------------------------------------------------------------------


def runtime_inputs(tally: Tally, rng: random.Random, n: int, tmp: str) -> None:
    import _bundles

    from latentspec_runtime import Bundle
    from latentspec_runtime._manifest import BundleError, InputError

    root = _bundles.make_bundle(__import__("pathlib").Path(tmp) / "tiny.bundle")
    bundle = Bundle.load(root, device="cpu", finite=True)
    for _ in range(n):
        kind = rng.randrange(4)
        if kind == 0:  # non-finite values
            z = np.random.default_rng(rng.randrange(1 << 30)).normal(size=(rng.randint(1, 5), _bundles.D))
            z[rng.randrange(len(z)), rng.randrange(_bundles.D)] = rng.choice([math.nan, math.inf, -math.inf])
            cls, check = "runtime: non-finite input", (lambda t: "'z'" in t and "decode" in t)
        elif kind == 1:  # wrong shape
            shape = [rng.randint(0, 6) for _ in range(rng.randint(0, 4))]
            if shape[-1:] == [_bundles.D] and len(shape) in (1, 2):
                shape[-1] += 1
            z = np.zeros(shape, np.float32)
            cls, check = "runtime: wrong shape", (lambda t: "decode" in t)
        elif kind == 2:  # wrong dtype
            z = np.zeros((2, _bundles.D), rng.choice([np.complex64, "U3", object, "datetime64[s]"]))
            cls, check = "runtime: wrong dtype", (lambda t: "decode" in t)
        else:  # beyond float32
            z = np.full((1, _bundles.D), rng.choice([1e39, -1e300, 3.5e38]), np.float64)
            cls, check = "runtime: out of float32 range", (lambda t: "decode" in t)
        tally.expect_error(cls, lambda z=z: bundle.decode(z), (InputError, BundleError), check)
        tally.expect_error("runtime: bad seed", lambda: bundle.sample(2, seed=rng.choice([-1, 2**64, 1.5, "7"])),
                           (InputError,), lambda t: "seed" in t)  # fmt: skip


def bad_bundles(tally: Tally, rng: random.Random, n: int, tmp: str) -> None:
    import pathlib

    import _bundles

    from latentspec_runtime import Bundle
    from latentspec_runtime._manifest import BundleError

    base = _bundles.make_bundle(pathlib.Path(tmp) / "base.bundle")
    outside = pathlib.Path(tmp) / "outside.onnx"
    shutil.copy(base / "decode.onnx", outside)
    for i in range(n):
        root = pathlib.Path(tmp) / f"b{i}"
        shutil.copytree(base, root)
        text = (root / "manifest.json").read_text()
        kind = i % 4
        if kind == 0:
            (root / "manifest.json").write_text(text.replace("12.5", rng.choice(["NaN", "Infinity", "-Infinity"])))
        elif kind == 1:
            depth = rng.choice([70, 500, 5000, 100000])
            (root / "manifest.json").write_text(text[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}")
        elif kind == 2:
            (root / "decode.onnx").unlink()
            os.symlink(outside, root / "decode.onnx")
        else:
            raw = bytearray((root / "encode.onnx").read_bytes())
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
            (root / "encode.onnx").write_bytes(bytes(raw))
        tally.expect_error("bad bundle", lambda r=root: Bundle.load(r, device="cpu"), (BundleError,))


def cli_seeds(tally: Tally, rng: random.Random, n: int) -> None:
    from latentspec.cli import main

    for _ in range(n):
        seed = rng.choice(["-1", str(2**64), "1.5", "x", str(-(2**70))])
        with contextlib.redirect_stderr(io.StringIO()):
            tally.expect_error("sample --seed", lambda s=seed: main(["sample", "RUN", "--seed", s, "-o", "x.png"]), ())


# -- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small sample (seconds), as the tests run it")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=os.path.join(ROOT, "benchmarks", "results", "reliability.json"))
    args = p.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _machine import machine, write_result

    before = machine()
    rng = random.Random(args.seed)
    scale = 1 if args.quick else 10
    tally = Tally()
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="latentspec-reliability-") as tmp:
        mutations = spec_mutations(tally, 3 * scale, rng)
        bad_overrides(tally, rng, 15 * scale)
        non_finite_data(tally, rng, 8 * scale, tmp)
        bad_array_files(tally, rng, 6 * scale, tmp)
        bad_images(tally, rng, 3 * scale, tmp)
        damaged_checkpoints(tally, rng, 8 * scale, tmp)
        runtime_inputs(tally, rng, 8 * scale, tmp)
        bad_bundles(tally, rng, 4 * scale, tmp)
        cli_seeds(tally, rng, 3 * scale)
        kills = kill_points(tally, tmp)
        kill9 = 0 if args.quick else kill_9_runs(tally, 3, tmp)
    bad = sum(sum(c.values()) for cls, c in tally.rows.items() if not cls.startswith("kill"))
    width = max(map(len, tally.rows)) + 2
    print(f"{'class':<{width}} {'cases':>6} {'handled':>8} {'traceback':>10} {'silent':>7}")
    for cls, c in tally.rows.items():
        print(f"{cls:<{width}} {sum(c.values()):>6} {c['handled']:>8} {c['traceback']:>10} {c['silent']:>7}")
    print(
        f"\nspec mutations tried: {mutations.get('tried', 0)} ({mutations.get('diagnosed', 0)} refused with located "
        f"diagnostics, {mutations.get('valid', 0)} still valid and compiled: {mutations.get('compiled', 0)}; "
        f"slowest validate {mutations.get('slowest_cpu_s', 0)} s CPU)"
    )
    print(
        f"kill points survived: {kills} checkpoint-swap cut-offs" + ("" if args.quick else f", {kill9}/3 kill -9 runs")
    )
    print(f"bad inputs handled: {tally.total('handled') - kills - kill9} of {bad} generated")
    print(
        f"tracebacks: {tally.total('traceback')}, silent results: {tally.total('silent')}  ({time.time() - t0:.0f} s)"
    )
    for line in tally.examples:
        print("  " + line.replace("\n", "\n    "))
    ok = tally.total("traceback") == 0 and tally.total("silent") == 0 and (args.quick or bad >= 1000)
    write_result(
        args.json,
        {
            "benchmark": "reliability",
            "command": "python benchmarks/reliability.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "quick": args.quick,
            "machine": machine(before),
            "classes": {cls: dict(c) for cls, c in tally.rows.items()},
            "bad_inputs": bad,
            "handled": tally.total("handled") - kills - kill9,
            "tracebacks": tally.total("traceback"),
            "silent": tally.total("silent"),
            "spec_mutations": mutations,
            "kill_points": {"checkpoint_swap": kills, "kill_9": kill9},
            "examples": tally.examples,
        },
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
