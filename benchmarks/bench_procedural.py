"""Time generating 10,000 items of each procedural dataset (no cache), and a cache hit.

    python benchmarks/bench_procedural.py [--size 10000] [--repeat 3] [--json PATH]
    python benchmarks/bench_procedural.py --quick   # 200 items, one repeat

Target: under 5 s per dataset on 2 CPU cores. Prints the best of ``--repeat`` runs, since
other processes on a shared machine only ever make a run slower.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from latentspec.data.procedural import faces, hands, shapes

CASES = [
    ("shapes", shapes.Shapes, {}),
    ("shapes channels=3", shapes.Shapes, {"channels": 3}),
    ("hands", hands.Hands, {}),
    ("faces", faces.Faces, {}),
    ("faces paired=true", faces.Faces, {"paired": True}),
]


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="200 items, one repeat")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--json", default=os.path.join(here, "results", "bench_procedural.json"))
    args = ap.parse_args()
    if args.quick:
        args.size, args.repeat = 200, 1
    sys.path.insert(0, here)
    from _machine import machine, write_result

    before = machine()
    rows = {}
    print(f"{args.size} items each, best of {args.repeat}; cores: {len(os.sched_getaffinity(0))}")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["LATENTSPEC_CACHE"] = cache
        for label, cls, params in CASES:
            ds = cls()
            cfg = ds.resolve({"size": args.size, "cache": False, **params})
            seconds = best_of(args.repeat, lambda: ds.load(cfg))  # noqa: B023  (called right away)
            print(f"{label:20s} generate {seconds:6.2f} s  ({args.size / seconds:8.0f} items/s)")
            rows[label] = {"generate_s": seconds, "items_per_s": args.size / seconds}
        ds = faces.Faces()
        cfg = ds.resolve({"size": args.size})
        ds.load(cfg)  # fill the cache
        hit = best_of(args.repeat, lambda: ds.load(cfg))
        print(f"{'faces (cache hit)':20s} load     {hit:6.2f} s")
        rows["faces (cache hit)"] = {"load_s": hit}
    write_result(
        args.json,
        {
            "benchmark": "bench_procedural",
            "command": "python benchmarks/bench_procedural.py " + " ".join(sys.argv[1:]),
            "quick": args.quick,
            "size": args.size,
            "repeat": args.repeat,
            "machine": machine(before),
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
