//! The cleanup process of named segments (the job of Python's resource tracker).
//!
//! The first time a process creates a named [`SharedMemory`](super::SharedMemory), it forks a
//! small tracker that watches it through a pidfd and keeps the names it was told about through a
//! pipe (`+name` on create, `-name` on unlink). When the creator ends, however it ends (SIGKILL
//! included), the tracker unlinks the names still listed and exits. The tracker closes every
//! other descriptor it inherited (so it holds no one's pipe open) and ignores SIGINT and
//! SIGTERM, which a terminal sends to the whole process group, so that it outlives the creator.

use crate::sys;
use crate::sys::fork_safe::ForkSafeLock;
use crate::sys::owner;
use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// This process's tracker: its pipe's write end, and the pid it was started for (a forked
/// child must start its own).
#[derive(Default)]
struct Tracker {
    pid: u32,
    pipe: Option<OwnedFd>,
}

static TRACKER: ForkSafeLock<Tracker> = ForkSafeLock::new(Tracker { pid: 0, pipe: None });

/// Tells the tracker to unlink `name` if this process ends first.
pub(crate) fn register(name: &str) -> io::Result<()> {
    send(b'+', name)
}

/// Tells the tracker that `name` was unlinked.
pub(crate) fn unregister(name: &str) -> io::Result<()> {
    send(b'-', name)
}

fn send(op: u8, name: &str) -> io::Result<()> {
    let mut line = Vec::with_capacity(name.len() + 2);
    line.push(op);
    line.extend_from_slice(name.as_bytes());
    line.push(b'\n');
    TRACKER.with(|tracker| {
        let me = owner::pid();
        if tracker.pid != me || tracker.pipe.is_none() {
            *tracker = Tracker {
                pid: me,
                pipe: Some(start()?),
            };
        }
        let fd = tracker.pipe.as_ref().map_or(-1, |p| p.as_raw_fd());
        // SAFETY: writes `line`, a live buffer of this length, to a descriptor we own. A line
        // is shorter than PIPE_BUF (names are at most 255 bytes), so the write is atomic.
        let written = unsafe { libc::write(fd, line.as_ptr().cast(), line.len()) };
        if written == line.len() as isize {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    })
}

/// Forks the tracker; returns the write end of its pipe.
fn start() -> io::Result<OwnedFd> {
    let (read, write) = sys::pipe()?;
    let creator = owner::pid();
    // SAFETY: the child runs `track`, which uses only raw system calls and this process's
    // allocator (usable after fork with glibc), takes no lock another thread may hold, and
    // leaves with `_exit`.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => track(read, creator),
        _ => Ok(write),
    }
}

fn track(read: OwnedFd, creator: u32) -> ! {
    let keep = read.as_raw_fd();
    // SAFETY: closes every descriptor but the pipe's read end: this process owns no other
    // (the Rust objects that did exist only in the parent's threads, which do not run here).
    unsafe {
        libc::syscall(libc::SYS_close_range, 0u32, (keep - 1) as u32, 0u32);
        libc::syscall(libc::SYS_close_range, (keep + 1) as u32, u32::MAX, 0u32);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
    }
    let names = watch(&read, creator);
    for name in names {
        if let Ok(c) = std::ffi::CString::new(format!("/{name}")) {
            // SAFETY: a valid NUL-terminated path.
            unsafe { libc::shm_unlink(c.as_ptr()) };
        }
    }
    // SAFETY: ends this process at once, as a forked child must.
    unsafe { libc::_exit(0) }
}

/// Collects names from the pipe until the creator ends; returns those still registered.
fn watch(read: &OwnedFd, creator: u32) -> HashSet<String> {
    let mut names = HashSet::new();
    // SAFETY: getppid has no preconditions.
    let parent_alive = || unsafe { libc::getppid() } == creator as libc::pid_t;
    let pidfd = match sys::pidfd_open(creator as i32) {
        Ok(fd) if parent_alive() => fd,
        _ => {
            drain(read, &mut names);
            return names;
        }
    };
    // F_SETFL on a pipe of our own does not fail.
    let _ = sys::set_nonblocking(read.as_fd());
    let mut pending = Vec::new();
    let mut pipe_open = true;
    loop {
        let fds: Vec<_> = if pipe_open {
            vec![pidfd.as_fd(), read.as_fd()]
        } else {
            vec![pidfd.as_fd()]
        };
        let ready = sys::poll(&fds, libc::POLLIN, None).unwrap_or_else(|_| vec![true]);
        if ready.get(1).copied().unwrap_or(false) {
            pipe_open = read_lines(read, &mut pending, &mut names);
        }
        if ready[0] {
            read_lines(read, &mut pending, &mut names);
            return names;
        }
    }
}

fn drain(read: &OwnedFd, names: &mut HashSet<String>) {
    let _ = sys::set_nonblocking(read.as_fd());
    read_lines(read, &mut Vec::new(), names);
}

/// Reads what the pipe holds and applies each complete line; whether the pipe is still open.
fn read_lines(read: &OwnedFd, pending: &mut Vec<u8>, names: &mut HashSet<String>) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reads into a live buffer of this length from a descriptor we own.
        let n = unsafe { libc::read(read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n == 0 {
            return false;
        }
        if n < 0 {
            let kind = io::Error::last_os_error().kind();
            return matches!(kind, io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted);
        }
        pending.extend_from_slice(&buf[..n as usize]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if line.len() < 2 {
                continue;
            }
            let name = String::from_utf8_lossy(&line[1..line.len() - 1]).into_owned();
            match line[0] {
                b'+' => names.insert(name),
                _ => names.remove(&name),
            };
        }
    }
}
