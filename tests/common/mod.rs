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

/// Runs `body` with this process's stderr sent into an anonymous file; returns what was written
/// there. A file rather than a pipe: no reader thread (which would make the process threaded)
/// and no writer waiting for room.
pub fn capture_stderr(body: impl FnOnce()) -> String {
    use std::io::{Read, Seek};
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: memfd_create takes a NUL-terminated name and flags and returns a new descriptor.
    let fd = unsafe { libc::memfd_create(c"stderr".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create");
    // SAFETY: a descriptor just created and owned by nobody else.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    // SAFETY: dup and dup2 on descriptors this process owns; the saved copy restores stderr.
    let saved = unsafe { libc::dup(2) };
    // SAFETY: as above.
    unsafe { libc::dup2(file.as_raw_fd(), 2) };
    body();
    // SAFETY: as above; `saved` is closed once restored.
    unsafe {
        libc::dup2(saved, 2);
        libc::close(saved);
    }
    let mut text = String::new();
    file.rewind().expect("rewind the captured stderr");
    file.read_to_string(&mut text)
        .expect("read the captured stderr");
    text
}
