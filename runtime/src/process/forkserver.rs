//! The forkserver start method (Python's `forkserver` and `popen_forkserver`).
//!
//! **The server.** On first use, a process starts its fork server by spawn, under a task name no
//! task can have ([`SERVE`]): the server ran every constructor of the program but never `main`,
//! and checks that it has one thread. It is given the far end of a control socket (a
//! `SOCK_SEQPACKET` pair) and the read end of an "alive" pipe whose only write end its parent
//! keeps: when that pipe reads end of file, the parent is gone, however it died, and the server
//! leaves. If the server is killed, the parent sees it (its pidfd, or a failed send) and starts
//! a new one at the next start.
//!
//! **A start.** The parent prepares the child's [`Boot`] as spawn does, writes it with the cwd
//! and environment into an anonymous file, and sends one message on the control socket with
//! the descriptors attached: a status socket of this child's own, the file, a pidfd of the
//! parent, the parent's standard streams, then the boot's descriptors (result pipe, hang-up
//! pipe, handles). One message keeps concurrent starts apart. The server forks; the child
//! closes the server's descriptors, takes the standard streams, cwd and environment, and runs
//! the task as a spawned child does (`boot::run_task`). The server's own standard streams are
//! `/dev/null` once it serves, so that it never holds a pipe the parent's stderr was at. The
//! server answers on the status socket with the pid and a pidfd of the child (opened before it
//! could be reaped, so the kernel keeps its exit status for it), reaps the child when it exits
//! and sends the wait status on the same socket (`children::ServerStatus`).

use super::boot::{self, Boot, BOOT_FAILED};
use super::children::{self, ChildCore};
use super::current::{self, WireIdentity};
use super::method::{StartError, StartMethod};
use super::{fork, spawn};
use crate::error::Error;
use crate::sys::fork_safe::ForkSafeLock;
use crate::sys::rights::{self, Received};
use crate::sys::{self, ExitStatus};
use crate::task::Target;
use crate::wire;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The task name that makes a spawned process a fork server (not a path, so no task has it).
pub(super) const SERVE: &str = "<multiproc fork server>";

/// What the server sends when it is ready to serve.
const READY: &[u8] = b"ready";

/// What the server sends when it has more than one thread, and so may not fork.
const THREADED: &[u8] = b"threaded";

/// Why a server that is [`THREADED`] cannot serve.
const THREADED_REASON: &str = "the fork server has more than one thread after the program's \
    constructors ran (a constructor started a thread), and a fork would copy it half-way";

/// What each request's message says; its substance is in its descriptors.
const REQUEST: &[u8] = b"fork";

/// How long a parent waits for the server to start or to answer a request.
const PATIENCE: Duration = Duration::from_secs(10);

/// What a child of the server is sent, besides its descriptors: where to run and with which
/// environment (the server's are its parent's at the time it started), which of the standard
/// streams came (the others are closed in the parent), and its boot.
#[derive(Serialize, Deserialize)]
struct Request<B> {
    cwd: OsString,
    env: Vec<(OsString, OsString)>,
    stdio: [bool; 3],
    boot: B,
}

/// A running fork server, as its parent sees it.
struct Server {
    /// The process that started it, the only one that may use it: a child forked from that
    /// process inherits this value but starts its own server.
    owner: u32,
    pid: i32,
    pidfd: OwnedFd,
    control: OwnedFd,
    /// The write end of the alive pipe, held for as long as this process lives.
    _alive: OwnedFd,
}

/// This process's fork server, once started.
static SERVER: ForkSafeLock<Option<Arc<Server>>> = ForkSafeLock::new(None);

