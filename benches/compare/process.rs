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

pub fn rows() -> Vec<Row> {
    vec![
        Row {
            label: "Process start+join, fork",
            unit: "us",
            higher_is_better: false,
            ours: start_join,
            python: Some(Ref {
                suite: "process_start_join",
                bench: "process_start_join",
                params: &[("start_method", "fork")],
            }),
            c_floor: Some(Ref {
                suite: "fork",
                bench: "fork_exit_wait",
                params: &[("parent_extra_rss_mb", "0")],
            }),
        },
        Row {
            label: "Process start+join, forkserver",
            unit: "us",
            higher_is_better: false,
            ours: start_join_forkserver,
            python: Some(Ref {
                suite: "process_start_join",
                bench: "process_start_join",
                params: &[("start_method", "forkserver")],
            }),
            // The server forks each child: the floor is a fork, as for the fork method.
            c_floor: Some(Ref {
                suite: "fork",
                bench: "fork_exit_wait",
                params: &[("parent_extra_rss_mb", "0")],
            }),
        },
        Row {
            label: "Process start+join, spawn",
            unit: "us",
            higher_is_better: false,
            ours: start_join_spawn,
            python: Some(Ref {
                suite: "process_start_join",
                bench: "process_start_join",
                params: &[("start_method", "spawn")],
            }),
            c_floor: Some(Ref {
                suite: "exec_true",
                bench: "exec_true",
                params: &[("method", "posix_spawn")],
            }),
        },
    ]
}
