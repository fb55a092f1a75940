//! Process rows: start and join a no-op process.

use crate::harness::{scaled, Ref, Row};
use multiproc::prelude::*;
use std::time::Instant;

#[process_task]
fn noop() {}

/// Mean microseconds to start and join one no-op process with the fork start method.
fn start_join(scale: f64) -> f64 {
    let n = scaled(1000.0, scale) as u32;
    let start = Instant::now();
    for _ in 0..n {
        let child = Process::new(task!(noop)).start().expect("start");
        child.join().expect("join");
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

pub fn rows() -> Vec<Row> {
    vec![Row {
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
    }]
}