/// Starts `target`, a named task, in a child forked by the fork server; returns its core,
/// registered among this process's children.
pub(crate) fn start_forkserver<T: Target>(
    target: T,
    name: Option<String>,
    daemon: Option<bool>,
) -> Result<Arc<ChildCore>, Error> {
    let prepared = spawn::prepare(target, name, daemon, StartMethod::Forkserver)?;
    let stdio = [0, 1, 2].map(|fd| sys::dup_number(fd).ok());
    let request = Request {
        cwd: std::env::current_dir()?.into_os_string(),
        env: spawn::environment().collect(),
        stdio: stdio.each_ref().map(Option::is_some),
        boot: &prepared.boot,
    };
    let file = spawn::boot_file(&request)?;
    let parent = sys::pidfd_open(std::process::id() as i32)?;
    let (status, status_there) = rights::seqpacket_pair()?;
    let mut fds = vec![status_there.as_fd(), file.as_fd(), parent.as_fd()];
    fds.extend(stdio.iter().flatten().map(AsFd::as_fd));
    fds.extend(prepared.given.iter().map(AsFd::as_fd));
    // Held across the start, as spawn does.
    let mut registry = children::registry();
    send(&fds)?;
    drop(fds);
    drop((status_there, file, parent, stdio));
    let (pid, pidfd) = answer(status.as_fd())?;
    Ok(prepared.register(pid, pidfd, &mut registry, Some(status)))
}

/// Sends a request to this process's server, starting one if there is none or it died.
fn send(fds: &[BorrowedFd<'_>]) -> Result<(), Error> {
    let first = server()?;
    match rights::send_with_fds(first.control.as_fd(), REQUEST, fds) {
        // It died since it was looked at: the request never reached it, so send it anew.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            // It has closed its descriptors and is on its way out.
            let deadline = Some(Instant::now() + PATIENCE);
            sys::poll(&[first.pidfd.as_fd()], libc::POLLIN, deadline)?;
            let again = server()?;
            Ok(rights::send_with_fds(again.control.as_fd(), REQUEST, fds)?)
        }
        other => Ok(other?),
    }
}

/// The server's answer on a child's status socket: its pid and a pidfd.
fn answer(status: BorrowedFd<'_>) -> Result<(i32, OwnedFd), Error> {
    let gone = || io::Error::other("the fork server ended before it started the process");
    let message = receive(status, PATIENCE)?.ok_or_else(gone)?;
    let word = <[u8; 4]>::try_from(message.bytes.as_slice())
        .map_err(|_| io::Error::other("a malformed answer from the fork server"))?;
    let pid = i32::from_ne_bytes(word);
    if pid <= 0 {
        return Err(io::Error::from_raw_os_error(-pid).into());
    }
    let pidfd = message.fds.into_iter().next().ok_or_else(gone)?;
    Ok((pid, pidfd))
}

/// The next message on `socket`, waiting at most `patience`; `None` at end of file.
fn receive(socket: BorrowedFd<'_>, patience: Duration) -> Result<Option<Received>, Error> {
    if !sys::poll(&[socket], libc::POLLIN, Some(Instant::now() + patience))?[0] {
        let late = format!("the fork server did not answer within {patience:?}");
        return Err(io::Error::new(io::ErrorKind::TimedOut, late).into());
    }
    Ok(rights::recv_with_fds(socket, 64, false)?)
}

/// This process's server: the one it started, if that still runs, else a new one.
fn server() -> Result<Arc<Server>, Error> {
    SERVER.with(|slot| {
        let me = std::process::id();
        if let Some(server) = slot.as_ref().filter(|s| s.owner == me) {
            if server.runs() {
                return Ok(server.clone());
            }
            // Killed: it is this process's child, a zombie until reaped here.
            let _ = sys::try_wait(server.pid);
        }
        let server = Arc::new(Server::start()?);
        *slot = Some(server.clone());
        Ok(server)
    })
}

impl Server {
    /// Starts a server by spawn and waits until it is ready.
    fn start() -> Result<Server, Error> {
        let (control, control_there) = rights::seqpacket_pair()?;
        let (alive_read, alive) = sys::pipe()?;
        let given = [control_there, alive_read];
        let descriptors = (given[0].as_raw_fd(), None, vec![given[1].as_raw_fd()]);
        let boot = Boot::new(WireIdentity::default(), SERVE, Vec::new(), descriptors);
        let pid = spawn::exec_boot(&boot, &given)?;
        drop(given);
        let server = Server {
            owner: std::process::id(),
            pid,
            pidfd: sys::pidfd_open(pid)?,
            control,
            _alive: alive,
        };
        match server.greeting() {
            Ok(()) => Ok(server),
            Err(error) => {
                let _ = sys::pidfd_send_signal(server.pidfd.as_fd(), libc::SIGKILL);
                let _ = sys::poll(&[server.pidfd.as_fd()], libc::POLLIN, None);
                let _ = sys::try_wait(pid);
                Err(error)
            }
        }
    }

