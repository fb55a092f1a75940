//! A panic in a child is printed on the child's stderr, as Python prints a child's traceback.
//!
//! A test binary without libtest's harness: the harness captures the output of each test in
//! memory, which a forked child would inherit, so the message would never reach a descriptor.

use multiproc::prelude::*;
use std::io::Read;
use std::os::fd::AsRawFd;

#[process_task]
fn explode() -> u32 {
    panic!("the child panics: 42 is not enough")
}

/// Runs `body` with this process's stderr sent into a pipe; returns what was written there.
fn capture_stderr(body: impl FnOnce()) -> String {
    let (mut reader, writer) = std::io::pipe().expect("a pipe");
    // SAFETY: dup and dup2 on descriptors this process owns; the saved copy restores stderr.
    let saved = unsafe { libc::dup(2) };
    // SAFETY: as above.
    unsafe { libc::dup2(writer.as_raw_fd(), 2) };
    drop(writer);
    body();
    // SAFETY: as above; `saved` is closed once restored.
    unsafe {
        libc::dup2(saved, 2);
        libc::close(saved);
    }
    let mut text = String::new();
    reader
        .read_to_string(&mut text)
        .expect("read the captured stderr");
    text
}

fn main() {
    let mut outcome = None;
    let stderr = capture_stderr(|| {
        let child = Process::new(task!(explode)).start().expect("start");
        outcome = Some((child.join(), child.exitcode()));
    });
    let (joined, exitcode) = outcome.expect("the child ran");
    assert!(
        matches!(&joined, Err(multiproc::Error::Panicked { message, .. }) if message == "the child panics: 42 is not enough"),
        "{joined:?}"
    );
    assert_eq!(exitcode, Some(1));
    assert!(
        stderr.contains("panicked at") && stderr.contains("the child panics: 42 is not enough"),
        "stderr was: {stderr}"
    );
    println!("1 passed, 0 failed");
}
