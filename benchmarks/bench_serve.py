"""Load test of ``latentspec-runtime serve``: throughput and p50/p99 latency at 1, 8 and 64 concurrent
clients, with micro-batching on and off, against the Python API called directly.

The server runs as a child process on a free loopback port (127.0.0.1 only); the clients are
threads of this process, each with one keep-alive connection, sending one item per request for
a fixed time and then stopping. The Python API row calls ``Bundle.run`` from the same number of
threads in this process. Levels run one after another, each mode in turn, so a change of machine
load hits every mode alike. Everything stops by itself: each level runs ``--seconds``, and the
server is terminated at the end (or on any error).

    python benchmarks/bench_serve.py                       # the VAE spec's decoder (needs latentspec)
    python benchmarks/bench_serve.py --bundle B --entry decode --seconds 5
    python benchmarks/bench_serve.py --quick --bundle B    # a smoke run (the tests use it)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from latentspec_runtime import Bundle

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # loopback only


def vae_decoder(folder: str) -> str:
    """Export the VAE spec's ``decode`` entry (weights as compiled: speed does not need training)."""
    from latentspec.compiler import compile_spec
    from latentspec.export import export_model
    from latentspec.spec import load_spec

    spec = load_spec(str(ROOT / "specs" / "vae_mnist.yaml"))
    model = compile_spec(spec).eval()
    out = os.path.join(folder, "vae.bundle")
    export_model(spec, model, out, formats=["onnx"], verify=False, entries=["decode"])
    return out


def one_item(bundle: Bundle, entry: str, seed: int = 0) -> dict[str, np.ndarray]:
    """One random item for each input the caller gives (noise and trip counts are left out)."""
    rng = np.random.default_rng(seed)
    raw = bundle.manifest["entries"][entry]
    given = {}
    for t in raw["inputs"]:
        if t["meaning"] in ("noise", "iterations"):
            continue
        shape = [d for d in t["shape"] if d != "batch"]
        if not all(isinstance(d, int) for d in shape):
            raise SystemExit(f"entry {entry!r}: input {t['name']!r} has named dims {t['shape']}; pick another entry")
        lo, hi = t.get("range") or (None, None)
        a = rng.random(shape) * (hi - lo) + lo if lo is not None else rng.standard_normal(shape)
        given[t["name"]] = a.astype(t["dtype"])
    return given


def measure(clients: int, seconds: float, call: Any) -> dict[str, float]:
    """Run ``call(client_index)`` in ``clients`` threads for ``seconds``; latencies in ms."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures = [0] * clients
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker(i: int) -> None:
        state = call.setup() if hasattr(call, "setup") else None
        start.wait()
        own = latencies[i]
        try:
            while time.perf_counter() < stop_at[0]:
                t0 = time.perf_counter()
                ok = call(state)
                own.append((time.perf_counter() - t0) * 1e3)
                failures[i] += not ok
        finally:
            if state is not None and hasattr(state, "close"):
                state.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join(timeout=seconds + 60)
    elapsed = time.perf_counter() - t0
    every = np.concatenate([np.asarray(x) for x in latencies if x]) if any(latencies) else np.zeros(1)
    return {
        "clients": clients,
        "requests": int(every.size),
        "failed": int(sum(failures)),
        "throughput_per_s": every.size / elapsed,
        "p50_ms": float(np.percentile(every, 50)),
        "p99_ms": float(np.percentile(every, 99)),
    }


class HttpCall:
    """One POST of a JSON item per call, over a keep-alive connection per client thread."""

    def __init__(self, port: int, path: str, body: bytes) -> None:
        self.port, self.path, self.body = port, path, body
        self.headers = {"Content-Type": "application/json", "Connection": "keep-alive"}

    def setup(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(HOST, self.port, timeout=60)

    def __call__(self, conn: http.client.HTTPConnection) -> bool:
        conn.request("POST", self.path, self.body, self.headers)
        r = conn.getresponse()
        r.read()
        return r.status == 200


class ApiCall:
    def __init__(self, bundle: Bundle, entry: str, item: dict[str, np.ndarray]) -> None:
        self.bundle, self.entry = bundle, entry
        self.feed = {k: v[None] for k, v in item.items()}

    def __call__(self, _: None) -> bool:
        self.bundle.run(self.entry, self.feed)
        return True


def serve(bundle: str, batching: bool, threads: int | None) -> tuple[subprocess.Popen, int]:
    args = [sys.executable, "-m", "latentspec_runtime", "serve", bundle, "--host", HOST, "--port", "0"]
    args += ["--device", "cpu", "--log-level", "warning"]
    args += ["--max-batch", "64", "--max-wait-ms", "2"] if batching else ["--max-batch", "1"]
    if threads:
        args += ["--threads", str(threads)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if f"http://{HOST}:" not in line:
        proc.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    port = int(line.split(f"http://{HOST}:")[1].split("/")[0])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("the server did not become ready in 120 s")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", help="a bundle folder (default: export the VAE spec's decoder)")
    ap.add_argument("--entry", default="decode")
    ap.add_argument("--seconds", type=float, default=5.0, help="per level (default 5)")
    ap.add_argument("--clients", default="1,8,64", help="concurrency levels (default 1,8,64)")
    ap.add_argument("--threads", type=int, help="onnxruntime intra-op threads (server and API)")
    ap.add_argument("--quick", action="store_true", help="0.3 s per level: a smoke run")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    seconds = 0.3 if args.quick else args.seconds
    levels = [int(c) for c in args.clients.split(",")]
    if any(c < 1 or c > 256 for c in levels):
        raise SystemExit("--clients: levels from 1 to 256")
    with tempfile.TemporaryDirectory() as tmp:
        path = args.bundle or vae_decoder(tmp)
        bundle = Bundle.load(path, device="cpu", threads=args.threads)
        item = one_item(bundle, args.entry)
        body = json.dumps({"inputs": {k: v.tolist() for k, v in item.items()}}).encode()
        api = ApiCall(bundle, args.entry, item)
        api(None)
        servers = {}
        try:
            for mode, batching in (("serve, batching", True), ("serve, no batching", False)):
                servers[mode] = serve(path, batching, args.threads)
            calls: dict[str, Any] = {"python API": api}
            for mode, (_, port) in servers.items():
                calls[mode] = HttpCall(port, f"/v1/{bundle.name}/{args.entry}", body)
                measure(1, min(seconds, 0.2), calls[mode])  # warm the connection path
            # Levels outside, modes inside: a change of machine load hits every mode alike.
            found = {(mode, c): measure(c, seconds, call) for c in levels for mode, call in calls.items()}
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=60)
                proc.stdout.close()
        rows = [{"mode": mode, **found[(mode, c)]} for mode in calls for c in levels]
    result = {"bundle": bundle.name, "entry": args.entry, "seconds_per_level": seconds, "rows": rows}
    print(f"{bundle.name}/{args.entry}, {seconds:g} s per level, loopback, one item per request\n")
    print("| mode | clients | requests/s | p50 ms | p99 ms | failed |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['clients']} | {r['throughput_per_s']:.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['failed']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
