//! Rows against what a Rust user would pick instead of a process pool: rayon's `par_iter`, on
//! as many threads as the pool has workers. Neither CPython nor the C floor has these figures;
//! the ratio rows measure both sides in one process, alternately, so that the machine's drift
//! falls on both.
//!
//! The CPU-bound job is 16 prime counts by trial division, each over its own range of
//! 12,500 numbers near 10^9: about 0.3 s of work in all (times `SCALE`) in one process. The
//! tiny-task job is the 200,000 squares of the pool rows.

use crate::harness::{median, scaled, Row};
use multiproc::prelude::*;
use rayon::prelude::*;
use std::hint::black_box;
use std::time::Instant;

/// Items of the CPU-bound job.
const ITEMS: u64 = 16;
/// Numbers per item at scale 1: the 16 items take about 0.3 s in one process.
const WIDTH: u64 = 12_500;
/// Where the ranges start: trial division costs about the same per number up there.
const BASE: u64 = 1_000_000_000;

/// Counts the primes in `[range[0], range[1])` by trial division.
#[process_task]
fn count_primes(range: [u64; 2]) -> u64 {
    (range[0]..range[1]).filter(|&n| is_prime(n)).count() as u64
}

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let mut d = 3;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

#[process_task]
fn square(x: u64) -> u64 {
    x * x
}

/// The 16 ranges of the job. Their width is fixed (not calibrated per run), so that every row
/// measures the same work: 12,500 numbers near 10^9 take about 19 ms here (1.5 µs a number).
fn job(scale: f64) -> Vec<[u64; 2]> {
    let width = ((WIDTH as f64 * scale) as u64).max(100);
    (0..ITEMS)
        .map(|i| [BASE + i * width, BASE + (i + 1) * width])
        .collect()
}

/// rayon's thread pool of two threads, as many as the process pool has workers.
fn rayon2() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("rayon pool")
}

/// A pool of two workers, warmed up, and rayon's two threads. The process pool is made first,
/// so its workers are forked before rayon starts any thread.
fn pools() -> (Pool, rayon::ThreadPool) {
    let pool = Pool::new(2).expect("pool");
    pool.map(task!(square), 0..1000).expect("warm-up");
    (pool, rayon2())
}

fn serial(ranges: &[[u64; 2]]) -> Vec<u64> {
    ranges.iter().map(|&r| count_primes(black_box(r))).collect()
}

fn with_rayon(threads: &rayon::ThreadPool, ranges: &[[u64; 2]]) -> Vec<u64> {
    threads.install(|| {
        ranges
            .par_iter()
            .map(|&r| count_primes(black_box(r)))
            .collect()
    })
}

fn with_pool(pool: &Pool, ranges: &[[u64; 2]]) -> Vec<u64> {
    pool.map(task!(count_primes), ranges.iter().copied())
        .expect("map")
}

/// Seconds that `f` takes, and its output.
fn timed<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed().as_secs_f64(), out)
}

/// Milliseconds of the CPU-bound job done by `how` (best of 3), checked against one process.
fn cpu_job_ms(scale: f64, how: fn(&Pool, &rayon::ThreadPool, &[[u64; 2]]) -> Vec<u64>) -> f64 {
    let ranges = job(scale);
    let (pool, threads) = pools();
    let expected = serial(&ranges);
    let best = (0..3)
        .map(|_| {
            let (secs, out) = timed(|| how(&pool, &threads, &ranges));
            assert_eq!(out, expected);
            secs
        })
        .fold(f64::MAX, f64::min);
    best * 1e3
}

fn cpu_serial(scale: f64) -> f64 {
    cpu_job_ms(scale, |_, _, ranges| serial(ranges))
}

fn cpu_rayon(scale: f64) -> f64 {
    cpu_job_ms(scale, |_, threads, ranges| with_rayon(threads, ranges))
}

fn cpu_pool(scale: f64) -> f64 {
    cpu_job_ms(scale, |pool, _, ranges| with_pool(pool, ranges))
}

