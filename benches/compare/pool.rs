//! Pool rows: many tiny tasks through `map` and `apply_async`, one task's round trip, the
//! speedup of CPU-bound tasks on two workers, and a pool's start-up, as the kit measures them.
//!
//! To see what each use of prefaulting buys on these rows (see `runtime/src/sys/mem.rs`), measure
//! them with it on, all off, and each use off, side by side in one run:
//! `MULTIPROC_BENCH_ENV=prefault ONLY='Pool(2)' cargo bench --bench compare`.

use crate::harness::{median, scaled, Ref, Row};
use multiproc::prelude::*;
use multiproc::StartMethod;
use std::hint::black_box;
use std::time::Instant;

#[process_task]
fn square(x: u64) -> u64 {
    x * x
}

/// A kilobyte that says which item it answers: a large result.
#[process_task]
fn kilobyte(x: u64) -> Vec<u8> {
    vec![(x % 251) as u8; 1000]
}

/// A CPU-bound chain of xorshift steps, as the kit's CPU tasks.
#[process_task]
fn spin(iters: u64) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..iters {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

fn pool2() -> Pool {
    let pool = Pool::new(2).expect("pool");
    pool.map(task!(square), 0..1000).expect("warm-up");
    pool
}

/// Tasks per second of one `map` of `n` squares on `pool` with the given chunksize (`None`:
/// default).
fn timed_map(pool: &Pool, n: u64, chunksize: Option<usize>) -> f64 {
    let start = Instant::now();
    let out = match chunksize {
        None => pool.map(task!(square), 0..n),
        Some(c) => pool.map_chunked(task!(square), 0..n, c),
    }
    .expect("map");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(out.iter().sum::<u64>(), (0..n).map(|x| x * x).sum::<u64>());
    n as f64 / secs
}

/// Tasks per second of one `map` of `n` squares on a fresh pool.
fn map_rate(n: u64, chunksize: Option<usize>) -> f64 {
    timed_map(&pool2(), n, chunksize)
}

fn map_small(scale: f64) -> f64 {
    map_rate(scaled(200_000.0, scale), None)
}

/// Median tasks per second of 21 maps of `n` squares on one pool: the steady state, once the
/// pool's buffers and the allocator's pages are warm.
fn map_warm(scale: f64) -> f64 {
    let n = scaled(200_000.0, scale);
    let pool = pool2();
    let rates = (0..21).map(|_| timed_map(&pool, n, None)).collect();
    median(rates).expect("21 rates")
}

/// Median tasks per second of 5 maps of `n` tasks that each return a kilobyte, on one pool: a
/// chunk's results are then megabytes.
fn map_kilobytes(scale: f64) -> f64 {
    let n = scaled(20_000.0, scale);
    let pool = pool2();
    let rates = (0..5)
        .map(|_| {
            let start = Instant::now();
            let out = pool.map(task!(kilobyte), 0..n).expect("map");
            let rate = n as f64 / start.elapsed().as_secs_f64();
            let wrong = (0..n).find(|&x| out[x as usize] != vec![(x % 251) as u8; 1000]);
            assert_eq!(wrong, None);
            rate
        })
        .collect();
    median(rates).expect("5 rates")
}

fn map_chunk1(scale: f64) -> f64 {
    map_rate(scaled(20_000.0, scale), Some(1))
}

/// Tasks per second of `n` `apply_async` followed by all the `get`s.
fn apply_async(scale: f64) -> f64 {
    let n = scaled(20_000.0, scale);
    let pool = pool2();
    let start = Instant::now();
    let pending: Vec<_> = (0..n).map(|i| pool.apply_async(task!(square, i))).collect();
    let sum: u64 = pending.into_iter().map(|r| r.get().expect("get")).sum();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(sum, (0..n).map(|x| x * x).sum::<u64>());
    n as f64 / secs
}

/// Mean microseconds of one `apply`, one after another.
fn apply_roundtrip(scale: f64) -> f64 {
    let n = scaled(5_000.0, scale);
    let pool = pool2();
    let start = Instant::now();
    for i in 0..n {
        assert_eq!(pool.apply(task!(square, i)).expect("apply"), i * i);
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// Speedup of 16 tasks of about 0.1 s (times the scale) on two workers over one process, best
/// of 3 alternating rounds each, as the kit does.
fn cpu_speedup(scale: f64) -> f64 {
    let probe = 2_000_000u64;
    let start = Instant::now();
    black_box(spin(black_box(probe)));
    let per_iter = start.elapsed().as_secs_f64() / probe as f64;
    let iters = ((0.1 * scale / per_iter) as u64).max(1000);
    let pool = pool2();
    let (mut seq, mut par) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        let start = Instant::now();
        let serial: Vec<u64> = (0..16).map(|_| spin(black_box(iters))).collect();
        seq = seq.min(start.elapsed().as_secs_f64());
        let start = Instant::now();
        let parallel = pool
            .map_chunked(task!(spin), vec![iters; 16], 1)
            .expect("map");
        par = par.min(start.elapsed().as_secs_f64());
        assert_eq!(serial, parallel);
    }
    seq / par
}

/// Milliseconds from a `Pool` of 2 started by `method` to the first result, then close and join.
fn create_first_result_by(method: StartMethod, scale: f64) -> f64 {
    let n = scaled(20.0, scale).min(20);
    let start = Instant::now();
    for _ in 0..n {
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .build()
            .expect("pool");
        assert_eq!(pool.apply(task!(square, 3)).expect("apply"), 9);
        pool.close();
        pool.join().expect("join");
    }
    start.elapsed().as_secs_f64() * 1e3 / n as f64
}

fn create_first_result_fork(scale: f64) -> f64 {
    create_first_result_by(StartMethod::Fork, scale)
}

fn create_first_result_spawn(scale: f64) -> f64 {
    create_first_result_by(StartMethod::Spawn, scale)
}

fn create_first_result_forkserver(scale: f64) -> f64 {
    create_first_result_by(StartMethod::Forkserver, scale)
}

/// The create-to-first-result row of one method, against CPython's pool of the same method
/// (the kit measures fork; `py_pool_start.py` the others).
fn create_first_result_row(
    label: &'static str,
    ours: fn(f64) -> f64,
    suite: &'static str,
    python_method: &'static [(&'static str, &'static str)],
) -> Row {
    Row {
        label,
        unit: "ms",
        higher_is_better: false,
        ours,
        python: py(suite, "pool_create_apply_close", python_method),
        c_floor: None,
    }
}

fn py(
    suite: &'static str,
    bench: &'static str,
    params: &'static [(&'static str, &'static str)],
) -> Option<Ref> {
    Some(Ref {
        suite,
        bench,
        params,
    })
}

/// CPython's `pool_map_small` record with the given parameters.
fn py_map(params: &'static [(&'static str, &'static str)]) -> Option<Ref> {
    py("pool_map_small", "pool_map_small", params)
}

pub fn rows() -> Vec<Row> {
    vec![
        Row {
            label: "Pool(2).map x*x, 200k, default chunksize",
            unit: "tasks/s",
            higher_is_better: true,
            ours: map_small,
            python: py_map(&[("chunksize", "default")]),
            c_floor: None,
        },
        Row {
            label: "Pool(2).map x*x, 200k, warm pool (median of 21 maps)",
            unit: "tasks/s",
            higher_is_better: true,
            ours: map_warm,
            python: py("pool_map_warm", "pool_map_warm", &[]),
            c_floor: None,
        },
        Row {
            label: "Pool(2).map 20k one-kilobyte results, warm pool (median of 5 maps)",
            unit: "tasks/s",
            higher_is_better: true,
            ours: map_kilobytes,
            python: py("pool_map_kilobytes", "pool_map_kilobytes", &[]),
            c_floor: None,
        },
        Row {
            label: "Pool(2).map x*x, 20k, chunksize 1",
            unit: "tasks/s",
            higher_is_better: true,
            ours: map_chunk1,
            python: py_map(&[("chunksize", "1")]),
            c_floor: None,
        },
        Row {
            label: "Pool(2).apply_async x20k, then get",
            unit: "tasks/s",
            higher_is_better: true,
            ours: apply_async,
            python: py("pool_apply_async", "pool_apply_async", &[]),
            c_floor: None,
        },
        Row {
            label: "Pool(2).apply round trip",
            unit: "us",
            higher_is_better: false,
            ours: apply_roundtrip,
            python: py("pool_apply_roundtrip", "pool_apply_roundtrip", &[]),
            c_floor: None,
        },
        Row {
            label: "Pool(2).map 16 CPU tasks: speedup over 1 process",
            unit: "x",
            higher_is_better: true,
            ours: cpu_speedup,
            python: py("pool_map_cpu", "pool_map_cpu_speedup", &[]),
            c_floor: Some(Ref {
                suite: "cpu_scaling",
                bench: "cpu_scaling_speedup",
                params: &[("kernel", "xorshift, 1 chain (latency-bound)")],
            }),
        },
        create_first_result_row(
            "Pool(2): create, first result, close+join, fork",
            create_first_result_fork,
            "pool_create",
            &[("start_method", "fork")],
        ),
        create_first_result_row(
            "Pool(2): create, first result, close+join, forkserver",
            create_first_result_forkserver,
            "pool_create_by_method",
            &[("start_method", "forkserver")],
        ),
        create_first_result_row(
            "Pool(2): create, first result, close+join, spawn",
            create_first_result_spawn,
            "pool_create_by_method",
            &[("start_method", "spawn")],
        ),
    ]
}
