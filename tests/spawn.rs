//! The spawn start method: a task runs in a new execution of this test binary.

use multiproc::prelude::*;
use multiproc::{get_context, StartMethod};

#[process_task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[process_task]
fn whoami() -> (String, i32, bool) {
    let parent = parent_process().map_or(0, |p| p.pid());
    (
        current_process().name().to_string(),
        parent,
        std::env::var_os("MULTIPROC_BOOT").is_some(),
    )
}

#[test]
fn a_task_runs_in_a_spawned_child() {
    let ctx = get_context(StartMethod::Spawn).unwrap();
    let p = ctx.process(task!(add, 2, 3)).start().unwrap();
    assert_eq!(p.join().unwrap(), 5);
    assert_eq!(p.exitcode(), Some(0));
}

#[test]
fn a_spawned_child_knows_its_name_and_parent() {
    let ctx = get_context(StartMethod::Spawn).unwrap();
    let p = ctx.process(task!(whoami)).name("sp").start().unwrap();
    let (name, parent, marker) = p.join().unwrap();
    assert_eq!(name, "sp");
    assert_eq!(parent, std::process::id() as i32);
    assert!(!marker, "the marker is removed before the task runs");
}
