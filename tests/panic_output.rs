//! A panic in a child is printed on the child's stderr, as Python prints a child's traceback; a
//! pool task's panic is not, as CPython's pool prints nothing for a task's exception: the caller
//! gets it as its error.
//!
//! A test binary without libtest's harness: the harness captures the output of each test in
//! memory, which a forked child would inherit, so the message would never reach a descriptor.

use multiproc::prelude::*;
mod common;

use common::capture_stderr;

#[process_task]
fn explode() -> u32 {
    panic!("the child panics: 42 is not enough")
}

#[process_task]
fn refuse(x: u32) -> u32 {
    panic!("the pool task refuses {x}")
}

fn a_process_prints_its_panic() {
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
}

fn a_pool_task_panics_silently() {
    let mut mapped = None;
    let stderr = capture_stderr(|| {
        let pool = Pool::builder().processes(2).build().expect("a pool");
        mapped = Some(pool.map_chunked(task!(refuse), 0..20, 1));
        pool.close();
        // The workers hold the pipe's write end until they exit.
        pool.join().expect("join");
    });
    let mapped = mapped.expect("the map ran");
    assert!(
        matches!(&mapped, Err(multiproc::Error::Panicked { message, .. }) if message.starts_with("the pool task refuses ")),
        "{mapped:?}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("refuses"),
        "stderr was: {stderr}"
    );
}

fn main() {
    a_process_prints_its_panic();
    a_pool_task_panics_silently();
    println!("2 passed, 0 failed");
}
