//! The forkserver start method: a task runs in a child that a fork server, started once by
//! spawn, forks from itself; handles travel with the request as descriptors. Tests that kill a
//! server or a parent run in a forked helper process, which starts a server of its own.

#[path = "support/by_name.rs"]
mod by_name;
mod common;

use by_name::{add, leave, nap};
use common::{eventually, is_gone_or_zombie, is_reaped};
use multiproc::prelude::*;
use multiproc::{get_context, Context, StartMethod};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

fn forkserver() -> Context {
    get_context(StartMethod::Forkserver).unwrap()
}

/// A process forked from this one that runs `body`, so that it has a fork server of its own.
fn helper<R>(body: impl FnOnce() -> R + Send + 'static) -> ProcessHandle<R>
where
    R: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    get_context(StartMethod::Fork)
        .unwrap()
        .from_fn(body)
        .start()
        .unwrap()
}

/// The child's view: its name, its parent's pid and liveness, its kernel parent's pid, its
/// start method.
#[process_task]
fn whoami() -> (String, i32, bool, i32, String) {
    let parent = parent_process().expect("a child has a parent");
    (
        current_process().name().to_string(),
        parent.pid(),
        parent.is_alive(),
        nix::unistd::getppid().as_raw(),
        multiproc::get_start_method().to_string(),
    )
}

#[process_task]
fn server_pid() -> i32 {
    nix::unistd::getppid().as_raw()
}

/// The pid of this process's fork server (started now if there is none): the parent of the
/// children it forks.
fn the_server() -> i32 {
    let p = forkserver().process(task!(server_pid)).start().unwrap();
    p.join().unwrap()
}

#[test]
fn a_task_runs_in_a_child_of_the_fork_server() {
    let p = forkserver().process(task!(add, 2, 3)).start().unwrap();
    assert_eq!(p.join().unwrap(), 5);
    assert_eq!(p.exitcode(), Some(0));
    assert!(!p.is_alive());
    assert!(is_reaped(p.pid()), "the server reaped it");
}

#[test]
fn the_child_knows_its_name_and_its_real_parent() {
    let p = forkserver()
        .process(task!(whoami))
        .name("fs-child")
        .start()
        .unwrap();
    let (name, parent, alive, kernel_parent, method) = p.join().unwrap();
    let me = std::process::id() as i32;
    assert_eq!(name, "fs-child");
    assert_eq!(parent, me, "parent_process() is the real parent");
    assert!(alive, "and it runs");
    assert_ne!(kernel_parent, me, "the fork server forked it");
    assert_eq!(method, multiproc::get_start_method().to_string());
}

#[process_task]
fn parent_alive_after(ms: u64, seen: Value<i32>) {
    let parent = parent_process().expect("a parent");
    seen.set(i32::from(parent.is_alive()));
    std::thread::sleep(Duration::from_millis(ms));
    seen.set(10 + i32::from(parent.is_alive()));
}

#[test]
fn parent_process_is_alive_tells_when_the_real_parent_died() -> multiproc::Result<()> {
    let seen = Value::new(-1i32)?;
    let for_helper = seen.clone();
    let parent = helper::<()>(move || {
        let child = forkserver()
            .process(task!(parent_alive_after, 300, for_helper.clone()))
            .start()
            .unwrap();
        std::mem::forget(child);
        // The child's first look, while this process runs.
        let alive_seen = eventually(Duration::from_secs(10), || for_helper.get() == 1);
        // Leaves without joining: the child outlives it.
        // SAFETY: ends this forked helper at once.
        unsafe { libc::_exit(if alive_seen { 0 } else { 2 }) }
    });
    let _ = parent.join();
    assert_eq!(
        parent.exitcode(),
        Some(0),
        "the child first saw its parent alive"
    );
    assert!(
        eventually(Duration::from_secs(10), || seen.get() >= 10),
        "the child's second look: {}",
        seen.get()
    );
    assert_eq!(
        seen.get(),
        10,
        "the parent is seen dead, not the server's life"
    );
    Ok(())
}

#[test]
fn handles_reach_a_child_of_the_fork_server() -> multiproc::Result<()> {
    by_name::handles_reach_the_child(forkserver())
}

#[test]
fn a_pipe_end_reaches_the_child_and_the_parent_may_close_its_copy() -> multiproc::Result<()> {
    by_name::a_pipe_end_reaches_the_child(forkserver())
}

