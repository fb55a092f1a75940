//! Process lifecycle: daemons, what happens to children at exit, reaping, sentinels, forking
//! beside busy threads, and signals, across real processes.

mod common;

use common::{eventually, is_gone_or_zombie, is_reaped};
use multiproc::prelude::*;
use multiproc::Error;
use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[process_task]
fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[process_task]
fn square(x: u64) -> u64 {
    x * x
}

#[test]
fn a_daemonic_process_cannot_start_children() -> multiproc::Result<()> {
    let daemon = Process::from_fn(|| {
        let refused = matches!(Process::fork(|| ()), Err(Error::DaemonicParent));
        (current_process().daemon(), refused)
    })
    .daemon(true)
    .start()?;
    assert!(daemon.daemon());
    assert_eq!(daemon.join()?, (true, true));

    let plain = Process::fork(|| current_process().daemon())?;
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
    let parent = Process::fork(move || {
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
    let parent: ProcessHandle<()> = Process::fork(move || {
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
    let parent = Process::fork(|| {
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
        let child = Process::fork(move || {
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

#[test]
fn exit_is_in_the_prelude_and_sets_the_exit_code() -> multiproc::Result<()> {
    // `exit` unqualified: from `multiproc::prelude::*`.
    let child = Process::fork(|| -> u32 { exit(7) })?;
    assert!(matches!(child.join(), Err(Error::Exited { code: 7, .. })));
    assert_eq!(child.exitcode(), Some(7));
    Ok(())
}

#[test]
fn current_process_displays_as_pythons_repr_in_the_parent_and_in_children() -> multiproc::Result<()>
{
    let me = current_process();
    let pid = std::process::id();
    assert_eq!(
        me.to_string(),
        format!("<Process name='MainProcess' pid={pid} parent=None started>")
    );

    let child = Process::fork(|| current_process().to_string())?;
    let child_pid = child.pid();
    let name = child.name().to_string();
    assert!(name.starts_with("Process-"));
    assert_eq!(
        child.join()?,
        format!("<Process name='{name}' pid={child_pid} parent={pid} started>")
    );

    let daemon = Process::from_fn(|| current_process().to_string())
        .name("it's")
        .daemon(true)
        .start()?;
    let daemon_pid = daemon.pid();
    assert_eq!(
        daemon.join()?,
        format!("<Process name=\"it's\" pid={daemon_pid} parent={pid} started daemon>")
    );
    Ok(())
}
