#!/usr/bin/env python3
"""CPython's figures for the Pool create-to-first-result rows under spawn and forkserver, which
the shared kit measures under fork only.

Prints one JSON record in the kit's shape per start method: the mean milliseconds from
`ctx.Pool(2)` to the first `apply` result, then close and join, as the kit's
`pool_create_apply_close` does under fork.

Usage: python3 py_pool_start.py [--only pool_create_by_method] [--scale X]
"""
import argparse
import json
import multiprocessing as mp
import platform
import time


def _square(x):
    return x * x


def measure(method, scale):
    ctx = mp.get_context(method)
    n = max(3, int(10 * scale))
    ok = True
    t0 = time.perf_counter()
    for _ in range(n):
        pool = ctx.Pool(2)
        ok = ok and pool.apply(_square, (3,)) == 9
        pool.close()
        pool.join()
    ms = (time.perf_counter() - t0) / n * 1e3
    return {"bench": "pool_create_apply_close", "impl": "cpython-%s" % platform.python_version(),
            "unit": "ms", "value": ms,
            "params": {"processes": 2, "n": n, "start_method": method}, "ok": ok}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="pool_create_by_method")
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args()
    if "pool_create_by_method" in args.only.split(","):
        for method in ("spawn", "forkserver"):
            print(json.dumps(measure(method, args.scale)), flush=True)


if __name__ == "__main__":
    main()
