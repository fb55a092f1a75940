//! The platform layer, below everything else: thin wrappers over the system calls the crate
//! needs (pidfd, poll, waitid, pipes, sockets), each retried on `EINTR` and returning
//! `io::Result`; and, one file each, the futex ([`futex`]), the owner words that say who holds a
//! lock and whether it is alive ([`owner`]), the lock that stays usable across a fork
//! ([`fork_safe`]) and the page hints ([`mem`]).
//!
//! Linux is the first platform: pidfds make waiting for a child race-free and pollable, futexes
//! in shared memory let processes sleep on a word. Nothing here knows about the layers above.

pub(crate) mod backoff;
pub(crate) mod exec;
pub(crate) mod fork_safe;
pub(crate) mod futex;
pub(crate) mod mem;
pub(crate) mod owner;
pub(crate) mod rights;
pub(crate) mod sharer;
pub(crate) mod threads;
pub(crate) mod transfer;

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitStatus {
    /// It exited with this code.
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
}

impl ExitStatus {
    /// The status a `wait` status word describes (`W_EXITCODE(code, 0)` or the signal number).
    pub(crate) fn from_wait_status(status: i32) -> Self {
        if libc::WIFEXITED(status) {
            ExitStatus::Exited(libc::WEXITSTATUS(status))
        } else {
            ExitStatus::Signaled(libc::WTERMSIG(status))
        }
    }

    /// The `wait` status word that describes this status: [`from_wait_status`]'s inverse.
    ///
    /// [`from_wait_status`]: ExitStatus::from_wait_status
    pub(crate) fn wait_status(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => (code & 0xff) << 8,
            ExitStatus::Signaled(signal) => signal & 0x7f,
        }
    }

    /// Python's `exitcode`: the code, or minus the signal number.
    pub(crate) fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(signal) => -signal,
        }
    }
}

/// Turns a `-1` return into the `errno` error.
fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Retries `call` while it fails with `EINTR`.
fn retry<T>(mut call: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// A random number, from the hasher keys std draws from the system's random source.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// A file descriptor that refers to the process `pid`, pollable until it exits.
pub(crate) fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; it touches
    // no memory of ours.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: the kernel just returned this descriptor, so it is open and owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// A copy (close-on-exec) of whatever descriptor number `fd` of this process refers to now;
/// `EBADF` if none. Unlike `BorrowedFd::try_clone_to_owned` it needs no proof that `fd` is
/// open, so it suits a number that came from outside, which may be anything.
pub(crate) fn dup_number(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) takes a descriptor number, which the kernel checks, and
    // returns a new descriptor or -1; it touches no memory of ours.
    let new = check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) }.into())?;
    // SAFETY: the kernel just returned this descriptor, so it is open and owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(new as RawFd) })
}

/// Sends `signal` to the process behind `pidfd`; a process that already exited is not an error.
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: the descriptor is borrowed, so it stays open for the call; a null siginfo asks
    // the kernel to fill it in as for kill(2).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    match check(ret) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        other => other.map(drop),
    }
}

/// `struct pidfd_info` of Linux's `<linux/pidfd.h>`, its first version (64 bytes).
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    /// pid, tgid, ppid, then the eight ids of the credentials.
    ids: [u32; 11],
    exit_code: i32,
}

/// `PIDFD_INFO_EXIT`: ask for (and, in the answer, have) the exit status.
const PIDFD_INFO_EXIT: u64 = 1 << 3;

/// `PIDFD_GET_INFO`: `_IOWR(0xFF, 11, struct pidfd_info)`.
const PIDFD_GET_INFO: libc::c_ulong =
    (3 << 30) | ((std::mem::size_of::<PidfdInfo>() as libc::c_ulong) << 16) | (0xFF << 8) | 11;

/// How the process behind `pidfd` ended, once it has been reaped, whoever its parent is
/// (`PIDFD_GET_INFO` with `PIDFD_INFO_EXIT`, Linux 6.15 and later). `Ok(None)` while it has not
/// been reaped; an error (`ENOTTY`, `EINVAL`) on a kernel without it.
pub(crate) fn pidfd_exit_status(pidfd: BorrowedFd<'_>) -> io::Result<Option<ExitStatus>> {
    let mut info = PidfdInfo {
        mask: PIDFD_INFO_EXIT,
        ..PidfdInfo::default()
    };
    // SAFETY: the descriptor is borrowed, so it stays open for the call; the kernel writes at
    // most the size the request number encodes, the size of `info`, which lives until it returns.
    let ret = unsafe { libc::ioctl(pidfd.as_raw_fd(), PIDFD_GET_INFO as _, &mut info) };
    check(ret.into())?;
    Ok((info.mask & PIDFD_INFO_EXIT != 0).then(|| ExitStatus::from_wait_status(info.exit_code)))
}

