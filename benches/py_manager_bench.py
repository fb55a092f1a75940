#!/usr/bin/env python3
"""CPython's figures for the manager rows, which the shared kit does not measure.

Prints one JSON record in the kit's shape per suite asked for:

* `manager_set_get`: microseconds per `d[k] = v` then `d[k]` on a `Manager().dict()` proxy,
  the median of 5 runs of 5000 pairs.
* `manager_tcp_set_get`: the same through a `BaseManager` on 127.0.0.1 with an authkey, from a
  client that `connect()`s and gets the dict by a registered typeid.
* `manager_locked_increment`: increments per second of 8 processes each doing
  `with lock: d[0] = d.get(0, 0) + 1` on one managed dict and managed lock (Python has no
  atomic increment), 1000 times each at scale 1; the total is checked.
* `manager_custom_call`: microseconds per `counter.incr(1)` on a class registered with
  `BaseManager.register`, the median of 5 runs of 5000 calls.
* `manager_start`: milliseconds from `Manager()` to the first answered operation (a new dict
  and a set), the median of 9 starts; shutdown not included.

Usage: python3 py_manager_bench.py [--only manager_set_get,...] [--scale X]
"""
import argparse
import json
import multiprocessing as mp
import platform
import statistics
import time
from multiprocessing.managers import BaseManager, DictProxy

CTX = mp.get_context("fork")


def record(suite, unit, value, params, ok):
    return {"bench": suite, "impl": "cpython-%s" % platform.python_version(), "unit": unit,
            "value": value, "params": params, "ok": ok}


def insert_get_us(d, n):
    runs, ok = [], True
    for _ in range(5):
        t0 = time.perf_counter()
        for i in range(n):
            d[i % 64] = i
            ok = ok and d[i % 64] == i
        runs.append((time.perf_counter() - t0) * 1e6 / n)
    return statistics.median(runs), ok


def set_get(scale):
    n = max(100, int(5000 * scale))
    with CTX.Manager() as manager:
        us, ok = insert_get_us(manager.dict(), n)
    return record("manager_set_get", "us", us, {"n": n}, ok)


_SHARED = {}


def _shared_dict():
    return _SHARED


class TcpManager(BaseManager):
    pass


TcpManager.register("get_d", callable=_shared_dict, proxytype=DictProxy)


def tcp_set_get(scale):
    n = max(100, int(5000 * scale))
    server = TcpManager(address=("127.0.0.1", 0), authkey=b"bench", ctx=CTX)
    server.start()
    try:
        client = TcpManager(address=server.address, authkey=b"bench")
        client.connect()
        us, ok = insert_get_us(client.get_d(), n)
    finally:
        server.shutdown()
    return record("manager_tcp_set_get", "us", us, {"n": n}, ok)


def _increment(d, lock, n, go):
    go.wait()
    for _ in range(n):
        with lock:
            d[0] = d.get(0, 0) + 1


def locked_increment(scale):
    n = max(10, int(1000 * scale))
    procs = 8
    with CTX.Manager() as manager:
        d, lock, go = manager.dict(), manager.Lock(), CTX.Event()
        children = [CTX.Process(target=_increment, args=(d, lock, n, go)) for _ in range(procs)]
        for c in children:
            c.start()
        time.sleep(0.2)
        t0 = time.perf_counter()
        go.set()
        for c in children:
            c.join()
        elapsed = time.perf_counter() - t0
        ok = d[0] == procs * n
    return record("manager_locked_increment", "ops/s", procs * n / elapsed,
                  {"processes": procs, "n": n}, ok)


def start(scale):
    times = []
    for _ in range(9):
        t0 = time.perf_counter()
        manager = CTX.Manager()
        d = manager.dict()
        d[0] = 1
        times.append((time.perf_counter() - t0) * 1e3)
        manager.shutdown()
    return record("manager_start", "ms", statistics.median(times), {"start_method": "fork"}, True)


class Counter:
    def __init__(self, start):
        self.total = start

    def incr(self, by):
        self.total += by
        return self.total


class CounterManager(BaseManager):
    pass


CounterManager.register("Counter", Counter)


def custom_call(scale):
    n = max(100, int(5000 * scale))
    runs = []
    with CounterManager(ctx=CTX) as manager:
        counter = manager.Counter(0)
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(n):
                counter.incr(1)
            runs.append((time.perf_counter() - t0) * 1e6 / n)
        ok = counter.incr(0) == 5 * n
    return record("manager_custom_call", "us", statistics.median(runs), {"n": n}, ok)


SUITES = {
    "manager_set_get": set_get,
    "manager_tcp_set_get": tcp_set_get,
    "manager_locked_increment": locked_increment,
    "manager_start": start,
    "manager_custom_call": custom_call,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(SUITES))
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args()
    for suite in args.only.split(","):
        if suite in SUITES:
            print(json.dumps(SUITES[suite](args.scale)), flush=True)


if __name__ == "__main__":
    main()
