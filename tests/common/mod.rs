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

/// A handle's serialised form, as a user sends it to another process in any serde format (JSON
/// here: handles do not depend on the crate's own codec).
pub fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("a handle serialises")
}

/// A handle back from [`encode`]'s bytes, or the error's text.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}
