//! Pool: Python's rules, and the failures CPython's pool cannot survive, injected for real.

mod common;
#[path = "support/unencodable.rs"]
mod unencodable_item;

use multiproc::pool::{Callbacks, PoolError};
use multiproc::prelude::*;
use multiproc::Error;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
#[path = "support/pool_tasks.rs"]
mod pool_tasks;
use pool_tasks::*;

#[process_task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// The pid of the worker that ran item `_x`.
#[process_task]
fn pid_of(_x: u64) -> i32 {
    std::process::id() as i32
}

#[process_task]
fn filled(len: u64) -> Vec<u8> {
    pattern(len, 7)
}

#[process_task]
fn checksum(bytes: Vec<u8>) -> (u64, u64) {
    let sum = bytes.iter().map(|&b| u64::from(b)).sum();
    (bytes.len() as u64, sum)
}

/// Plain data (a `bytemuck::Pod` struct) travels as its bytes; the macro picks that per type.
#[derive(
    Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable, Serialize, Deserialize,
)]
#[repr(C)]
struct Point {
    x: f64,
    y: f64,
}

#[process_task]
fn label(p: Point, name: String, scale: [f32; 2], flag: bool) -> (String, Point) {
    let moved = Point {
        x: p.x * f64::from(scale[0]),
        y: p.y * f64::from(scale[1]),
    };
    (format!("{name}:{flag}"), moved)
}

#[test]
fn large_arguments_and_results_cross_whole() {
    let pool = Pool::new(2).unwrap();
    // Results larger than a worker's result ring and than a pipe buffer, with small ones between.
    let lens = vec![3 << 20, 10, 1 << 20, 0, 300_000];
    let out = pool.map_chunked(task!(filled), lens.clone(), 2).unwrap();
    assert_eq!(out.len(), lens.len());
    for (len, bytes) in lens.iter().zip(&out) {
        assert!(*bytes == pattern(*len, 7), "result of {len} bytes");
    }
    let args: Vec<Vec<u8>> = [2 << 20, 5, 70_000].map(|len| pattern(len, 3)).into();
    let expected: Vec<(u64, u64)> = args
        .iter()
        .map(|a| (a.len() as u64, a.iter().map(|&b| u64::from(b)).sum()))
        .collect();
    assert_eq!(pool.map(task!(checksum), args).unwrap(), expected);
}

#[test]
fn plain_and_serde_parameters_mix_in_one_task() {
    let pool = Pool::new(2).unwrap();
    let p = Point { x: 1.5, y: -2.0 };
    let rows = vec![
        (p, "a".to_owned(), [2.0f32, 0.5], true),
        (p, String::new(), [f32::NAN, 1.0], false),
    ];
    let out = pool.starmap(task!(label), rows).unwrap();
    assert_eq!(out[0], ("a:true".to_owned(), Point { x: 3.0, y: -1.0 }));
    assert_eq!(out[1].0, ":false");
    assert!(
        out[1].1.x.is_nan() && out[1].1.y == -2.0,
        "a NaN crosses as a NaN"
    );
}

#[test]
fn a_map_larger_than_its_window_gives_every_value_in_order() {
    // Eight chunks of 300 kB, four in flight: the caller waits on deliveries (touching the
    // result vector's pages meanwhile) while the workers finish chunks in and out of turn.
    let pool = Pool::new(2).unwrap();
    let n = 300_000u64;
    let squares = pool.map(task!(square), 0..n).unwrap();
    assert_eq!(squares.len(), n as usize);
    let wrong = squares.iter().zip(0..n).find(|(got, x)| **got != x * x);
    assert_eq!(wrong, None, "(value, item) of the first wrong value");
}

#[test]
fn map_starmap_apply_give_values_in_order() {
    let pool = Pool::new(2).unwrap();
    let squares = pool.map(task!(square), 0..1000).unwrap();
    assert_eq!(squares, (0..1000).map(|x| x * x).collect::<Vec<u64>>());
    assert_eq!(
        pool.map_chunked(task!(square), vec![3, 4], 1).unwrap(),
        vec![9, 16]
    );
    let sums = pool
        .starmap(task!(add), vec![(1, 2), (3, 4), (-5, 5)])
        .unwrap();
    assert_eq!(sums, vec![3, 7, 0]);
    assert_eq!(pool.apply(task!(add, 40, 2)).unwrap(), 42);
    let r = pool.apply_async(task!(add, a = 1, b = 2));
    assert_eq!(r.get_timeout(Duration::from_secs(10)).unwrap(), 3);
    let many: Vec<_> = (0..500)
        .map(|i| pool.apply_async(task!(square, i)))
        .collect();
    let got: Vec<u64> = many.into_iter().map(|r| r.get().unwrap()).collect();
    assert_eq!(got, (0..500).map(|x| x * x).collect::<Vec<u64>>());
}

