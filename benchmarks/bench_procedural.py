"""Time generating 10,000 items of each procedural dataset (no cache), and a cache hit.

    python benchmarks/bench_procedural.py [--size 10000] [--repeat 3]

Target: under 5 s per dataset on 2 CPU cores. Prints the best of ``--repeat`` runs, since
other processes on a shared machine only ever make a run slower.
"""

from __future__ import annotations

import argparse
import os
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
    args = ap.parse_args()
    print(f"{args.size} items each, best of {args.repeat}; cores: {len(os.sched_getaffinity(0))}")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["LATENTSPEC_CACHE"] = cache
        for label, cls, params in CASES:
            ds = cls()
            cfg = ds.resolve({"size": args.size, "cache": False, **params})
            seconds = best_of(args.repeat, lambda: ds.load(cfg))  # noqa: B023  (called right away)
            print(f"{label:20s} generate {seconds:6.2f} s  ({args.size / seconds:8.0f} items/s)")
        ds = faces.Faces()
        cfg = ds.resolve({"size": args.size})
        ds.load(cfg)  # fill the cache
        print(f"{'faces (cache hit)':20s} load     {best_of(args.repeat, lambda: ds.load(cfg)):6.2f} s")


if __name__ == "__main__":
    main()
