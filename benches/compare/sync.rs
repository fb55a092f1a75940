//! Shared memory and synchronisation rows: an uncontended lock, locked increments of a `Value`
//! from two processes, a child summing an `Array<f64>`, and `Event` ping-pong.

use crate::harness::{scaled, Ref, Row};
use multiproc::prelude::*;
use std::hint::black_box;
use std::time::Instant;

/// Iterations for a row: [`scaled`], with a floor of 1000 for rows timed per operation.
fn count(base: f64, scale: f64) -> u64 {
    scaled(base, scale).max(1000)
}

/// Nanoseconds per call of `lock_unlock`, which takes and drops a guard, with a counter
/// increment inside, as the C row does.
fn per_lock(scale: f64, mut lock_unlock: impl FnMut(&mut u64)) -> f64 {
    let n = count(10_000_000.0, scale);
    let mut counter = 0u64;
    let start = Instant::now();
    for _ in 0..n {
        lock_unlock(&mut counter);
    }
    assert_eq!(counter, n);
    start.elapsed().as_secs_f64() * 1e9 / n as f64
}

/// An uncontended `Lock`.
fn lock_uncontended(scale: f64) -> f64 {
    let lock = Lock::new().expect("lock");
    per_lock(scale, |counter| {
        let guard = lock.lock();
        *counter = black_box(*counter + 1);
        drop(guard);
    })
}

/// An uncontended `RLock`.
fn rlock_uncontended(scale: f64) -> f64 {
    let lock = RLock::new().expect("rlock");
    per_lock(scale, |counter| {
        let guard = lock.lock();
        *counter = black_box(*counter + 1);
        drop(guard);
    })
}

#[process_task]
fn increment(value: Value<i32>, go: Event, n: u64) {
    go.wait();
    for _ in 0..n {
        if let Ok(mut v) = value.lock() {
            *v += 1;
        }
    }
}

/// Operations per second of two processes each doing `n` locked increments of one `Value`.
fn value_increment(scale: f64) -> f64 {
    let n = count(100_000.0, scale);
    let value = Value::new(0i32).expect("value");
    let go = Event::new().expect("event");
    let children: Vec<_> = (0..2)
        .map(|_| {
            Process::new(task!(increment, value.clone(), go.clone(), n))
                .start()
                .expect("start")
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let start = Instant::now();
    go.set();
    for child in children {
        child.join().expect("join");
    }
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(value.get() as u64, 2 * n, "the total is exact");
    (2 * n) as f64 / elapsed
}

#[process_task]
fn sum_array(array: Array<f64>) -> (f64, f64) {
    let start = Instant::now();
    let sum = match array.lock() {
        Ok(items) => sum_8_chains(&items),
        Err(_) => f64::NAN,
    };
    (sum, start.elapsed().as_secs_f64())
}

/// The sum with 8 independent chains of additions, as the C row does (exact here: every partial
/// sum is below 2^53).
fn sum_8_chains(items: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = items.chunks_exact(8);
    let rest: f64 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (a, x) in acc.iter_mut().zip(chunk) {
            *a += x;
        }
    }
    acc.iter().sum::<f64>() + rest
}

/// GB/s of a child summing an `Array<f64>` of 10 million (timed inside the child, as the
/// kit does).
fn array_sum(scale: f64) -> f64 {
    let n = count(10_000_000.0, scale) as usize;
    let array = Array::<f64>::new(n).expect("array");
    if let Ok(mut items) = array.lock() {
        for (i, x) in items.iter_mut().enumerate() {
            *x = i as f64;
        }
    }
    let child = Process::new(task!(sum_array, array.clone()))
        .start()
        .expect("start");
    let (sum, seconds) = child.join().expect("join");
    assert_eq!(sum, (n * (n - 1) / 2) as f64);
    (8 * n) as f64 / seconds / 1e9
}

#[process_task]
fn pong(ping: Event, pong: Event, n: u64) {
    for _ in 0..n {
        ping.wait();
        ping.clear();
        pong.set();
    }
}

/// Round trips per second between the parent and a child through two `Event`s.
fn event_pingpong(scale: f64) -> f64 {
    let n = count(20_000.0, scale);
    let (ping, pong_event) = (Event::new().expect("event"), Event::new().expect("event"));
    let child = Process::new(task!(pong, ping.clone(), pong_event.clone(), n))
        .start()
        .expect("start");
    let start = Instant::now();
    for _ in 0..n {
        ping.set();
        pong_event.wait();
        pong_event.clear();
    }
    let elapsed = start.elapsed().as_secs_f64();
    child.join().expect("join");
    n as f64 / elapsed
}

const C_FUTEX_MUTEX: &str = "futex mutex (Drepper #3)";

/// A row for an uncontended lock, beside CPython's `bench` record and the C futex mutex.
fn lock_row(
    label: &'static str,
    ours: fn(f64) -> f64,
    bench: &'static str,
    params: &'static [(&'static str, &'static str)],
) -> Row {
    Row {
        label,
        unit: "ns/op",
        higher_is_better: false,
        ours,
        python: Some(Ref {
            suite: "lock_uncontended",
            bench,
            params,
        }),
        c_floor: Some(Ref {
            suite: "lock_uncontended",
            bench: "lock_uncontended",
            params: &[("lock", C_FUTEX_MUTEX)],
        }),
    }
}

pub fn rows() -> Vec<Row> {
    vec![
        lock_row(
            "Lock acquire+release, uncontended",
            lock_uncontended,
            "lock_uncontended",
            &[
                ("lock", "multiprocessing.Lock"),
                ("style", "acquire/release"),
            ],
        ),
        lock_row(
            "RLock acquire+release, uncontended",
            rlock_uncontended,
            "rlock_uncontended",
            &[
                ("lock", "multiprocessing.RLock"),
                ("style", "acquire/release"),
            ],
        ),
        Row {
            label: "Value locked increments, 2 processes",
            unit: "ops/s",
            higher_is_better: true,
            ours: value_increment,
            python: Some(Ref {
                suite: "value_increment",
                bench: "value_increment_contended",
                params: &[("processes", "2")],
            }),
            c_floor: Some(Ref {
                suite: "contended_increment",
                bench: "contended_increment",
                params: &[("lock", C_FUTEX_MUTEX)],
            }),
        },
        Row {
            label: "Array<f64> sum of 10M in a child",
            unit: "GB/s",
            higher_is_better: true,
            ours: array_sum,
            python: Some(Ref {
                suite: "array_sum",
                bench: "array_sum",
                params: &[("access", "memoryview")],
            }),
            c_floor: Some(Ref {
                suite: "shared_array_sum",
                bench: "shared_array_sum",
                params: &[],
            }),
        },
        Row {
            label: "Event ping-pong, scheduler placement",
            unit: "roundtrips/s",
            higher_is_better: true,
            ours: event_pingpong,
            python: Some(Ref {
                suite: "event_pingpong",
                bench: "event_pingpong",
                params: &[
                    ("primitive", "2x multiprocessing.Event"),
                    ("placement", "scheduler"),
                ],
            }),
            c_floor: Some(Ref {
                suite: "pingpong",
                bench: "pingpong",
                params: &[
                    ("primitive", "sem_t(pshared) pair"),
                    ("placement", "scheduler"),
                ],
            }),
        },
    ]
}
