//! Checks that a pool's killed, terminated or dropped workers end their calls, and only theirs,
//! in bounded time: shared by the pool test files of each start method.

use super::common;
use super::pool_tasks::{nap, pid, scratch, square};
use multiproc::pool::PoolError;
use multiproc::prelude::*;
use multiproc::Error;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Writes this worker's pid to `path`, then sleeps: a task to kill while it runs.
#[process_task]
pub fn hold(path: PathBuf, ms: u64) -> u64 {
    std::fs::write(&path, std::process::id().to_string()).expect("write pid");
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// The pid that `hold` writes to `path`, once it has.
pub fn wait_for_pid(path: &Path) -> i32 {
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

/// Kills the worker of `pool` (of two workers) that runs a long task: that task fails with the
/// signal, the others succeed, and a new worker takes its place.
pub fn assert_a_killed_worker_fails_only_its_task(pool: &Pool) {
    let path = scratch("held");
    let victim = pool.apply_async(task!(hold, path.clone(), 20_000));
    let pid = wait_for_pid(&path);
    let others: Vec<_> = (0..20).map(|ms| pool.apply_async(task!(nap, ms))).collect();
    std::thread::sleep(Duration::from_millis(50));
    // SAFETY: kill has no memory effects; `pid` is a worker of the caller's pool.
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
    let pids: HashSet<i32> = (0..6).map(|_| pool.apply(task!(pid)).unwrap()).collect();
    assert!(!pids.contains(&pid));
    assert_eq!(pool.map(task!(square), 0..100).unwrap().len(), 100);
}

/// Terminates a busy pool of two workers from `make`, then drops a busy pool of one: each ends
/// in bounded time, its workers reaped.
pub fn assert_busy_pools_end_in_bounded_time(make: impl Fn(usize) -> Pool) {
    let path = scratch("busy");
    let pool = make(2);
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

    let pool = make(1);
    let _busy = pool.apply_async(task!(nap, 30_000));
    let start = Instant::now();
    drop(pool);
    assert!(start.elapsed() < Duration::from_secs(3));
}
