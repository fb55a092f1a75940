//! Pools whose workers start by spawn (Python's `get_context("spawn").Pool()`): each worker is
//! this test binary executed again, given its ring, doorbell and task socket as descriptors, and
//! everything a forked pool does works the same.

mod common;
#[path = "support/pool_tasks.rs"]
mod pool_tasks;
#[path = "support/unencodable.rs"]
mod unencodable_item;
#[path = "support/worker_death.rs"]
mod worker_death;

use multiproc::pool::PoolBuilder;
use multiproc::prelude::*;
use multiproc::{get_context, Error, StartMethod};
use pool_tasks::*;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Set in this process before any pool starts: a forked worker has it set, a spawned one not.
static IN_PARENT_MEMORY: AtomicBool = AtomicBool::new(false);

/// Set by the initializer in each worker.
static SEED: AtomicU64 = AtomicU64::new(0);

/// A pool of `processes` workers started by spawn.
fn spawn_pool(processes: usize) -> PoolBuilder {
    IN_PARENT_MEMORY.store(true, Ordering::SeqCst);
    let ctx = get_context(StartMethod::Spawn).expect("spawn is available in a test binary");
    ctx.pool().processes(processes)
}

/// The worker's pid, and whether it has the parent's memory.
#[process_task]
fn who() -> (i32, bool) {
    (
        std::process::id() as i32,
        IN_PARENT_MEMORY.load(Ordering::SeqCst),
    )
}

#[process_task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[process_task]
fn set_seed(seed: u64) {
    SEED.store(seed, Ordering::SeqCst);
}

#[process_task]
fn seeded(x: u64) -> u64 {
    SEED.load(Ordering::SeqCst) * 1000 + x
}

#[test]
fn map_starmap_and_apply_run_in_workers_that_did_not_inherit_memory() {
    let pool = spawn_pool(2).build().unwrap();
    let squares = pool.map(task!(square), 0..200).unwrap();
    assert_eq!(squares, (0..200).map(|x| x * x).collect::<Vec<u64>>());
    let sums = pool
        .starmap(task!(add), (0..50).map(|x| (x, 2 * x)))
        .unwrap();
    assert_eq!(sums, (0..50).map(|x| 3 * x).collect::<Vec<u64>>());
    let (pid, inherited) = pool.apply(task!(who)).unwrap();
    assert_ne!(pid, std::process::id() as i32);
    assert!(
        !inherited,
        "a spawned worker does not have the parent's memory"
    );
    pool.close();
    pool.join().unwrap();
}

/// `len` bytes that say which item they answer.
#[process_task]
fn bytes_of(item: (u64, u8)) -> Vec<u8> {
    pattern(item.0, item.1)
}

#[test]
fn results_larger_than_the_ring_stream_through_a_spawned_workers_ring() {
    let pool = spawn_pool(1).build().unwrap();
    let sizes = [(10, 1), (600_000, 2), (131_072, 3), (3, 4), (1_000_000, 5)];
    let got = pool.map_chunked(task!(bytes_of), sizes, 2).unwrap();
    for ((len, seed), bytes) in sizes.iter().zip(got) {
        assert!(bytes == pattern(*len, *seed), "item of {len} bytes");
    }
}

/// Whether a pool of a fork context forks, whatever this process's default: its worker has
/// the memory of the process that built the pool.
#[process_task]
fn a_fork_context_pool_forks() -> bool {
    IN_PARENT_MEMORY.store(true, Ordering::SeqCst);
    let ctx = get_context(StartMethod::Fork).expect("fork is always available");
    let pool = ctx.pool().processes(1).build().expect("a pool");
    pool.apply(task!(who)).expect("a worker's answer").1
}

#[test]
fn a_pool_starts_its_workers_by_its_contexts_method() {
    // In a spawned child, so that this test binary never forks (see
    // `a_lazy_map_says_where_its_input_panicked`).
    let ctx = get_context(StartMethod::Spawn).unwrap();
    let child = ctx
        .process(task!(a_fork_context_pool_forks))
        .start()
        .unwrap();
    assert!(
        child.join().unwrap(),
        "the fork context's worker was forked"
    );
}

