//! The spawn start method: a task runs in a new execution of this test binary, before `main`,
//! with the handles among its arguments passed as inherited descriptors.

#[path = "support/by_name.rs"]
mod by_name;

use by_name::add;
use multiproc::prelude::*;
use multiproc::{get_context, Context, StartMethod};
use std::process::Command;
use std::time::{Duration, Instant};

fn spawn() -> Context {
    get_context(StartMethod::Spawn).unwrap()
}

#[process_task]
fn whoami() -> (String, i32, bool, String) {
    let parent = parent_process().map_or(0, |p| p.pid());
    let marker = std::env::var_os("MULTIPROC_BOOT").is_some();
    let method = multiproc::get_start_method().to_string();
    (current_process().name().to_string(), parent, marker, method)
}

#[test]
fn a_task_runs_in_a_spawned_child() {
    let p = spawn().process(task!(add, 2, 3)).start().unwrap();
    assert_eq!(p.join().unwrap(), 5);
    assert_eq!(p.exitcode(), Some(0));
}

#[test]
fn a_spawned_child_knows_its_name_and_parent() {
    let p = spawn().process(task!(whoami)).name("sp").start().unwrap();
    let (name, parent, marker, _) = p.join().unwrap();
    assert_eq!(name, "sp");
    assert_eq!(parent, std::process::id() as i32);
    assert!(!marker, "the marker is removed before the task runs");
}

#[test]
fn handles_reach_a_spawned_child() -> multiproc::Result<()> {
    by_name::handles_reach_the_child(spawn())
}

#[test]
fn a_pipe_end_reaches_a_spawned_child_and_the_parent_may_close_its_copy() -> multiproc::Result<()> {
    by_name::a_pipe_end_reaches_the_child(spawn())
}

#[test]
fn panics_exit_codes_and_signals_are_reported_as_under_fork() {
    by_name::panics_exit_codes_and_signals_are_reported_as_under_fork(spawn());
}

#[test]
fn a_spawned_child_starts_its_own_children_by_its_parents_method() {
    // The child's default is the parent's, unless the environment says otherwise.
    let p = spawn().process(task!(whoami)).start().unwrap();
    let (.., method) = p.join().unwrap();
    let expected = multiproc::get_start_method().to_string();
    assert_eq!(method, expected);
}

#[test]
fn a_spawned_child_spawns_a_grandchild() {
    by_name::a_child_starts_a_grandchild(spawn());
}

#[test]
fn a_lock_another_thread_holds_does_not_hang_a_spawned_child() {
    by_name::a_lock_another_thread_holds_does_not_hang_the_child(spawn());
}

#[test]
fn a_closure_in_a_spawn_context_is_refused_at_start() {
    by_name::a_closure_is_refused_at_start(spawn());
}

#[test]
fn a_garbage_marker_exits_70_without_running_main() {
    let started = Instant::now();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--list"])
        .env("MULTIPROC_BOOT", "garbage")
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(70));
    assert!(
        out.stdout.is_empty(),
        "main ran: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("MULTIPROC_BOOT") && stderr.contains("cannot boot"),
        "{stderr}"
    );
}

#[test]
fn a_marker_naming_a_closed_descriptor_exits_70() {
    let out = Command::new(std::env::current_exe().unwrap())
        .env("MULTIPROC_BOOT", "1:987:5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(70));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("descriptor 987"));
}

#[test]
fn spawn_is_among_the_start_methods_of_an_executable() {
    let methods = multiproc::get_all_start_methods();
    assert!(methods.contains(&StartMethod::Spawn), "{methods:?}");
    assert!(methods.contains(&StartMethod::Fork));
    assert_eq!(spawn().start_method(), StartMethod::Spawn);
}

#[process_task]
fn mark_what_arrives(arrays: Queue<RawArray<u8>>) -> usize {
    let array = arrays.get().unwrap();
    array.set(array.len() - 1, 7).unwrap();
    array.len()
}

#[test]
fn an_array_sent_through_a_queue_after_the_start_is_mapped_from_the_senders_loan(
) -> multiproc::Result<()> {
    // The child did not inherit the array's memory (spawn) nor get it at its start, and at
    // 2 MiB the array has a segment of its own: the child borrows its descriptor from this
    // process when it decodes the array.
    let arrays = Queue::new()?;
    let child = spawn()
        .process(task!(mark_what_arrives, arrays.clone()))
        .start()?;
    let array = RawArray::<u8>::new(2 << 20)?;
    arrays.put(array.clone())?;
    assert_eq!(child.join()?, 2 << 20);
    assert_eq!(array.get((2 << 20) - 1)?, 7);
    Ok(())
}
