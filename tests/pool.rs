//! Pool: Python's rules, and the failures CPython's pool cannot survive, injected for real.

mod common;
#[path = "support/unencodable.rs"]
mod unencodable_item;

use multiproc::error::CodecError;
use multiproc::pool::{Callbacks, PoolError};
use multiproc::prelude::*;
use multiproc::Error;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

#[process_task]
fn square(x: u64) -> u64 {
    x * x
}

#[process_task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[process_task]
fn pid() -> i32 {
    std::process::id() as i32
}

/// The pid of the worker that ran item `_x`.
#[process_task]
fn pid_of(_x: u64) -> i32 {
    std::process::id() as i32
}

#[process_task]
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[process_task]
fn fail_on(x: u64, bad: u64) -> u64 {
    if x == bad {
        panic!("bad item {x}");
    }
    std::thread::sleep(Duration::from_millis(50));
    x
}

/// Writes this worker's pid to `path`, then sleeps: a task to kill while it runs.
#[process_task]
fn hold(path: PathBuf, ms: u64) -> u64 {
    std::fs::write(&path, std::process::id().to_string()).expect("write pid");
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Appends one line to `path`: counts initializer runs across processes.
#[process_task]
fn count_run(path: PathBuf) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .expect("open");
    writeln!(f, "{}", std::process::id()).expect("append");
}

#[process_task]
fn noop() {}

#[process_task]
fn panics_on_three(x: u64) -> u64 {
    assert_ne!(x, 3, "three is refused");
    x
}

#[process_task]
fn broken_init() {
    panic!("the initializer fails");
}

/// Whether starting a process from here is refused as from a daemonic process.
#[process_task]
fn try_start_child() -> bool {
    matches!(
        Process::new(task!(noop)).start(),
        Err(Error::DaemonicParent)
    )
}