    /// Waits for the server to say it is ready.
    fn greeting(&self) -> Result<(), Error> {
        match receive(self.control.as_fd(), PATIENCE)? {
            Some(message) if message.bytes == READY => Ok(()),
            Some(message) if message.bytes == THREADED => Err(StartError::Unavailable {
                method: StartMethod::Forkserver,
                reason: THREADED_REASON,
            }
            .into()),
            _ => Err(io::Error::other("the fork server failed to start (see its stderr)").into()),
        }
    }

    /// Whether the server still runs.
    fn runs(&self) -> bool {
        sys::poll(&[self.pidfd.as_fd()], libc::POLLIN, Some(Instant::now()))
            .is_ok_and(|ready| !ready[0])
    }
}

/// A child of the server, until it is reaped.
struct Kid {
    pid: i32,
    pidfd: OwnedFd,
    /// Where its wait status goes.
    status: OwnedFd,
}

/// The server's life, from the boot that made it a server; the exit code.
pub(super) fn serve(boot: Boot) -> i32 {
    let (control, alive) = match boot.adopt_descriptors() {
        Ok((control, None, mut handles)) if handles.len() == 1 => (control, handles.remove(0)),
        _ => {
            eprintln!("multiproc: the fork server's descriptors are missing");
            return BOOT_FAILED;
        }
    };
    if threads() != Some(1) {
        let _ = rights::send_with_fds(control.as_fd(), THREADED, &[]);
        return BOOT_FAILED;
    }
    // SAFETY: sets signal dispositions to ignore; no handler runs. Ctrl-C reaches the whole
    // process group: the server leaves when its parent does, not before.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    if rights::send_with_fds(control.as_fd(), READY, &[]).is_err() {
        return 0;
    }
    quiet_stdio();
    let mut kids: Vec<Kid> = Vec::new();
    loop {
        let mut fds = vec![control.as_fd(), alive.as_fd()];
        fds.extend(kids.iter().map(|kid| kid.pidfd.as_fd()));
        let Ok(ready) = sys::poll(&fds, libc::POLLIN, None) else {
            return BOOT_FAILED;
        };
        drop(fds);
        if ready[1] {
            // End of file: the parent is gone.
            return 0;
        }
        reap(&mut kids, &ready[2..]);
        if !ready[0] {
            continue;
        }
        let request = match rights::recv_with_fds(control.as_fd(), REQUEST.len(), false) {
            Ok(Some(request)) => request,
            Ok(None) => return 0,
            Err(_) => continue,
        };
        // SAFETY: this process has one thread (checked above; it starts none), so the child is
        // a whole copy of it. The child never returns into this loop: it runs the task and
        // leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            drop((control, alive, kids));
            forked(request.fds);
        }
        kids.extend(report(pid, request.fds));
    }
}

/// Points the server's standard streams at `/dev/null`: its children get their parent's, and a
/// pipe the parent's stderr was at when the server started must reach end of file when the
/// parent closes it. Best effort: without `/dev/null` they stay as they are.
fn quiet_stdio() {
    if let Ok(null) = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
        }
    }
}

/// How many threads this process has (`Threads:` in `/proc/self/status`).
fn threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Threads:"))?;
    line["Threads:".len()..].trim().parse().ok()
}

/// Tells the parent of a request the child's pid and pidfd (or why there is none); the child,
/// to be reaped later.
fn report(pid: i32, fds: Vec<OwnedFd>) -> Option<Kid> {
    let status = fds.into_iter().next()?;
    let pidfd = if pid < 0 {
        Err(io::Error::last_os_error())
    } else {
        sys::pidfd_open(pid)
    };
    match pidfd {
        Ok(pidfd) => {
            let _ = rights::send_with_fds(status.as_fd(), &pid.to_ne_bytes(), &[pidfd.as_fd()]);
            Some(Kid { pid, pidfd, status })
        }
        Err(error) => {
            let errno = error.raw_os_error().unwrap_or(libc::EIO);
            let _ = rights::send_with_fds(status.as_fd(), &(-errno).to_ne_bytes(), &[]);
            None
        }
    }
}

