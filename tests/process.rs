//! Process: results, exit codes, timeouts, names, daemons, reaping — across real processes.

mod common;
#[path = "support/unencodable.rs"]
mod unencodable_item;

use common::{eventually, is_gone_or_zombie, is_reaped};
use multiproc::error::TaskFailure;
use multiproc::prelude::*;
use multiproc::Error;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[process_task]
fn square(x: u64) -> u64 {
    x * x
}

#[process_task]
fn dance(name: String, #[default(4)] num: u32) -> String {
    format!("{name} dances {num} times")
}

#[process_task]
fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[process_task]
fn boom(message: String) -> u32 {
    panic!("{message}")
}

#[process_task]
fn exit_with(code: i32) -> u32 {
    multiproc::exit(code)
}

#[process_task]
fn std_exit_with(code: i32) -> u32 {
    std::process::exit(code)
}

#[process_task]
fn unit_exit_zero() {
    multiproc::exit(0)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Circle { radius: f64 },
    Square(f64),
    Empty,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Drawing {
    title: String,
    shapes: Vec<Shape>,
    tags: HashMap<String, Vec<i32>>,
    parent: Option<Box<Drawing>>,
}

#[process_task]
fn echo(
    text: String,
    bytes: Vec<u8>,
    drawing: Drawing,
    pair: (i8, char),
) -> (String, Vec<u8>, Drawing, (i8, char)) {
    (text, bytes, drawing, pair)
}

#[test]
fn join_returns_what_the_task_returned() -> multiproc::Result<()> {
    let by_args = Process::new(task!(square)).args((12,)).start()?;
    let by_name = Process::new(task!(square, x = 5)).start()?;
    let positional = Process::new(task!(dance, "Yuki".to_string(), 3)).start()?;
    let defaulted = Process::new(task!(dance, name = "Nagato".to_string())).start()?;
    let short_tuple = Process::new(task!(dance))
        .args(("Mikuru".to_string(),))
        .start()?;
    assert_eq!(by_args.join()?, 144);
    assert_eq!(by_name.join()?, 25);
    assert_eq!(positional.join()?, "Yuki dances 3 times");
    assert_eq!(defaulted.join()?, "Nagato dances 4 times");
    assert_eq!(short_tuple.join()?, "Mikuru dances 4 times");
    Ok(())
}

#[test]
fn arguments_of_many_types_round_trip() -> multiproc::Result<()> {
    let inner = Drawing {
        title: "inner".into(),
        shapes: vec![Shape::Empty],
        tags: HashMap::new(),
        parent: None,
    };
    let drawing = Drawing {
        title: "ünïcödé ✓".into(),
        shapes: vec![
            Shape::Circle { radius: 1.5 },
            Shape::Square(2.0),
            Shape::Empty,
        ],
        tags: HashMap::from([("a".into(), vec![1, -2, 3]), ("b".into(), vec![])]),
        parent: Some(Box::new(inner)),
    };
    let bytes: Vec<u8> = (0..=255).collect();
    let sent = ("text".to_string(), bytes, drawing, (-7, 'λ'));
    let call = task!(
        echo,
        sent.0.clone(),
        sent.1.clone(),
        drawing = sent.2.clone(),
        pair = sent.3
    );
    assert_eq!(Process::new(call).start()?.join()?, sent);
    Ok(())
}

#[test]
fn exit_codes_follow_python() -> multiproc::Result<()> {
    let returned = Process::new(task!(square, 3)).start()?;
    returned.join()?;
    assert_eq!(returned.exitcode(), Some(0));

    let panicked = Process::new(task!(boom, "kaboom".to_string())).start()?;
    match panicked.join() {
        Err(Error::Panicked { pid, message }) => {
            assert_eq!(pid, panicked.pid());
            assert_eq!(message, "kaboom");
        }
        other => panic!("expected a panic error, got {other:?}"),
    }
    assert_eq!(panicked.exitcode(), Some(1));

    for (handle, code) in [
        (Process::new(task!(exit_with, 7)).start()?, 7),
        (Process::new(task!(std_exit_with, 5)).start()?, 5),
    ] {
        assert!(matches!(handle.join(), Err(Error::Exited { code: c, .. }) if c == code));
        assert_eq!(handle.exitcode(), Some(code));
    }

    let terminated = Process::new(task!(sleep_ms, 60_000)).start()?;
    terminated.terminate()?;
    assert!(matches!(
        terminated.join(),
        Err(Error::Signaled { signal: 15, .. })
    ));
    assert_eq!(terminated.exitcode(), Some(-15));

    let killed = Process::new(task!(sleep_ms, 60_000)).start()?;
    killed.kill()?;
    assert!(matches!(
        killed.join(),
        Err(Error::Signaled { signal: 9, .. })
    ));
    assert_eq!(killed.exitcode(), Some(-9));
    Ok(())
}

#[test]
fn exit_zero_is_success_for_a_unit_task_only() -> multiproc::Result<()> {
    Process::new(task!(unit_exit_zero)).start()?.join()?;
    let valued = Process::new(task!(exit_with, 0)).start()?;
    assert!(matches!(valued.join(), Err(Error::Exited { code: 0, .. })));
    Ok(())
}

#[test]
fn exitcode_and_is_alive_while_running() -> multiproc::Result<()> {
    let p = Process::new(task!(sleep_ms, 60_000)).start()?;
    assert_eq!(p.exitcode(), None);
    assert!(p.is_alive());
    p.kill()?;
    assert!(p.join().is_err());
    assert!(!p.is_alive());
    Ok(())
}

#[test]
fn join_timeout_returns_after_about_the_timeout() -> multiproc::Result<()> {
    let p = Process::new(task!(sleep_ms, 60_000)).start()?;
    let start = Instant::now();
    assert!(p.join_timeout(Duration::from_millis(200))?.is_none());
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(195) && waited < Duration::from_secs(3),
        "waited {waited:?}"
    );

    let start = Instant::now();
    assert!(p.join_timeout(Duration::ZERO)?.is_none());
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "a zero timeout polls"
    );

    let quick = Process::new(task!(square, 9)).start()?;
    assert_eq!(quick.join_timeout(Duration::from_secs(30))?, Some(81));
    p.kill()?;
    Ok(())
}