/// Reaps the child `pid` if it has exited, without blocking.
pub(crate) fn try_wait(pid: i32) -> io::Result<Option<ExitStatus>> {
    retry(|| {
        // SAFETY: siginfo_t is plain data, all zeroes is a valid value of it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable siginfo_t for the duration of the call.
        let ret = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG,
            )
        };
        check(ret as libc::c_long)?;
        // SAFETY: waitid filled `info` (or left it zeroed, which si_pid() reads as 0).
        if unsafe { info.si_pid() } == 0 {
            return Ok(None);
        }
        // SAFETY: as above; si_status is valid when si_pid is set.
        let status = unsafe { info.si_status() };
        Ok(Some(match info.si_code {
            libc::CLD_EXITED => ExitStatus::Exited(status),
            _ => ExitStatus::Signaled(status),
        }))
    })
}

/// Waits until one of `fds` is ready for `events`, or until `deadline` (`None`: no limit).
/// Returns which descriptors are ready.
pub(crate) fn poll(
    fds: &[BorrowedFd<'_>],
    events: i16,
    deadline: Option<Instant>,
) -> io::Result<Vec<bool>> {
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        })
        .collect();
    poll_fds(&mut pollfds, deadline)?;
    Ok(pollfds.iter().map(|p| p.revents != 0).collect())
}

/// The general form of [`poll`]: each entry asks for its own events, and its `revents` says
/// what it is ready for when this returns.
pub(crate) fn poll_fds(fds: &mut [libc::pollfd], deadline: Option<Instant>) -> io::Result<()> {
    retry(|| {
        let timeout = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                // Round up, so that a wait never returns before its deadline.
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int
            }
        };
        // SAFETY: `fds` is a valid, writable array of pollfd of its length, and poll touches
        // nothing else; a descriptor closed meanwhile is only reported, never dereferenced.
        let ret = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        check(ret as libc::c_long)
    })?;
    Ok(())
}

/// A pipe whose two ends are closed on exec: `(read end, write end)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
}

/// A pipe whose two ends are closed on exec and do not block: reads and writes return
/// `WouldBlock` instead (one system call fewer than setting the flag afterwards).
pub(crate) fn nonblocking_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::OFlag;
    nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(io::Error::from)
}

/// Makes reads and writes of `fd` return at once rather than wait (`fd` must have no other status
/// flags to keep: this sets `O_NONBLOCK` alone).
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    Ok(())
}

/// The send buffer asked for on a pool worker's task channel: room for several large chunks.
/// The kernel caps it at twice `net.core.wmem_max` (208 KiB by default), which still works.
const TASK_CHANNEL_BUFFER: usize = 4 << 20;

/// A pool worker's task channel, `(worker's end, parent's end)`: a Unix stream socket pair,
/// both ends closed on exec, the parent's end non-blocking (its writer, the pool's result
/// thread, must never wait) and the worker's blocking (it sleeps until a chunk comes).
///
/// A socket rather than a pipe: a pipe moves data one 4 KiB page at a time, each allocated and
/// charged on write and freed on read, where a socket moves a large chunk in a few large
/// buffers; a warm pool's map of 200,000 tiny tasks runs about 1.7x faster. Small frames cost
/// the same either way.
pub(crate) fn task_channel() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{setsockopt, socketpair, sockopt, AddressFamily, SockFlag, SockType};
    let (worker, parent) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    set_nonblocking(parent.as_fd())?;
    // Best effort: the default buffer is smaller but works.
    let _ = setsockopt(&parent, sockopt::SndBuf, &TASK_CHANNEL_BUFFER);
    Ok((worker, parent))
}

/// Sends `parts` down a stream socket, in order, as far as there is room: the bytes sent. A peer
/// gone is `BrokenPipe`, never SIGPIPE, whatever the process does with that signal.
pub(crate) fn send_vectored(fd: BorrowedFd<'_>, parts: &[io::IoSlice<'_>]) -> io::Result<usize> {
    use nix::sys::socket::{sendmsg, MsgFlags, UnixAddr};
    sendmsg::<UnixAddr>(fd.as_raw_fd(), parts, &[], MsgFlags::MSG_NOSIGNAL, None)
        .map_err(io::Error::from)
}

/// The pipe buffer asked for when a large message is coming: 1 MiB, the most an unprivileged
/// process may ask for by default (`/proc/sys/fs/pipe-max-size`).
pub(crate) const LARGE_PIPE: usize = 1 << 20;

/// Asks for a pipe buffer of [`LARGE_PIPE`] bytes, so that a large message crosses in fewer
/// round trips. Best effort: a refusal leaves the pipe as it was, which still works.
pub(crate) fn enlarge_pipe(fd: BorrowedFd<'_>) {
    // SAFETY: fcntl on a descriptor we borrow, with an integer argument.
    unsafe {
        libc::fcntl(
            fd.as_raw_fd(),
            libc::F_SETPIPE_SZ,
            LARGE_PIPE as libc::c_int,
        )
    };
}

