//! Tasks and helpers shared by the pool test files.

use multiproc::prelude::*;
use std::path::PathBuf;
use std::time::Duration;

#[process_task]
pub fn square(x: u64) -> u64 {
    x * x
}

#[process_task]
pub fn pid() -> i32 {
    std::process::id() as i32
}

#[process_task]
pub fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[process_task]
pub fn fail_on(x: u64, bad: u64) -> u64 {
    if x == bad {
        panic!("bad item {x}");
    }
    std::thread::sleep(Duration::from_millis(50));
    x
}

#[process_task]
pub fn noop() {}

/// Returns a value whose encoding fails.
#[process_task]
pub fn unencodable() -> super::unencodable_item::Item {
    super::unencodable_item::Item::Bad(0)
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("multiproc-pool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// A byte pattern that depends on the position and a seed, to check data crosses intact.
pub fn pattern(len: u64, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}