#[test]
fn panics_exit_codes_and_signals_are_reported_as_under_fork() {
    by_name::panics_exit_codes_and_signals_are_reported_as_under_fork(forkserver());
}

#[test]
fn join_timeout_waits_only_as_long_as_asked() {
    let p = forkserver().process(task!(nap, 400)).start().unwrap();
    assert_eq!(p.join_timeout(Duration::from_millis(50)).unwrap(), None);
    assert!(p.is_alive());
    assert_eq!(p.exitcode(), None);
    assert_eq!(p.join_timeout(Duration::from_secs(30)).unwrap(), Some(400));
    assert_eq!(p.exitcode(), Some(0));
}

#[test]
fn the_sentinel_is_ready_when_the_child_exits_and_its_status_is_known_then() {
    let p = forkserver().process(task!(nap, 50)).start().unwrap();
    let ready = multiproc::connection::wait(&[&p.sentinel()], Some(Duration::from_secs(30)));
    assert_eq!(ready.unwrap().len(), 1);
    assert_eq!(p.exitcode(), Some(0), "known as soon as the sentinel fires");
}

#[process_task]
fn look_around() -> (Option<String>, String) {
    let dir = std::env::current_dir().unwrap();
    (
        std::env::var("MULTIPROC_FS_TEST").ok(),
        dir.to_string_lossy().into_owned(),
    )
}

#[test]
fn the_child_gets_the_environment_and_directory_of_its_start_not_the_servers() {
    let (mut reader, writer) = std::io::pipe().unwrap();
    let p = helper(move || {
        let mut writer = writer;
        // The server starts here, with this environment and directory...
        let first = forkserver().process(task!(look_around)).start().unwrap();
        first.join().unwrap();
        // ...which then change.
        std::env::set_var("MULTIPROC_FS_TEST", "later");
        std::env::set_current_dir("/tmp").unwrap();
        let seen = forkserver().process(task!(look_around)).start().unwrap();
        let seen = seen.join().unwrap();
        let _ = writer.write_all(b"x");
        seen
    });
    let mut done = [0u8];
    reader.read_exact(&mut done).unwrap();
    let (var, dir) = p.join().unwrap();
    assert_eq!(var.as_deref(), Some("later"));
    assert_eq!(dir, "/tmp");
}

#[process_task]
fn say(text: String) {
    println!("{text}");
}

#[test]
fn the_child_writes_to_its_parents_stdout_and_the_server_keeps_none_of_it() {
    let p = helper(|| {
        let (mut reader, writer) = std::io::pipe().unwrap();
        // SAFETY: dup and dup2 on descriptors this process owns; the copy restores stdout.
        let saved = unsafe { libc::dup(1) };
        // SAFETY: as above.
        unsafe { libc::dup2(writer.as_raw_fd(), 1) };
        drop(writer);
        // The server starts now, with the pipe as its stdout.
        let said = forkserver().process(task!(say, "through the pipe".to_string()));
        said.start().unwrap().join().unwrap();
        // SAFETY: as above; `saved` is closed once restored.
        unsafe {
            libc::dup2(saved, 1);
            libc::close(saved);
        }
        let (done, text) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut read = String::new();
            let _ = reader.read_to_string(&mut read);
            let _ = done.send(read);
        });
        text.recv_timeout(Duration::from_secs(10)).ok()
    });
    let text = p.join().unwrap();
    assert_eq!(
        text.as_deref(),
        Some("through the pipe\n"),
        "the child wrote to the pipe, and the pipe ended when the parent closed it"
    );
}

/// Reads one native-endian i32 from a pipe.
fn read_pid(reader: &mut std::io::PipeReader) -> i32 {
    let mut buf = [0u8; 4];
    reader.read_exact(&mut buf).expect("read a pid");
    i32::from_ne_bytes(buf)
}

#[test]
fn a_killed_server_is_replaced_at_the_next_start() {
    let p = helper(|| {
        let first = the_server();
        // SAFETY: a signal to a process id, no memory involved.
        unsafe { libc::kill(first, libc::SIGKILL) };
        assert!(eventually(Duration::from_secs(10), || is_gone_or_zombie(
            first
        )));
        let second = the_server();
        let sum = forkserver()
            .process(task!(add, 40, 2))
            .start()
            .unwrap()
            .join()
            .unwrap();
        (first, second, is_reaped(first), sum)
    });
    let (first, second, reaped, sum) = p.join().unwrap();
    assert_ne!(first, second, "a new server");
    assert!(reaped, "the dead server was reaped, not left a zombie");
    assert_eq!(sum, 42);
}