#[test]
fn empty_input_gives_an_empty_result_at_once() {
    let pool = Pool::new(1).unwrap();
    let start = Instant::now();
    assert!(pool.map(task!(square), Vec::new()).unwrap().is_empty());
    assert!(pool
        .starmap(task!(add), Vec::<(i64, i64)>::new())
        .unwrap()
        .is_empty());
    assert_eq!(pool.imap(task!(square), Vec::new()).count(), 0);
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn pool_rules_are_errors() {
    assert!(matches!(
        Pool::new(0),
        Err(Error::Pool(PoolError::NoProcesses))
    ));
    let pool = Pool::new(1).unwrap();
    assert!(matches!(pool.join(), Err(Error::Pool(PoolError::Running))));
    assert!(matches!(
        pool.map_chunked(task!(square), vec![1], 0),
        Err(Error::Pool(PoolError::ZeroChunksize))
    ));
    pool.close();
    assert!(matches!(
        pool.apply(task!(square, 2)),
        Err(Error::Pool(PoolError::NotRunning))
    ));
    assert!(matches!(
        pool.map(task!(square), vec![1]),
        Err(Error::Pool(PoolError::NotRunning))
    ));
    pool.join().unwrap();
    pool.terminate();
    pool.terminate();
    assert!(matches!(
        pool.imap(task!(square), vec![1]).next(),
        Some(Err(Error::Pool(PoolError::NotRunning)))
    ));
}

#[test]
fn get_timeout_lets_the_task_go_on() {
    let pool = Pool::new(1).unwrap();
    let r = pool.apply_async(task!(nap, 300));
    assert!(matches!(
        r.successful(),
        Err(Error::Pool(PoolError::NotReady))
    ));
    let start = Instant::now();
    assert!(matches!(
        r.get_timeout(Duration::from_millis(50)),
        Err(Error::Pool(PoolError::Timeout))
    ));
    assert!(start.elapsed() >= Duration::from_millis(45));
    assert!(!r.ready());
    assert!(!r.wait_timeout(Duration::from_millis(10)));
    r.wait();
    assert!(r.ready());
    assert!(r.successful().unwrap());
    assert_eq!(r.get().unwrap(), 300);
}

#[test]
fn exactly_one_callback_runs_once_before_get_returns() {
    let pool = Pool::new(2).unwrap();
    let (tx, rx) = mpsc::channel();
    let (tx2, errors) = (tx.clone(), Arc::new(AtomicUsize::new(0)));
    let errors2 = errors.clone();
    let ok = pool.apply_async_with(
        task!(add, 2, 3),
        Callbacks::new()
            .on_success(move |v| tx.send(*v).unwrap())
            .on_error(move |_| {
                errors2.fetch_add(1, Ordering::SeqCst);
            }),
    );
    assert_eq!(ok.get().unwrap(), 5);
    assert_eq!(rx.try_recv(), Ok(5));
    // The pool runs callbacks under catch_unwind, so the error callback only records what it
    // saw and the test checks it after `get`.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let bad = pool.apply_async_with(
        task!(fail_on, 1, 1),
        Callbacks::new()
            .on_success(move |v: &u64| tx2.send(*v as i64).unwrap())
            .on_error(move |e| seen2.lock().unwrap().push(e.to_string())),
    );
    assert!(matches!(bad.get(), Err(Error::Panicked { .. })));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        1,
        "the error callback ran once before get returned: {seen:?}"
    );
    assert!(
        seen[0].contains("bad item 1"),
        "unexpected error: {}",
        seen[0]
    );
    assert_eq!(errors.load(Ordering::SeqCst), 0);
    assert!(rx.try_recv().is_err());
    let got = Arc::new(Mutex::new(None));
    let got2 = got.clone();
    let m = pool.map_async_with(
        task!(square),
        vec![2, 3],
        None,
        Callbacks::new().on_success(move |v: &Vec<u64>| *got2.lock().unwrap() = Some(v.clone())),
    );
    assert_eq!(m.get().unwrap(), vec![4, 9]);
    assert_eq!(*got.lock().unwrap(), Some(vec![4, 9]));
}

