//! Pool failures: panics, dead workers, unencodable values, initializers, renewal and
//! termination, across real processes.

mod common;
#[path = "support/unencodable.rs"]
mod unencodable_item;

use multiproc::error::CodecError;
use multiproc::pool::{Callbacks, PoolError};
use multiproc::prelude::*;
use multiproc::Error;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
#[path = "support/pool_tasks.rs"]
mod pool_tasks;
#[path = "support/worker_death.rs"]
mod worker_death;
use pool_tasks::*;
use worker_death::{hold, wait_for_pid};

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

#[test]
fn a_panic_fails_only_its_task_and_map_reports_after_all_chunks() {
    let pool = Pool::new(2).unwrap();
    let before: Vec<i32> = (0..4).map(|_| pool.apply(task!(pid)).unwrap()).collect();
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
        Error::Panicked { pid, message, .. } => {
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
    let after = pool.apply(task!(pid)).unwrap();
    assert!(before.contains(&after));
}

#[test]
fn an_unencodable_result_fails_only_its_task() {
    let pool = Pool::new(1).unwrap();
    let bad = pool.apply_async(task!(unencodable));
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
    worker_death::assert_a_killed_worker_fails_only_its_task(&Pool::new(2).unwrap());
}

#[test]
fn dropping_a_busy_pool_ends_it_in_bounded_time() {
    worker_death::assert_busy_pools_end_in_bounded_time(|n| Pool::new(n).unwrap());
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
    let worker = pool.apply(task!(pid)).unwrap();
    assert_eq!(ring_resident_kib(worker), 256);
    let renewed = Pool::builder()
        .processes(1)
        .maxtasksperchild(100)
        .build()
        .unwrap();
    let worker = renewed.apply(task!(pid)).unwrap();
    assert!(ring_resident_kib(worker) < 256);
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
    let pids: std::collections::HashSet<i32> =
        (0..4).map(|_| pool.apply(task!(pid)).unwrap()).collect();
    assert_eq!(pids.len(), 4);
}

#[test]
fn workers_are_daemonic_and_a_child_process_may_run_its_own_pool() {
    let pool = Pool::new(1).unwrap();
    assert!(pool.apply(task!(try_start_child)).unwrap());
    let child = Process::fork(|| {
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
        .initializer(task!(broken_init))
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