#[test]
fn a_child_outliving_a_killed_server_still_reports_its_result_and_exit_code() {
    let p = helper(|| {
        let server = the_server();
        let late = forkserver().process(task!(nap, 300)).start().unwrap();
        let failing = forkserver().process(task!(leave, 4)).start().unwrap();
        // SAFETY: a signal to a process id, no memory involved.
        unsafe { libc::kill(server, libc::SIGKILL) };
        let exit = failing.join_timeout(Duration::from_secs(30)).err();
        let exit = exit.map(|e| e.to_string()).unwrap_or_default();
        (
            late.join().unwrap(),
            late.exitcode(),
            exit,
            failing.exitcode(),
        )
    });
    let (value, code, exit, failed) = p.join().unwrap();
    assert_eq!((value, code), (300, Some(0)));
    assert_eq!(failed, Some(4), "{exit}");
}

#[test]
fn a_daemonic_child_and_the_server_die_with_a_killed_parent() {
    let (mut reader, writer) = std::io::pipe().unwrap();
    let parent = helper(move || {
        let mut writer = writer;
        let daemon = forkserver()
            .process(task!(nap, 60_000))
            .daemon(true)
            .start()
            .unwrap();
        let server = the_server();
        writer.write_all(&daemon.pid().to_ne_bytes()).unwrap();
        writer.write_all(&server.to_ne_bytes()).unwrap();
        std::thread::sleep(Duration::from_secs(60));
    });
    let (daemon, server) = (read_pid(&mut reader), read_pid(&mut reader));
    assert!(!is_gone_or_zombie(daemon) && !is_gone_or_zombie(server));
    parent.kill().unwrap();
    assert!(matches!(
        parent.join(),
        Err(multiproc::Error::Signaled { signal: 9, .. })
    ));
    assert!(
        eventually(Duration::from_secs(3), || is_gone_or_zombie(daemon)),
        "daemon {daemon} outlived its parent"
    );
    assert!(
        eventually(Duration::from_secs(3), || is_gone_or_zombie(server)),
        "server {server} outlived its parent"
    );
}

#[test]
fn two_threads_start_twenty_processes_each_at_once() {
    let threads: Vec<_> = (0..2i64)
        .map(|t| {
            std::thread::spawn(move || {
                let started: Vec<_> = (0..20i64)
                    .map(|i| {
                        forkserver()
                            .process(task!(add, t * 100, i))
                            .start()
                            .unwrap()
                    })
                    .collect();
                started
                    .into_iter()
                    .map(|p| p.join().unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for (t, thread) in threads.into_iter().enumerate() {
        let expected: Vec<i64> = (0..20).map(|i| t as i64 * 100 + i).collect();
        assert_eq!(thread.join().unwrap(), expected);
    }
}

#[test]
fn starts_leak_no_descriptor() {
    let p = helper(|| {
        let count = || std::fs::read_dir("/proc/self/fd").unwrap().count();
        let run = || {
            forkserver()
                .process(task!(add, 1, 1))
                .start()
                .unwrap()
                .join()
                .unwrap()
        };
        run();
        let before = count();
        for _ in 0..100 {
            run();
        }
        (before, count())
    });
    let (before, after) = p.join().unwrap();
    assert_eq!(before, after);
}

#[test]
fn a_child_of_the_server_starts_its_own_children_by_forkserver() {
    by_name::a_child_starts_a_grandchild(forkserver());
}

#[test]
fn a_lock_another_thread_holds_does_not_hang_the_child() {
    by_name::a_lock_another_thread_holds_does_not_hang_the_child(forkserver());
}

#[test]
fn a_closure_in_a_forkserver_context_is_refused_at_start() {
    by_name::a_closure_is_refused_at_start(forkserver());
}

#[test]
fn forkserver_is_a_start_method_by_name() {
    assert_eq!(
        "forkserver".parse::<StartMethod>().unwrap(),
        StartMethod::Forkserver
    );
    assert_eq!(StartMethod::Forkserver.to_string(), "forkserver");
    let methods = multiproc::get_all_start_methods();
    assert!(methods.contains(&StartMethod::Forkserver), "{methods:?}");
    assert_eq!(forkserver().start_method(), StartMethod::Forkserver);
}