/// Reaps the children whose pidfds are `ready` and sends each its wait status.
fn reap(kids: &mut Vec<Kid>, ready: &[bool]) {
    let mut ready = ready.iter();
    kids.retain(|kid| {
        if !ready.next().copied().unwrap_or(false) {
            return true;
        }
        match sys::try_wait(kid.pid) {
            Ok(Some(status)) => {
                send_status(kid, status);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    });
}

fn send_status(kid: &Kid, status: ExitStatus) {
    let word = status.wait_status().to_ne_bytes();
    let _ = rights::send_with_fds(kid.status.as_fd(), &word, &[]);
}

/// A child of the server: boots from its request's descriptors and runs the task.
fn forked(fds: Vec<OwnedFd>) -> ! {
    // SAFETY: restores the default disposition the server changed; no handler runs.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
    let code = match boot_from(fds) {
        Ok(boot) => boot::run_task(boot),
        Err(why) => {
            eprintln!("multiproc: a child of the fork server cannot boot: {why}");
            BOOT_FAILED
        }
    };
    fork::exit_child(code)
}

/// The boot a request carries, with its descriptors renumbered to the received ones, after
/// taking the request's cwd and environment and the parent's pidfd.
fn boot_from(fds: Vec<OwnedFd>) -> Result<Boot, String> {
    let mut fds = fds.into_iter();
    // The first is the server's end of the status socket, closed here.
    let (Some(_), Some(file), Some(parent)) = (fds.next(), fds.next(), fds.next()) else {
        return Err("the request lacks its descriptors".to_owned());
    };
    let bytes = boot::read_file(file).map_err(|e| format!("the boot file: {e}"))?;
    let request: Request<Boot> = wire::decode(&bytes).map_err(|e| format!("bad boot data: {e}"))?;
    if request.boot.version != boot::VERSION {
        return Err("the boot data is of another version".to_owned());
    }
    take_stdio(request.stdio, &mut fds)?;
    std::env::set_current_dir(&request.cwd)
        .map_err(|e| format!("the working directory {:?}: {e}", request.cwd))?;
    take_environment(request.env);
    current::watch_parent(parent);
    let fds = fds.map(IntoRawFd::into_raw_fd).collect();
    request.boot.with_descriptors(fds)
}

/// Puts the parent's standard streams, the next descriptors of `fds`, in place of the
/// server's; closes those the parent has closed.
fn take_stdio(sent: [bool; 3], fds: &mut impl Iterator<Item = OwnedFd>) -> Result<(), String> {
    for (target, sent) in (0..).zip(sent) {
        let taken = match sent.then(|| fds.next()) {
            None => nix::unistd::close(target),
            Some(None) => return Err("a standard stream is missing".to_owned()),
            Some(Some(fd)) if fd.as_raw_fd() == target => {
                let fd = fd.into_raw_fd();
                nix::fcntl::fcntl(
                    fd,
                    nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
                )
                .map(drop)
            }
            Some(Some(fd)) => nix::unistd::dup2(fd.as_raw_fd(), target).map(drop),
        };
        taken.map_err(|e| format!("standard stream {target}: {e}"))?;
    }
    Ok(())
}

/// Makes `env` this process's whole environment. Called in a child of the server, which has
/// one thread, so nothing reads the environment meanwhile.
fn take_environment(env: Vec<(OsString, OsString)>) {
    let wanted: std::collections::HashSet<&OsString> = env.iter().map(|(key, _)| key).collect();
    for (key, _) in std::env::vars_os() {
        if !wanted.contains(&key) {
            std::env::remove_var(key);
        }
    }
    for (key, value) in &env {
        std::env::set_var(key, value);
    }
}
