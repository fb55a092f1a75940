#!/usr/bin/env python3
"""CPython's figures for the warm-pool map rows, which the shared kit does not measure.

Prints one JSON record in the kit's shape per suite asked for, each the median tasks/s of maps
on one `Pool(2)` (fork) after the kit's 1000-item warm-up: the steady state of a pool that maps
again and again, to compare with our rows of the same names.

* `pool_map_warm`: 21 maps of 200k squares.
* `pool_map_kilobytes`: 5 maps of 20k tasks that each return a kilobyte (`bytes`).

Usage: python3 py_warm_map.py [--only pool_map_warm,pool_map_kilobytes] [--scale X]
"""
import argparse
import json
import multiprocessing as mp
import platform
import statistics
import time

def _square(x):
    return x * x


def _kilobyte(x):
    return bytes([x % 251]) * 1000


def _squares_ok(res, n):
    return len(res) == n and sum(res) == sum(x * x for x in range(n))


def _kilobytes_ok(res, n):
    return len(res) == n and all(b == _kilobyte(x) for x, b in enumerate(res))


# suite: (task, items at scale 1, maps, check)
SUITES = {
    "pool_map_warm": (_square, 200_000, 21, _squares_ok),
    "pool_map_kilobytes": (_kilobyte, 20_000, 5, _kilobytes_ok),
}


def measure(suite, scale):
    task, base, maps, check = SUITES[suite]
    n = max(10, int(base * scale))
    rates, ok = [], True
    with mp.get_context("fork").Pool(2) as pool:
        pool.map(_square, range(1000))
        for _ in range(maps):
            t0 = time.perf_counter()
            res = pool.map(task, range(n))
            rates.append(n / (time.perf_counter() - t0))
            ok = ok and check(res, n)
    return {"bench": suite, "impl": "cpython-%s" % platform.python_version(),
            "unit": "tasks/s", "value": statistics.median(rates),
            "params": {"processes": 2, "n": n, "chunksize": "default", "maps": maps,
                       "start_method": "fork"}, "ok": ok}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(SUITES))
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args()
    for suite in args.only.split(","):
        if suite in SUITES:
            print(json.dumps(measure(suite, args.scale)), flush=True)


if __name__ == "__main__":
    main()
