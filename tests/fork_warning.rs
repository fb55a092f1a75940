//! A fork that finds threads of the user's warns once on stderr (Python 3.12's
//! `DeprecationWarning`), unless fork was chosen on purpose; the crate's own threads (a pool's
//! result thread) do not count.
//!
//! A test binary without libtest's harness, whose own threads would make every fork warn.

mod common;

use common::capture_stderr;
use multiproc::prelude::*;
use multiproc::{get_context, StartMethod};
use std::sync::mpsc;

const WARNING: &str = "a forked child gets only the one that forks";

fn fork_one() {
    assert_eq!(Process::fork(|| 7).unwrap().join().unwrap(), 7);
}

/// A thread of the user's that lives until the returned sender is dropped.
fn user_thread() -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (stop, wait_stop) = mpsc::channel::<()>();
    let (started, wait_started) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        started.send(()).unwrap();
        let _ = wait_stop.recv();
    });
    wait_started.recv().unwrap();
    (stop, thread)
}

fn main() {
    let alone = capture_stderr(fork_one);
    assert!(!alone.contains(WARNING), "one thread: {alone}");

    let pool = Pool::new(1).unwrap();
    let with_pool = capture_stderr(fork_one);
    assert!(
        !with_pool.contains(WARNING),
        "a pool's thread is the crate's own: {with_pool}"
    );
    drop(pool);

    let (stop, thread) = user_thread();
    let fork_context = get_context(StartMethod::Fork).unwrap();
    let chosen = capture_stderr(|| {
        assert_eq!(
            fork_context.from_fn(|| 1).start().unwrap().join().unwrap(),
            1
        );
    });
    assert!(
        !chosen.contains(WARNING),
        "fork chosen on purpose: {chosen}"
    );

    let threaded = capture_stderr(|| {
        fork_one();
        fork_one();
    });
    assert_eq!(threaded.matches(WARNING).count(), 1, "{threaded}");
    // At least this one and the user's; a thread of the crate's that has just ended may still be
    // listed for a moment.
    let threads: usize = threaded
        .split("has ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the warning says how many threads");
    assert!(threads >= 2, "{threaded}");
    assert!(threaded.contains("fork server"), "{threaded}");
    drop(stop);
    thread.join().unwrap();
    println!("1 passed, 0 failed");
}
