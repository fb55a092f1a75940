//! The children of this process: their registry, reaping, and what happens to them at exit.
//!
//! Every started child has a [`ChildCore`], shared by its handle and the registry. Reaping goes
//! through the core's lock, so the handle, `active_children`, the exit routine and the reaper of
//! a dropped handle may all wait for one child without stealing its status from each other.
//! At a normal exit (Python's `_exit_function`), daemonic children are terminated and all
//! children are joined; daemonic children also die with their parent however it dies, by the
//! hang-up signal set up in `context`. A child that the fork server forked is not this process's
//! child in the kernel's eyes: the server reaps it and reports how it ended ([`ServerStatus`]).

use crate::sys::{self, rights, ExitStatus};
use crate::util::lock;
use crate::wire::frame::PartialFrame;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The result pipe of a child, read as the child writes so that it never blocks on a full pipe.
struct ResultPipe {
    /// The read end; `None` once it reached end of file or the result was discarded. Shared,
    /// so that a waiter can poll it without holding the lock.
    fd: Option<Arc<OwnedFd>>,
    frame: PartialFrame,
}

/// The most one read of a result asks for: the largest buffer a child gives its pipe.
const MAX_READ: usize = sys::LARGE_PIPE;

/// What the first read of a result asks for: the header and a small result, in one read (the
/// pipe holds nothing after the result).
const FIRST_READ: usize = 256;

/// For this long after a child starts, its waiters watch only its exit, not its result pipe. A
/// short task's result fits in the pipe's buffer, so it needs no reader until the exit; watching
/// the pipe would wake the parent twice (result, then exit), and on one CPU the wake-up preempts
/// the exiting child. After it, the pipe is watched too, so that a large result never keeps its
/// writer waiting for long.
const QUIET_START: Duration = Duration::from_millis(10);

/// One child process, as long as anyone needs it.
pub(crate) struct ChildCore {
    pid: i32,
    pidfd: OwnedFd,
    name: String,
    daemon: bool,
    started: Instant,
    status: Mutex<Option<ExitStatus>>,
    result: Mutex<ResultPipe>,
    /// For a child that the fork server forked: where its exit status comes from.
    server: Option<ServerStatus>,
}

/// How long a child that has exited may stay unreaped by the fork server (or, once the server
/// is gone, by init) before its status counts as lost.
const REAP_PATIENCE: Duration = Duration::from_secs(10);

/// The exit status of a child that the fork server forked. The server reaps it and sends its
/// wait status on a socket of its own; on Linux 6.15 and later the kernel also keeps the status
/// for the child's pidfd, which still tells when the server died first (then init reaps it).
struct ServerStatus {
    /// The socket; `None` once the server closed it (it has died).
    socket: Mutex<Option<OwnedFd>>,
}

impl ServerStatus {
    /// The status, once the child has been reaped; `None` while it runs. A child that has
    /// exited is reaped at once, so this waits for the report (at most [`REAP_PATIENCE`]):
    /// once the pidfd is readable, the status is known, as for a child of this process.
    fn status(&self, pid: i32, pidfd: BorrowedFd<'_>) -> io::Result<Option<ExitStatus>> {
        let mut socket = lock(&self.socket);
        let deadline = Instant::now() + REAP_PATIENCE;
        let mut exited = false;
        loop {
            if let Some(status) = read_status(&mut socket)? {
                return Ok(Some(status));
            }
            let kernel = sys::pidfd_exit_status(pidfd);
            if let Ok(Some(status)) = kernel {
                return Ok(Some(status));
            }
            if !exited {
                exited = sys::poll(&[pidfd], libc::POLLIN, Some(Instant::now()))?[0];
                if !exited {
                    return Ok(None);
                }
            }
            if (socket.is_none() && kernel.is_err()) || Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "the fork server did not report how process {pid} ended (it died first, \
                     and a kernel older than Linux 6.15 keeps no status for a pidfd)"
                )));
            }
            match socket.as_ref() {
                Some(fd) => drop(sys::poll(&[fd.as_fd()], libc::POLLIN, Some(deadline))?),
                None => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }
}