/// The pool's time for the CPU-bound job over rayon's: best of 5 rounds each, the two
/// alternating. Above 1, the pool is slower.
fn cpu_ratio(scale: f64) -> f64 {
    let ranges = job(scale);
    let (pool, threads) = pools();
    let expected = serial(&ranges);
    let (mut ours, mut theirs) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        let (secs, out) = timed(|| with_rayon(&threads, &ranges));
        assert_eq!(out, expected);
        theirs = theirs.min(secs);
        let (secs, out) = timed(|| with_pool(&pool, &ranges));
        assert_eq!(out, expected);
        ours = ours.min(secs);
    }
    ours / theirs
}

/// Tasks per second of rayon's `par_iter().map().collect()` of `n` squares, median of 21.
fn tiny_rayon(scale: f64) -> f64 {
    let n = scaled(200_000.0, scale);
    let threads = rayon2();
    let rates = (0..21)
        .map(|_| n as f64 / tiny_rayon_once(&threads, n))
        .collect();
    median(rates).expect("21 rates")
}

fn tiny_rayon_once(threads: &rayon::ThreadPool, n: u64) -> f64 {
    let items: Vec<u64> = (0..n).collect();
    let (secs, out) = timed(|| {
        threads.install(|| {
            items
                .par_iter()
                .map(|&x| black_box(x) * x)
                .collect::<Vec<u64>>()
        })
    });
    assert_eq!(out.len() as u64, n);
    secs
}

fn tiny_pool_once(pool: &Pool, n: u64) -> f64 {
    let (secs, out) = timed(|| pool.map(task!(square), 0..n).expect("map"));
    assert_eq!(out.len() as u64, n);
    secs
}

/// The time of a map of `n` squares over rayon's, medians of 21 each, alternating, on a warm
/// pool (`first` false) or for each pool's first map after its warm-up (`first` true, a new
/// pool every time, as the kit's first-map row). Above 1, the pool is slower.
fn tiny_ratio(scale: f64, first: bool) -> f64 {
    let n = scaled(200_000.0, scale);
    let (pool, threads) = pools();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..21 {
        theirs.push(tiny_rayon_once(&threads, n));
        if first {
            let fresh = Pool::new(2).expect("pool");
            fresh.map(task!(square), 0..1000).expect("warm-up");
            ours.push(tiny_pool_once(&fresh, n));
        } else {
            ours.push(tiny_pool_once(&pool, n));
        }
    }
    median(ours).expect("21 times") / median(theirs).expect("21 times")
}

fn tiny_warm_ratio(scale: f64) -> f64 {
    tiny_ratio(scale, false)
}

fn tiny_first_ratio(scale: f64) -> f64 {
    tiny_ratio(scale, true)
}

fn row(label: &'static str, unit: &'static str, higher: bool, ours: fn(f64) -> f64) -> Row {
    Row {
        label,
        unit,
        higher_is_better: higher,
        ours,
        python: None,
        c_floor: None,
    }
}

pub fn rows() -> Vec<Row> {
    vec![
        row(
            "rayon: CPU job, 16 prime counts, 1 process",
            "ms",
            false,
            cpu_serial,
        ),
        row(
            "rayon: CPU job, 16 prime counts, rayon par_iter, 2 threads",
            "ms",
            false,
            cpu_rayon,
        ),
        row(
            "rayon: CPU job, 16 prime counts, Pool(2).map",
            "ms",
            false,
            cpu_pool,
        ),
        row(
            "rayon: CPU job, Pool(2).map time over rayon's (same process)",
            "x",
            false,
            cpu_ratio,
        ),
        row(
            "rayon: x*x, 200k, rayon par_iter().map().collect() (median of 21)",
            "tasks/s",
            true,
            tiny_rayon,
        ),
        row(
            "rayon: x*x, 200k, warm Pool(2).map time over rayon's (same process)",
            "x",
            false,
            tiny_warm_ratio,
        ),
        row(
            "rayon: x*x, 200k, first Pool(2).map time over rayon's (same process)",
            "x",
            false,
            tiny_first_ratio,
        ),
    ]
}
