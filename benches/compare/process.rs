//! Process rows: start and join a no-op process.

use crate::harness::{scaled, Ref, Row};
use multiproc::prelude::*;
use multiproc::{get_context, StartMethod};
use std::time::Instant;

#[process_task]
fn noop() {}

/// Mean microseconds to start and join one no-op process with `method`.
fn start_join_by(method: StartMethod, base: f64, scale: f64) -> f64 {
    let context = get_context(method).expect("the start method is available");
    let n = scaled(base, scale) as u32;
    // Warm up, as CPython's figures do: for forkserver this starts the server.
    let warm = context.process(task!(noop)).start().expect("start");
    warm.join().expect("join");
    let start = Instant::now();
    for _ in 0..n {
        let child = context.process(task!(noop)).start().expect("start");
        child.join().expect("join");
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn start_join(scale: f64) -> f64 {
    start_join_by(StartMethod::Fork, 1000.0, scale)
}

fn start_join_spawn(scale: f64) -> f64 {
    start_join_by(StartMethod::Spawn, 300.0, scale)
}

fn start_join_forkserver(scale: f64) -> f64 {
    start_join_by(StartMethod::Forkserver, 1000.0, scale)
}

/// The C floor of a fork: a fork, `_exit` and wait. A fork server's start is a fork too.
const FORK_FLOOR: Ref = Ref {
    suite: "fork",
    bench: "fork_exit_wait",
    params: &[("parent_extra_rss_mb", "0")],
};

/// The C floor of a spawn: `posix_spawn` of `/bin/true` and a wait.
const EXEC_FLOOR: Ref = Ref {
    suite: "exec_true",
    bench: "exec_true",
    params: &[("method", "posix_spawn")],
};

/// The start+join row of one method, against CPython's start of the same method.
fn start_join_row(
    label: &'static str,
    ours: fn(f64) -> f64,
    python_method: &'static [(&'static str, &'static str)],
    c_floor: Ref,
) -> Row {
    Row {
        label,
        unit: "us",
        higher_is_better: false,
        ours,
        python: Some(Ref {
            suite: "process_start_join",
            bench: "process_start_join",
            params: python_method,
        }),
        c_floor: Some(c_floor),
    }
}

pub fn rows() -> Vec<Row> {
    vec![
        start_join_row(
            "Process start+join, fork",
            start_join,
            &[("start_method", "fork")],
            FORK_FLOOR,
        ),
        start_join_row(
            "Process start+join, forkserver",
            start_join_forkserver,
            &[("start_method", "forkserver")],
            FORK_FLOOR,
        ),
        start_join_row(
            "Process start+join, spawn",
            start_join_spawn,
            &[("start_method", "spawn")],
            EXEC_FLOOR,
        ),
    ]
}