/// Reads the wait status the fork server sent, if it has; closes the socket at its end.
fn read_status(socket: &mut Option<OwnedFd>) -> io::Result<Option<ExitStatus>> {
    let Some(fd) = socket.as_ref() else {
        return Ok(None);
    };
    match rights::recv_with_fds(fd.as_fd(), 4, false) {
        Ok(Some(message)) => {
            let word = <[u8; 4]>::try_from(message.bytes.as_slice())
                .map_err(|_| io::Error::other("a malformed status from the fork server"))?;
            *socket = None;
            Ok(Some(ExitStatus::from_wait_status(i32::from_ne_bytes(word))))
        }
        Ok(None) => {
            *socket = None;
            Ok(None)
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

impl ChildCore {
    /// The core of a started child; `result` is the non-blocking read end of its result pipe.
    pub(crate) fn new(
        pid: i32,
        pidfd: OwnedFd,
        name: String,
        daemon: bool,
        result: OwnedFd,
    ) -> Self {
        ChildCore {
            pid,
            pidfd,
            name,
            daemon,
            started: Instant::now(),
            status: Mutex::new(None),
            result: Mutex::new(ResultPipe {
                fd: Some(Arc::new(result)),
                frame: PartialFrame::reading_ahead(FIRST_READ),
            }),
            server: None,
        }
    }

    /// The core of a child that the fork server forked: its status comes on `status`, the
    /// server's socket, not from `waitid`, which only a parent may call.
    pub(crate) fn reaped_by_server(mut self, status: OwnedFd) -> Self {
        self.server = Some(ServerStatus {
            socket: Mutex::new(Some(status)),
        });
        self
    }

    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn daemon(&self) -> bool {
        self.daemon
    }

    /// A descriptor that becomes readable when the child exits.
    pub(crate) fn sentinel(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Reads what the child has written so far, without blocking. Once the whole frame is in,
    /// the pipe is closed: there is nothing more to wait for on it.
    fn drain_result(&self) -> io::Result<()> {
        let mut pipe = lock(&self.result);
        let ResultPipe { fd, frame } = &mut *pipe;
        while let Some(file) = fd {
            if frame.is_complete() {
                *fd = None;
                break;
            }
            match frame.read_some(file.as_fd(), MAX_READ)? {
                Some(0) => *fd = None,
                Some(_) => {}
                None => break,
            }
        }
        Ok(())
    }

    /// The result bytes the child wrote. Meaningful once it has been reaped.
    pub(crate) fn with_result<T>(&self, read: impl FnOnce(&[u8]) -> T) -> T {
        read(lock(&self.result).frame.as_slice())
    }

    /// Closes the result pipe: nobody will read the result, and a child still writing it gets
    /// `EPIPE` instead of blocking forever.
    pub(crate) fn discard_result(&self) {
        let mut pipe = lock(&self.result);
        pipe.fd = None;
        pipe.frame = PartialFrame::default();
    }

    /// Reaps the child if it has exited, without blocking.
    pub(crate) fn try_reap(&self) -> io::Result<Option<ExitStatus>> {
        let mut status = lock(&self.status);
        if status.is_none() {
            *status = match &self.server {
                None => sys::try_wait(self.pid)?,
                Some(server) => server.status(self.pid, self.pidfd.as_fd())?,
            };
            if status.is_some() {
                forget(self.pid);
            }
        }
        Ok(*status)
    }

    /// Waits for the child to exit until `deadline` (`None`: no limit), reading its result
    /// meanwhile. Returns `None` if it still runs at the deadline.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> io::Result<Option<ExitStatus>> {
        loop {
            self.drain_result()?;
            if let Some(status) = self.try_reap()? {
                self.drain_result()?;
                return Ok(Some(status));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            let quiet_until = self.started + QUIET_START;
            let watch_result = Instant::now() >= quiet_until;
            let result = watch_result
                .then(|| lock(&self.result).fd.clone())
                .flatten();
            let mut fds = vec![self.pidfd.as_fd()];
            fds.extend(result.as_ref().map(|file| file.as_fd()));
            let wake = match deadline {
                Some(deadline) if watch_result || deadline < quiet_until => Some(deadline),
                _ if watch_result => None,
                _ => Some(quiet_until),
            };
            sys::poll(&fds, libc::POLLIN, wake)?;
        }
    }

    /// Sends `signal` to the child, unless it has already been reaped.
    pub(crate) fn signal(&self, signal: i32) -> io::Result<()> {
        let status = lock(&self.status);
        if status.is_none() {
            sys::pidfd_send_signal(self.pidfd.as_fd(), signal)?;
        }
        Ok(())
    }
}

/// The children of this process that have not been reaped, and what it holds for them.
pub(crate) struct Children {
    list: Vec<Arc<ChildCore>>,
    /// Write ends of the hang-up pipes of daemonic children, by pid: closed when this process
    /// dies, which kills them.
    hangup_pipes: Vec<(i32, OwnedFd)>,
    /// Descriptors this process holds for its own parent (its result pipe and hang-up pipe),
    /// which its children must not inherit.
    for_parent: [Option<RawFd>; 2],
}

static CHILDREN: Mutex<Children> = Mutex::new(Children {
    list: Vec::new(),
    hangup_pipes: Vec::new(),
    for_parent: [None; 2],
});

/// Locks the registry. `context` holds this lock across fork, so that the child inherits it in
/// a consistent state and owned by the forking thread.
pub(crate) fn registry() -> MutexGuard<'static, Children> {
    lock(&CHILDREN)
}

impl Children {
    /// Adds a child started by this process.
    pub(crate) fn add(&mut self, child: Arc<ChildCore>, hangup_pipe: Option<OwnedFd>) {
        if let Some(pipe) = hangup_pipe {
            self.hangup_pipes.push((child.pid, pipe));
        }
        self.list.push(child);
    }

    /// In a freshly forked child: drops the parent's children and closes what the parent held
    /// for them and for its own parent, then records what this child holds for its parent.
    /// It allocates nothing: every page a forked child writes costs it a copy.
    pub(crate) fn reset_in_child(&mut self, for_parent: [Option<RawFd>; 2]) {
        self.list.clear();
        self.hangup_pipes.clear();
        for fd in self.for_parent.iter().flatten() {
            // SAFETY: these descriptors belong to the registry alone (they are raw numbers
            // recorded at fork, owned by no OwnedFd in this process's live code), so closing
            // them cannot close a descriptor that someone else owns.
            unsafe { libc::close(*fd) };
        }
        self.for_parent = for_parent;
    }
}

/// Removes a reaped child from the registry and closes its hang-up pipe.
fn forget(pid: i32) {
    let mut children = registry();
    children.list.retain(|c| c.pid != pid);
    children.hangup_pipes.retain(|(p, _)| *p != pid);
}

/// The children not yet reaped, reaping those that have exited first (as Python does).
pub(crate) fn active() -> Vec<Arc<ChildCore>> {
    let children = registry().list.clone();
    children
        .into_iter()
        .filter(|c| matches!(c.try_reap(), Ok(None)))
        .collect()
}

/// Waits for a child whose handle was dropped, on a thread of its own, so that it leaves no
/// zombie.
pub(crate) fn reap_in_background(child: Arc<ChildCore>) {
    // If no thread can be started, the exit routine (or init, after this process) reaps it.
    let own = crate::sys::threads::OwnThread::count();
    let _ = std::thread::Builder::new()
        .name(format!("multiproc-reap-{}", child.pid))
        .stack_size(64 * 1024)
        .spawn(move || {
            let _own = own;
            child.wait(None)
        });
}

/// Python's exit routine: terminate daemonic children, then join every child.
pub(crate) fn finish_children() {
    let children = registry().list.clone();
    for child in children.iter().filter(|c| c.daemon) {
        let _ = child.signal(libc::SIGTERM);
    }
    for child in &children {
        let _ = child.wait(None);
    }
}

extern "C" fn finish_children_at_exit() {
    // A panic must not unwind into the C library's exit.
    let _ = std::panic::catch_unwind(finish_children);
}

/// Makes a normal exit of this process (returning from `main`, `std::process::exit`) join its
/// children first, as Python does. Registered once, before the first child starts; a forked
/// child inherits the registration, and it acts on whatever children that process has.
pub(crate) fn join_children_at_exit() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: registers a plain `extern "C" fn()` that never unwinds.
        unsafe { libc::atexit(finish_children_at_exit) };
    });
}