#[test]
fn imap_over_an_endless_input_yields_in_order() {
    let pool = spawn_pool(2).build().unwrap();
    let first: Vec<u64> = pool
        .imap(task!(square), 0..)
        .take(10)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(first, vec![0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
    let mut unordered: Vec<u64> = pool
        .imap_unordered_chunked(task!(square), 0..40, 3)
        .collect::<Result<_, _>>()
        .unwrap();
    unordered.sort_unstable();
    assert_eq!(unordered, (0..40).map(|x| x * x).collect::<Vec<u64>>());
}

#[test]
fn the_initializer_runs_in_each_spawned_worker_before_its_tasks() {
    let pool = spawn_pool(2)
        .initializer(task!(set_seed, 7))
        .build()
        .unwrap();
    let got = pool.map_chunked(task!(seeded), 0..20, 1).unwrap();
    assert_eq!(got, (0..20).map(|x| 7000 + x).collect::<Vec<u64>>());
    assert_eq!(SEED.load(Ordering::SeqCst), 0, "not run in the parent");
}

#[test]
fn maxtasksperchild_renews_workers_by_spawn() {
    let pool = spawn_pool(1).maxtasksperchild(1).build().unwrap();
    let workers: Vec<(i32, bool)> = (0..4).map(|_| pool.apply(task!(who)).unwrap()).collect();
    let pids: HashSet<i32> = workers.iter().map(|w| w.0).collect();
    assert_eq!(pids.len(), 4, "{workers:?}");
    assert!(!pids.contains(&(std::process::id() as i32)));
    assert!(
        workers.iter().all(|w| !w.1),
        "renewed by spawn: {workers:?}"
    );
}

#[test]
fn a_killed_spawned_worker_fails_only_the_task_it_held() {
    worker_death::assert_a_killed_worker_fails_only_its_task(&spawn_pool(2).build().unwrap());
}

#[test]
fn terminate_and_drop_end_a_busy_spawned_pool_in_bounded_time() {
    worker_death::assert_busy_pools_end_in_bounded_time(|n| spawn_pool(n).build().unwrap());
}

#[test]
fn a_task_panic_reaches_the_caller_with_its_item() {
    let pool = spawn_pool(2).build().unwrap();
    let workers: HashSet<i32> = (0..4).map(|_| pool.apply(task!(pid)).unwrap()).collect();
    let err = pool
        .starmap_chunked(task!(fail_on), (0..6).map(|x| (x, 4)), 1)
        .unwrap_err();
    match err {
        Error::Panicked { pid, message, .. } => {
            assert!(workers.contains(&pid), "{pid} is not one of {workers:?}");
            assert_eq!(message, "bad item 4");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(pool.apply(task!(fail_on, 5, 4)).unwrap(), 5);
}

#[process_task]
fn refuse(x: u64) -> u64 {
    panic!("the spawned worker refuses {x}")
}

/// In a spawned child whose stderr is the file `log`, maps `refuse` on a spawned pool; returns
/// whether the map failed with the task's panic.
#[process_task]
fn map_refused_with_stderr_in(log: PathBuf) -> bool {
    let file = std::fs::File::create(log).expect("the log");
    // SAFETY: dup2 onto this child's own stderr descriptor; the task runs on its only thread.
    unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&file), 2) };
    let pool = spawn_pool(2).build().expect("a pool");
    let mapped = pool.map_chunked(task!(refuse), 0..10, 1);
    pool.close();
    pool.join().expect("join");
    matches!(mapped, Err(Error::Panicked { message, .. }) if message.starts_with("the spawned worker refuses"))
}

#[test]
fn a_spawned_worker_does_not_print_its_tasks_panics() {
    let log = scratch("spawn-stderr");
    let ctx = get_context(StartMethod::Spawn).unwrap();
    let child = ctx.process(task!(map_refused_with_stderr_in, log.clone()));
    assert!(
        child.start().unwrap().join().unwrap(),
        "the map failed with the panic"
    );
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(!stderr.contains("refuses"), "stderr was: {stderr}");
}

/// No test in this file forks, which would install the crate's panic hook on the way: a spawned
/// pool must install it itself, for its lazy maps to say where their input panicked.
#[test]
fn a_lazy_map_says_where_its_input_panicked() {
    let pool = spawn_pool(1).build().unwrap();
    let input = (0..5u64).inspect(|&i| assert_ne!(i, 3, "input broke at {i}"));
    let got: Vec<_> = pool.imap(task!(square), input).collect();
    assert_eq!(got.len(), 4, "three results, then the panic");
    match &got[3] {
        Err(Error::InputPanicked { item, location, .. }) => {
            assert_eq!(*item, 3);
            let location = location.as_deref().unwrap_or("none");
            assert!(location.starts_with("tests/pool_spawn.rs:"), "{location}");
        }
        other => panic!("unexpected {other:?}"),
    }
}