#[test]
fn imap_is_lazy_and_ordered_and_unordered_follows_completion() {
    let pool = Pool::new(2).unwrap();
    let first: Vec<u64> = pool
        .imap(task!(square), 0..u64::MAX)
        .take(10)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(first, (0..10).map(|x| x * x).collect::<Vec<u64>>());
    let ordered: Vec<u64> = pool
        .imap(task!(nap), vec![200, 1, 1])
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ordered, vec![200, 1, 1]);
    let unordered: Vec<u64> = pool
        .imap_unordered(task!(nap), vec![300, 1])
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(unordered, vec![1, 300]);
    let chunked = pool
        .imap_chunked(task!(square), 0..10, 3)
        .map(|r| r.unwrap());
    assert_eq!(chunked.sum::<u64>(), 285);
}

#[test]
fn close_lets_queued_work_and_running_imaps_finish() {
    let pool = Pool::new(2).unwrap();
    let r = pool.map_async(task!(nap), vec![100, 100, 100]);
    let mut lazy = pool.imap(task!(square), 0..20);
    pool.close();
    let rest: Vec<u64> = lazy.by_ref().map(|r| r.unwrap()).collect();
    assert_eq!(rest.len(), 20);
    drop(lazy);
    pool.join().unwrap();
    assert_eq!(r.get().unwrap(), vec![100, 100, 100]);
}

#[test]
fn imap_reads_its_input_only_as_far_as_needed() {
    let pool = Pool::new(2).unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let input = (0..u64::MAX).inspect(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let first: Vec<u64> = pool
        .imap(task!(square), input)
        .take(5)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(first, vec![0, 1, 4, 9, 16]);
    // The window is 8 chunks of one per worker, refilled as results are taken.
    let read = pulled.load(Ordering::SeqCst);
    assert!((5..=5 + 16).contains(&read), "{read} items read");
}

/// Waits until the file `gate` exists, then returns the length of `payload`: a task that holds
/// its worker until the test lets it go.
#[process_task]
fn len_after_gate(item: (PathBuf, Vec<u8>)) -> usize {
    let (gate, payload) = item;
    let opened = common::eventually(Duration::from_secs(20), || gate.exists());
    assert!(opened, "the gate never opened");
    payload.len()
}

#[test]
fn map_packs_its_input_a_window_ahead_of_the_results_and_finishes_across_close() {
    let pool = Pool::new(2).unwrap();
    let gate = scratch("gate");
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let for_tasks = gate.clone();
    let input = (0..40u8).map(move |i| {
        counter.fetch_add(1, Ordering::SeqCst);
        (for_tasks.clone(), vec![i; 100_000])
    });
    std::thread::scope(|scope| {
        let map = scope.spawn(|| pool.map_chunked(task!(len_after_gate), input, 1));
        // The workers finish nothing until the gate opens, so the map packs its window (512 KiB
        // of these 100 kB chunks: 5 of them) and waits.
        let packed = || pulled.load(Ordering::SeqCst);
        assert!(common::eventually(Duration::from_secs(10), || packed() >= 5));
        std::thread::sleep(Duration::from_millis(200));
        let held = packed();
        // As in CPython, a map already called finishes its whole input across a `close`.
        pool.close();
        std::fs::write(&gate, b"open").unwrap();
        assert!(
            (5..=6).contains(&held),
            "{held} of 40 items read while the workers held"
        );
        let lens = map.join().unwrap().unwrap();
        assert_eq!(lens, vec![100_000; 40]);
    });
    assert_eq!(pulled.load(Ordering::SeqCst), 40);
    pool.join().unwrap();
}

/// The lengths of the runs of equal pids: the chunks, when each ran in a process of its own.
fn chunk_runs(pids: &[i32]) -> Vec<usize> {
    pids.chunk_by(|a, b| a == b).map(<[i32]>::len).collect()
}

#[test]
fn the_default_chunksize_is_pythons_formula() {
    // Workers that exit after each chunk: each chunk runs in a process of its own, so the pids
    // show the chunks. ceil(10 / (4 x 1)) = 3 items a chunk; ceil(17 / (4 x 2)) = 3.
    let cases = [(1, 10, vec![3, 3, 3, 1]), (2, 17, vec![3, 3, 3, 3, 3, 2])];
    for (processes, items, runs) in cases {
        let pool = Pool::builder()
            .processes(processes)
            .maxtasksperchild(1)
            .build()
            .unwrap();
        let pids = pool.map(task!(pid_of), 0..items).unwrap();
        assert_eq!(chunk_runs(&pids), runs);
    }
}