#[test]
fn join_can_be_repeated() -> multiproc::Result<()> {
    let p = Process::new(task!(square, 4)).start()?;
    assert_eq!(p.join()?, 16);
    assert_eq!(p.join()?, 16);
    assert_eq!(p.join_timeout(Duration::ZERO)?, Some(16));
    Ok(())
}

/// Returns a value whose serialisation always fails.
#[process_task]
fn unencodable() -> unencodable_item::Item {
    unencodable_item::Item::Bad(0)
}

#[test]
fn a_result_that_cannot_be_encoded_is_reported() -> multiproc::Result<()> {
    let p = Process::new(task!(unencodable)).start()?;
    match p.join() {
        Err(Error::Task {
            failure: TaskFailure::Encode(_),
            pid,
        }) => assert_eq!(pid, p.pid()),
        other => panic!("expected an encoding failure, got {other:?}"),
    }
    assert_eq!(p.exitcode(), Some(1));
    Ok(())
}

#[test]
fn a_closure_runs_in_a_child() -> multiproc::Result<()> {
    let base = 40;
    let p = Process::spawn(move || (base + 2, std::process::id() as i32))?;
    let (value, pid) = p.join()?;
    assert_eq!(value, 42);
    assert_eq!(pid, p.pid());
    assert_ne!(pid, std::process::id() as i32);
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct Recorder {
    path: std::path::PathBuf,
    word: String,
}

#[process_task]
impl Run for Recorder {
    fn run(self) {
        let line = format!("{} from {}", self.word, current_process().name());
        std::fs::write(&self.path, line).expect("write the record");
    }
}

#[test]
fn a_struct_runs_as_the_process_body() -> multiproc::Result<()> {
    let path = std::env::temp_dir().join(format!("multiproc-recorder-{}", std::process::id()));
    let body = Recorder {
        path: path.clone(),
        word: "hello".into(),
    };
    let p = Process::new(body).name("recorder").start()?;
    p.join()?;
    let written = std::fs::read_to_string(&path).map_err(Error::Io)?;
    let _ = std::fs::remove_file(&path);
    assert_eq!(written, "hello from recorder");
    Ok(())
}

#[test]
fn names_follow_python() -> multiproc::Result<()> {
    assert_eq!(current_process().name(), "MainProcess");
    assert!(!current_process().daemon());
    assert!(parent_process().is_none());

    let named = Process::spawn(|| current_process().name().to_string())?;
    let default_name = named.name().to_string();
    assert!(default_name.starts_with("Process-"), "{default_name}");
    assert_eq!(named.join()?, default_name);

    let given = Process::from_fn(|| current_process().name().to_string())
        .name("worker-a")
        .start()?;
    assert_eq!(given.name(), "worker-a");
    assert_eq!(given.join()?, "worker-a");

    let nested = Process::spawn(|| -> Result<(String, String), String> {
        let me = current_process().name().to_string();
        let child =
            Process::spawn(|| current_process().name().to_string()).map_err(|e| e.to_string())?;
        Ok((me, child.join().map_err(|e| e.to_string())?))
    })?;
    let (me, grandchild) = nested.join()?.expect("the grandchild ran");
    assert_eq!(grandchild, format!("{me}:1"));
    Ok(())
}

#[test]
fn pids_are_distinct_and_the_parent_is_known() -> multiproc::Result<()> {
    let me = std::process::id() as i32;
    let children: Vec<_> = (0..5)
        .map(|_| {
            Process::spawn(|| {
                let parent = parent_process().expect("a child has a parent");
                (
                    current_process().pid(),
                    parent.pid(),
                    parent.is_alive(),
                    parent.name().to_string(),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    let mut pids = Vec::new();
    for child in &children {
        let (pid, parent, alive, parent_name) = child.join()?;
        assert_eq!(pid, child.pid());
        assert_eq!(parent, me);
        assert!(alive);
        assert_eq!(parent_name, "MainProcess");
        pids.push(pid);
    }
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 5);
    Ok(())
}

#[test]
fn a_hundred_processes_start_and_join() -> multiproc::Result<()> {
    let handles: Vec<_> = (0..100u64)
        .map(|i| Process::new(task!(square, i)).start())
        .collect::<Result<_, _>>()?;
    let results: Vec<u64> = handles.iter().map(|h| h.join()).collect::<Result<_, _>>()?;
    assert_eq!(results, (0..100u64).map(|i| i * i).collect::<Vec<_>>());
    Ok(())
}

#[test]
fn a_child_starts_a_grandchild() -> multiproc::Result<()> {
    let child = Process::spawn(|| -> Result<(u64, i32, i32), String> {
        let grandchild = Process::spawn(|| parent_process().map(|p| p.pid()).unwrap_or(0))
            .map_err(|e| e.to_string())?;
        let square = Process::new(task!(square, 11))
            .start()
            .map_err(|e| e.to_string())?;
        let value = square.join().map_err(|e| e.to_string())?;
        Ok((
            value,
            grandchild.join().map_err(|e| e.to_string())?,
            current_process().pid(),
        ))
    })?;
    let (value, grandchild_parent, child_pid) = child.join()?.expect("the grandchildren ran");
    assert_eq!(value, 121);
    assert_eq!(grandchild_parent, child_pid);
    Ok(())
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

#[test]
fn a_global_changed_in_a_child_is_unchanged_in_the_parent() -> multiproc::Result<()> {
    let before = COUNTER.load(Ordering::SeqCst);
    let child = Process::spawn(|| COUNTER.fetch_add(100, Ordering::SeqCst) + 100)?;
    assert_eq!(child.join()?, before + 100);
    assert_eq!(COUNTER.load(Ordering::SeqCst), before);
    Ok(())
}

#[test]
fn a_daemonic_process_cannot_start_children() -> multiproc::Result<()> {
    let daemon = Process::from_fn(|| {
        let refused = matches!(Process::spawn(|| ()), Err(Error::DaemonicParent));
        (current_process().daemon(), refused)
    })
    .daemon(true)
    .start()?;
    assert!(daemon.daemon());
    assert_eq!(daemon.join()?, (true, true));

    let plain = Process::spawn(|| current_process().daemon())?;
    assert!(!plain.daemon());
    assert!(!plain.join()?, "the daemon flag defaults to the parent's");
    Ok(())
}

/// Reads one native-endian i32 from a pipe.
fn read_pid(reader: &mut std::io::PipeReader) -> i32 {
    let mut buf = [0u8; 4];
    reader.read_exact(&mut buf).expect("read a pid");
    i32::from_ne_bytes(buf)
}

#[test]
fn a_daemonic_child_dies_when_its_parent_is_killed() -> multiproc::Result<()> {
    let (mut reader, writer) = std::io::pipe().map_err(Error::Io)?;
    let parent = Process::spawn(move || {
        let mut writer = writer;
        let daemon = Process::new(task!(sleep_ms, 60_000))
            .daemon(true)
            .start()
            .expect("start the daemon");
        writer
            .write_all(&daemon.pid().to_ne_bytes())
            .expect("send the pid");
        std::thread::sleep(Duration::from_secs(60));
    })?;
    let daemon = read_pid(&mut reader);
    assert!(
        !is_gone_or_zombie(daemon),
        "the daemon runs while its parent does"
    );
    parent.kill()?;
    assert!(matches!(
        parent.join(),
        Err(Error::Signaled { signal: 9, .. })
    ));
    assert!(
        eventually(Duration::from_secs(2), || is_gone_or_zombie(daemon)),
        "daemon {daemon} outlived its parent"
    );
    Ok(())
}

#[test]
fn at_a_normal_exit_children_are_joined_and_daemons_terminated() -> multiproc::Result<()> {
    let (mut reader, writer) = std::io::pipe().map_err(Error::Io)?;
    let parent: ProcessHandle<()> = Process::spawn(move || {
        let mut writer = writer;
        let daemon = Process::new(task!(sleep_ms, 60_000))
            .daemon(true)
            .start()
            .expect("start the daemon");
        let worker = Process::new(task!(sleep_ms, 300))
            .start()
            .expect("start the worker");
        writer
            .write_all(&daemon.pid().to_ne_bytes())
            .expect("send the pid");
        writer
            .write_all(&worker.pid().to_ne_bytes())
            .expect("send the pid");
        std::mem::forget((daemon, worker));
        // A normal exit: the C library runs the exit handlers, which join the children.
        std::process::exit(3)
    })?;
    let (daemon, worker) = (read_pid(&mut reader), read_pid(&mut reader));
    let start = Instant::now();
    assert!(matches!(parent.join(), Err(Error::Exited { code: 3, .. })));
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "the parent waited for its worker"
    );
    assert!(is_gone_or_zombie(worker) && is_gone_or_zombie(daemon));
    Ok(())
}

#[test]
fn a_child_that_returns_joins_its_own_children_first() -> multiproc::Result<()> {
    let parent = Process::spawn(|| {
        let worker = Process::new(task!(sleep_ms, 300))
            .start()
            .expect("start the worker");
        worker.pid()
    })?;
    let start = Instant::now();
    let worker = parent.join()?;
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(is_gone_or_zombie(worker));
    Ok(())
}

#[test]
fn a_dropped_handle_leaves_no_zombie() -> multiproc::Result<()> {
    let pids: Vec<i32> = (0..5)
        .map(|_| Process::new(task!(sleep_ms, 50)).start().map(|p| p.pid()))
        .collect::<Result<_, _>>()?;
    for pid in pids {
        assert!(
            eventually(Duration::from_secs(5), || is_reaped(pid)),
            "process {pid} was not reaped"
        );
    }
    Ok(())
}

#[test]
fn active_children_lists_the_running_ones() -> multiproc::Result<()> {
    let running = Process::new(task!(sleep_ms, 60_000))
        .name("long-runner")
        .start()?;
    let done = Process::new(task!(square, 2)).start()?;
    assert!(eventually(Duration::from_secs(5), || done
        .exitcode()
        .is_some()));
    let active = active_children();
    assert!(active
        .iter()
        .any(|c| c.pid() == running.pid() && c.name() == "long-runner"));
    assert!(active.iter().all(|c| c.pid() != done.pid()));
    running.kill()?;
    Ok(())
}

#[test]
fn close_is_refused_while_running_and_gives_the_handle_back() -> multiproc::Result<()> {
    let p = Process::new(task!(sleep_ms, 60_000)).start()?;
    let error = p.close().expect_err("the process still runs");
    assert!(error.to_string().contains("still running"));
    let p = error.into_handle();
    p.kill()?;
    assert!(p.join().is_err());
    assert!(p.close().is_ok());
    Ok(())
}

#[test]
fn the_sentinel_becomes_readable_when_the_process_ends() -> multiproc::Result<()> {
    use std::os::fd::AsRawFd;
    let p = Process::new(task!(sleep_ms, 100)).start()?;
    let mut fds = [libc::pollfd {
        fd: p.sentinel().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: one valid pollfd, whose descriptor the handle keeps open during the call.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, 10_000) };
    assert_eq!(ready, 1);
    assert_eq!(p.exitcode(), Some(0));
    Ok(())
}

#[test]
fn forking_while_other_threads_hold_the_output_locks_does_not_deadlock() -> multiproc::Result<()> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let out = std::io::stdout().lock();
                    let err = std::io::stderr().lock();
                    std::thread::yield_now();
                    drop((err, out));
                    let _ = active_children();
                }
            })
        })
        .collect();
    for i in 0..50u64 {
        let child = Process::spawn(move || {
            let _ = std::io::stdout().flush();
            i * 2
        })?;
        assert_eq!(
            child.join_timeout(Duration::from_secs(20))?,
            Some(i * 2),
            "child {i} hung"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for thread in busy {
        thread.join().expect("the busy thread ends");
    }
    Ok(())
}

extern "C" fn ignore_signal(_: libc::c_int) {}

#[test]
fn waiting_survives_interrupting_signals() -> multiproc::Result<()> {
    // SAFETY: installs a handler that does nothing, without SA_RESTART, so that blocking calls
    // of this process fail with EINTR when the signal arrives.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore_signal as *const () as usize;
        libc::sigaction(libc::SIGUSR2, &action, std::ptr::null_mut());
    }
    // SAFETY: pthread_self has no preconditions.
    let joiner = unsafe { libc::pthread_self() } as usize;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let interrupter = {
        let done = done.clone();
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                // SAFETY: the joining thread outlives this loop: it sets `done` only after its
                // join returned, and joins this thread before it ends.
                unsafe { libc::pthread_kill(joiner as libc::pthread_t, libc::SIGUSR2) };
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let slow = Process::new(task!(sleep_ms, 300)).start()?;
    let timed = Process::new(task!(sleep_ms, 60_000)).start()?;
    let start = Instant::now();
    slow.join()?;
    assert!(timed.join_timeout(Duration::from_millis(200))?.is_none());
    assert!(start.elapsed() >= Duration::from_millis(450));
    done.store(true, Ordering::Relaxed);
    interrupter.join().expect("the interrupter ends");
    timed.kill()?;
    Ok(())
}

#[process_task]
fn big_result(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn a_large_result_arrives_whole() -> multiproc::Result<()> {
    // Larger than the 1 MiB pipe buffer a child asks for, so that it arrives in pieces.
    let len = 3 << 20;
    let quick = Process::new(task!(big_result, len)).start()?;
    let bytes = quick.join()?;
    assert_eq!(bytes.len(), len);
    assert!(bytes.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));

    let timed = Process::new(task!(big_result, len)).start()?;
    let mut result = None;
    while result.is_none() {
        result = timed.join_timeout(Duration::from_millis(1))?;
    }
    assert_eq!(result.map(|b| b.len()), Some(len));
    Ok(())
}

#[test]
fn cpu_count_is_the_number_of_cpus_this_process_may_use() {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it for this
    // process (pid 0), and CPU_COUNT only reads it.
    let allowed = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        libc::CPU_COUNT(&set) as usize
    };
    assert_eq!(cpu_count(), allowed);
}

#[test]
fn a_timeout_too_large_for_a_deadline_waits_instead_of_panicking() -> multiproc::Result<()> {
    let child = Process::spawn(|| 7u8)?;
    assert_eq!(child.join_timeout(Duration::MAX)?, Some(7));
    let (mut a, b) = Pipe::<u8>::duplex()?;
    a.send(&1)?;
    assert!(b.poll(Some(Duration::MAX))?);
    let pool = Pool::new(1)?;
    #[process_task]
    fn seven() -> u8 {
        7
    }
    assert_eq!(
        pool.apply_async(task!(seven).bind(()))
            .get_timeout(Duration::MAX)?,
        7
    );
    Ok(())
}
