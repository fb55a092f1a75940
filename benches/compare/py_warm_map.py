#!/usr/bin/env python3
"""CPython's figure for the warm-pool map row, which the shared kit does not measure.

Prints one JSON record in the kit's shape: the median tasks/s of 21 `map`s of 200k squares on
one `Pool(2)` (fork), after the kit's 1000-item warm-up: the steady state of a pool that maps
again and again, to compare with our row of the same name.

Usage: python3 py_warm_map.py [--only pool_map_warm] [--scale X]
"""
import argparse
import json
import multiprocessing as mp
import platform
import statistics
import time

MAPS = 21


def _square(x):
    return x * x


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="pool_map_warm")
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args()
    if "pool_map_warm" not in args.only.split(","):
        return
    n = max(10, int(200_000 * args.scale))
    expected = sum(x * x for x in range(n))
    rates, ok = [], True
    with mp.get_context("fork").Pool(2) as pool:
        pool.map(_square, range(1000))
        for _ in range(MAPS):
            t0 = time.perf_counter()
            res = pool.map(_square, range(n))
            rates.append(n / (time.perf_counter() - t0))
            ok = ok and len(res) == n and sum(res) == expected
    record = {"bench": "pool_map_warm", "impl": "cpython-%s" % platform.python_version(),
              "unit": "tasks/s", "value": statistics.median(rates),
              "params": {"processes": 2, "n": n, "chunksize": "default", "maps": MAPS,
                         "start_method": "fork"}, "ok": ok}
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