/// Writes all of `bytes` to a non-blocking descriptor, waiting for room when it is full.
pub(crate) fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(written) => bytes = &bytes[written..],
            Err(nix::errno::Errno::EAGAIN) => {
                poll(&[fd], libc::POLLOUT, None)?;
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// Reads once into `buf`: `Ok(Some(0))` at end of file, `Ok(None)` if nothing is there yet.
pub(crate) fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    retry(|| match nix::unistd::read(fd.as_raw_fd(), buf) {
        Ok(read) => Ok(Some(read)),
        Err(nix::errno::Errno::EAGAIN) => Ok(None),
        Err(error) => Err(error.into()),
    })
}

/// `F_SETSIG` from Linux's `<fcntl.h>` (the same on every architecture); the libc crate lacks it.
const F_SETSIG: libc::c_int = 10;

/// Asks the kernel to send `signal` to this process when every write end of the pipe whose read
/// end is `fd` has closed: the death signal of a daemonic child, immune to which thread forked.
pub(crate) fn signal_on_hangup(fd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor we borrow, with integer arguments only.
    unsafe {
        check(libc::fcntl(raw, libc::F_SETOWN, libc::getpid()) as libc::c_long)?;
        check(libc::fcntl(raw, F_SETSIG, signal) as libc::c_long)?;
        let flags = check(libc::fcntl(raw, libc::F_GETFL) as libc::c_long)? as libc::c_int;
        check(
            libc::fcntl(raw, libc::F_SETFL, flags | libc::O_ASYNC | libc::O_NONBLOCK)
                as libc::c_long,
        )?;
    }
    Ok(())
}

/// The size of a main thread's stack: the process's stack limit (`ulimit -s`), or 8 MiB, the
/// usual limit, when it is unlimited or unknown.
pub(crate) fn main_stack_size() -> usize {
    const USUAL: usize = 8 << 20;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through the pointer, which points to one we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut limit) } != 0
        || limit.rlim_cur == libc::RLIM_INFINITY
    {
        return USUAL;
    }
    usize::try_from(limit.rlim_cur).unwrap_or(USUAL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{IoSlice, Read};
    use std::os::fd::AsFd;

    #[test]
    fn the_exit_status_of_a_reaped_process_is_read_from_its_pidfd() {
        let mut exited = std::process::Command::new("sh")
            .args(["-c", "read line; exit 7"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pidfd = pidfd_open(exited.id() as i32).unwrap();
        assert_eq!(pidfd_exit_status(pidfd.as_fd()).unwrap(), None, "it runs");
        drop(exited.stdin.take());
        assert_eq!(exited.wait().unwrap().code(), Some(7));
        let status = pidfd_exit_status(pidfd.as_fd()).unwrap();
        assert_eq!(status, Some(ExitStatus::Exited(7)));

        let mut killed = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pidfd = pidfd_open(killed.id() as i32).unwrap();
        pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL).unwrap();
        killed.wait().unwrap();
        let status = pidfd_exit_status(pidfd.as_fd()).unwrap();
        assert_eq!(status, Some(ExitStatus::Signaled(libc::SIGKILL)));
    }

    #[test]
    fn a_wait_status_word_round_trips() {
        for status in [
            ExitStatus::Exited(0),
            ExitStatus::Exited(255),
            ExitStatus::Signaled(15),
        ] {
            assert_eq!(ExitStatus::from_wait_status(status.wait_status()), status);
        }
        assert_eq!(ExitStatus::from_wait_status(0x700), ExitStatus::Exited(7));
    }

    #[test]
    fn task_channel_sends_in_order_never_blocks_and_reports_a_gone_worker() {
        let (worker, parent) = task_channel().unwrap();
        let sent = send_vectored(parent.as_fd(), &[IoSlice::new(b"ab"), IoSlice::new(b"cd")]);
        assert_eq!(sent.unwrap(), 4);
        let mut worker = std::fs::File::from(worker);
        let mut got = [0; 4];
        worker.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"abcd");
        let chunk = vec![7u8; 1 << 20];
        let full = loop {
            match send_vectored(parent.as_fd(), &[IoSlice::new(&chunk)]) {
                Ok(n) => assert!(n > 0),
                Err(e) => break e,
            }
        };
        assert_eq!(full.kind(), io::ErrorKind::WouldBlock);
        drop(worker);
        let gone = send_vectored(parent.as_fd(), &[IoSlice::new(b"x")]).unwrap_err();
        assert_eq!(gone.kind(), io::ErrorKind::BrokenPipe);
    }
}