/// Returns a value whose encoding fails.
#[process_task]
fn unencodable() -> unencodable_item::Item {
    unencodable_item::Item::Bad(0)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("multiproc-pool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

fn wait_for_pid(path: &Path) -> i32 {
    let mut pid = None;
    let started = common::eventually(Duration::from_secs(10), || {
        pid = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.parse().ok());
        pid.is_some()
    });
    assert!(started, "the task never started");
    pid.expect("the pid read when the task started")
}

/// A byte pattern that depends on the position and a seed, to check data crosses intact.
fn pattern(len: u64, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
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
fn a_panic_fails_only_its_task_and_map_reports_after_all_chunks() {
    let pool = Pool::new(2).unwrap();
    let before: Vec<i32> = (0..4)
        .map(|_| pool.apply(task!(pid).bind(())).unwrap())
        .collect();
    let start = Instant::now();
    let err = pool
        .starmap_chunked(task!(fail_on), (0..8).map(|x| (x, 0)), 1)
        .unwrap_err();
    // Item 0 fails at once; the other seven take 50 ms each on two workers.
    assert!(
        start.elapsed() >= Duration::from_millis(140),
        "{:?}",
        start.elapsed()
    );
    match err {
        Error::Panicked { pid, message } => {
            assert!(before.contains(&pid));
            assert!(message.contains("bad item 0"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let one = pool.apply_async(task!(fail_on, 3, 3));
    let two = pool.apply_async(task!(fail_on, 4, 3));
    assert!(matches!(one.get(), Err(Error::Panicked { .. })));
    assert_eq!(two.get().unwrap(), 4);
    // No worker was lost to the panics.
    let after = pool.apply(task!(pid).bind(())).unwrap();
    assert!(before.contains(&after));
}

#[test]
fn an_unencodable_result_fails_only_its_task() {
    let pool = Pool::new(1).unwrap();
    let bad = pool.apply_async(task!(unencodable).bind(()));
    let good = pool.apply_async(task!(square, 5));
    match bad.get() {
        Err(Error::Task { failure, .. }) => {
            let message = failure.to_string();
            assert!(message.starts_with("the task's result could not be encoded: "));
            assert!(!message.contains("could not encode"), "{message}");
            assert!(matches!(failure, multiproc::error::TaskFailure::Encode(_)))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(good.get().unwrap(), 25);
}

#[process_task]
fn unwrap_item(item: unencodable_item::Item) -> u32 {
    match item {
        unencodable_item::Item::Good(n) | unencodable_item::Item::Bad(n) => n,
    }
}

#[test]
fn an_unencodable_argument_fails_its_chunk_with_the_codec_message_once() {
    use unencodable_item::Item;
    let pool = Pool::new(1).unwrap();
    let items = vec![Item::Good(1), Item::Bad(2), Item::Good(3)];
    let err = pool.map_chunked(task!(unwrap_item), items, 2).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, Error::Codec(CodecError::Encode(_))),
        "{err:?}"
    );
    assert_eq!(message.matches("could not encode").count(), 1, "{message}");
    // The pool is still usable.
    let good = pool.map_chunked(task!(unwrap_item), vec![Item::Good(3)], 2);
    assert_eq!(good.unwrap(), vec![3]);
}

#[test]
fn a_killed_worker_fails_the_task_it_held_and_is_replaced() {
    let pool = Pool::new(2).unwrap();
    let path = scratch("held");
    let victim = pool.apply_async(task!(hold, path.clone(), 20_000));
    let pid = wait_for_pid(&path);
    let others: Vec<_> = (0..20).map(|ms| pool.apply_async(task!(nap, ms))).collect();
    std::thread::sleep(Duration::from_millis(50));
    // SAFETY: kill has no memory effects; `pid` is a worker of this test's pool.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let start = Instant::now();
    match victim.get() {
        Err(Error::Signaled { pid: dead, signal }) => {
            assert_eq!((dead, signal), (pid, libc::SIGKILL));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    let naps: Vec<u64> = others.into_iter().map(|r| r.get().unwrap()).collect();
    assert_eq!(naps, (0..20).collect::<Vec<u64>>());
    let pids: std::collections::HashSet<i32> = (0..6)
        .map(|_| pool.apply(task!(pid).bind(())).unwrap())
        .collect();
    assert!(!pids.contains(&pid));
    assert_eq!(pool.map(task!(square), 0..100).unwrap().len(), 100);
}

#[test]
fn dropping_a_busy_pool_ends_it_in_bounded_time() {
    let path = scratch("busy");
    let pool = Pool::new(2).unwrap();
    let r = pool.apply_async(task!(hold, path.clone(), 30_000));
    let pid = wait_for_pid(&path);
    let start = Instant::now();
    pool.terminate();
    assert!(matches!(r.get(), Err(Error::Pool(PoolError::Terminated))));
    drop(pool);
    assert!(start.elapsed() < Duration::from_secs(3));
    // The worker is gone: signal 0 finds no such process (it was reaped).
    // SAFETY: kill with signal 0 only checks that the process exists.
    assert_eq!(unsafe { libc::kill(pid, 0) }, -1);

    let pool = Pool::new(1).unwrap();
    let _busy = pool.apply_async(task!(nap, 30_000));
    let start = Instant::now();
    drop(pool);
    assert!(start.elapsed() < Duration::from_secs(3));
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

/// A kilobyte that says which item it answers; item 900 panics instead.
#[process_task]
fn kilobyte_or_panic(x: u64) -> Vec<u8> {
    assert_ne!(x, 900, "bad item {x}");
    pattern(1000, x as u8)
}

/// A kilobyte that says which item it answers; item 900 writes the worker's pid to the path and
/// sleeps, to be killed there.
#[process_task]
fn kilobyte_or_hold(item: (u64, PathBuf)) -> Vec<u8> {
    let (x, path) = item;
    if x == 900 {
        hold(path, 20_000);
    }
    pattern(1000, x as u8)
}

#[test]
fn a_failure_late_in_a_large_chunk_fails_only_its_call() {
    // Chunks of a megabyte of results, which a worker sends back in parts.
    let pool = Pool::new(2).unwrap();
    let err = pool
        .map_chunked(task!(kilobyte_or_panic), 0..2000, 1000)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Panicked { message, .. } if message.contains("bad item 900")),
        "{err:?}"
    );
    let got: Vec<_> = pool
        .imap_chunked(task!(kilobyte_or_panic), 0..2000, 1000)
        .collect();
    assert_eq!(got.len(), 2000);
    for (x, one) in (0..2000).zip(got) {
        match one {
            Ok(bytes) => assert!(x != 900 && bytes == pattern(1000, x as u8), "item {x}"),
            Err(e) => assert!(
                x == 900 && matches!(e, Error::Panicked { .. }),
                "item {x}: {e:?}"
            ),
        }
    }
}

#[test]
fn a_worker_killed_mid_chunk_fails_only_the_calls_it_had_not_answered() {
    let pool = Pool::new(1).unwrap();
    let path = scratch("mid-chunk");
    let items: Vec<_> = (0..1000).map(|x| (x, path.clone())).collect();
    let got = pool.imap_chunked(task!(kilobyte_or_hold), items, 1000);
    let killer = std::thread::spawn(move || {
        let pid = wait_for_pid(&path);
        // SAFETY: kill has no memory effects; `pid` is this test's pool's worker.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        pid
    });
    let got: Vec<_> = got.collect();
    let pid = killer.join().unwrap();
    // The parts published before item 900 (128 KiB, about 130 items, each) hold their values;
    // every call after them fails.
    let answered = got.iter().take_while(|one| one.is_ok()).count();
    assert!((500..900).contains(&answered), "{answered} answered");
    for (x, one) in (0..1000).zip(&got) {
        match one {
            Ok(bytes) => assert!(*bytes == pattern(1000, x as u8), "item {x}"),
            Err(Error::Signaled { pid: dead, signal }) => {
                assert!(x >= answered as u64);
                assert_eq!((*dead, *signal), (pid, libc::SIGKILL));
            }
            Err(e) => panic!("item {x}: {e:?}"),
        }
    }
}

/// The most KiB resident in any of process `pid`'s mappings of a pool's result ring.
fn ring_resident_kib(pid: i32) -> usize {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut in_ring = false;
    let mut most = 0;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            // A field of the mapping above ("Rss:    256 kB").
            Some("Rss:") if in_ring => {
                let kib = fields.next().and_then(|kib| kib.parse().ok());
                most = most.max(kib.unwrap_or(0));
            }
            Some(field) if field.ends_with(':') => {}
            // A mapping: address range, permissions, offset, device, inode, name.
            _ => in_ring = line.contains("multiproc-ring"),
        }
    }
    most
}

/// Why a worker's ring cannot be seen prefaulted here, if it cannot: the prefault switch
/// (`MULTIPROC_PREFAULT`, `0` or a list with `-ring`) turns it off, or the kernel lacks
/// `MADV_POPULATE_WRITE` (Linux before 5.14 fails it with `EINVAL`).
fn ring_prefault_unavailable() -> Option<String> {
    let switch = std::env::var("MULTIPROC_PREFAULT").unwrap_or_default();
    if switch
        .split(',')
        .any(|word| matches!(word.trim(), "0" | "-ring"))
    {
        return Some(format!("MULTIPROC_PREFAULT={switch} turns `ring` off"));
    }
    // A page of the heap, page-aligned, as madvise wants.
    let layout = std::alloc::Layout::from_size_align(4096, 4096).unwrap();
    // SAFETY: the layout's size is not zero.
    let page = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!page.is_null());
    // SAFETY: populating writes no byte of the page, which this function owns.
    let populated = unsafe { libc::madvise(page.cast(), layout.size(), libc::MADV_POPULATE_WRITE) };
    let error = std::io::Error::last_os_error();
    // SAFETY: allocated above with this layout; nothing refers to it.
    unsafe { std::alloc::dealloc(page, layout) };
    (populated != 0).then(|| format!("the kernel lacks MADV_POPULATE_WRITE ({error})"))
}

#[test]
fn a_worker_maps_its_ring_as_it_starts_unless_it_is_renewed_soon() {
    if let Some(why) = ring_prefault_unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let pool = Pool::new(1).unwrap();
    let worker = pool.apply(task!(pid).bind(())).unwrap();
    assert_eq!(ring_resident_kib(worker), 256);
    let renewed = Pool::builder()
        .processes(1)
        .maxtasksperchild(100)
        .build()
        .unwrap();
    let worker = renewed.apply(task!(pid).bind(())).unwrap();
    assert!(ring_resident_kib(worker) < 256);
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
fn initializer_runs_once_per_worker_and_maxtasksperchild_renews_workers() {
    let path = scratch("init");
    let pool = Pool::builder()
        .processes(2)
        .initializer(task!(count_run, path.clone()))
        .build()
        .unwrap();
    assert_eq!(pool.map_chunked(task!(square), 0..50, 1).unwrap().len(), 50);
    pool.close();
    pool.join().unwrap();
    let runs = std::fs::read_to_string(&path).unwrap();
    let pids: std::collections::HashSet<&str> = runs.lines().collect();
    assert_eq!((runs.lines().count(), pids.len()), (2, 2));

    let pool = Pool::builder()
        .processes(1)
        .maxtasksperchild(1)
        .build()
        .unwrap();
    let pids: std::collections::HashSet<i32> = (0..4)
        .map(|_| pool.apply(task!(pid).bind(())).unwrap())
        .collect();
    assert_eq!(pids.len(), 4);
}

#[test]
fn workers_are_daemonic_and_a_child_process_may_run_its_own_pool() {
    let pool = Pool::new(1).unwrap();
    assert!(pool.apply(task!(try_start_child).bind(())).unwrap());
    let child = Process::spawn(|| {
        let inner = Pool::new(2).expect("pool in a child");
        inner
            .map(task!(square), 0..10)
            .expect("map in a child")
            .iter()
            .sum::<u64>()
    })
    .unwrap();
    assert_eq!(child.join().unwrap(), 285);
}

#[test]
fn a_failing_initializer_fails_the_work_instead_of_hanging() {
    let pool = Pool::builder()
        .processes(1)
        .initializer(task!(broken_init).bind(()))
        .build()
        .unwrap();
    let start = Instant::now();
    assert!(matches!(
        pool.apply(task!(square, 2)),
        Err(Error::Exited { code: 1, .. })
    ));
    assert!(matches!(
        pool.map(task!(square), 0..10),
        Err(Error::Exited { code: 1, .. })
    ));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_panic_inside_a_chunk_fails_only_its_own_item() {
    let pool = Pool::new(1).unwrap();
    let got: Vec<_> = pool.imap_chunked(task!(panics_on_three), 0..6, 6).collect();
    assert_eq!(got.len(), 6);
    for (x, one) in got.into_iter().enumerate() {
        match (x, one) {
            (3, Err(Error::Panicked { message, .. })) => assert!(message.contains("three")),
            (x, Ok(v)) => assert_eq!(v, x as u64),
            other => panic!("unexpected {other:?}"),
        }
    }
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

#[test]
fn terminate_from_a_callback_ends_the_pool() {
    let pool = Arc::new(Pool::new(2).unwrap());
    let inside = pool.clone();
    let first = pool.apply_async_with(
        task!(square, 3),
        Callbacks::new().on_success(move |_| inside.terminate()),
    );
    assert_eq!(first.get().unwrap(), 9);
    let start = Instant::now();
    pool.join().unwrap();
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(matches!(
        pool.apply(task!(square, 4)),
        Err(Error::Pool(PoolError::NotRunning))
    ));
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
