//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Whether process `pid` no longer exists or is a zombie (ended, not yet reaped).
pub fn is_gone_or_zombie(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => state(&stat) == Some('Z'),
    }
}

/// Whether process `pid` no longer exists at all (reaped).
pub fn is_reaped(pid: i32) -> bool {
    std::fs::metadata(format!("/proc/{pid}")).is_err()
}

/// The state letter of a `/proc/<pid>/stat` line (after the parenthesised command name).
fn state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Polls `condition` every 10 ms until it holds or `limit` passes; returns whether it held.
pub fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
