//! The fork start method (Python's `popen_fork`): the path a child process takes from `fork` to
//! `_exit`.
//!
//! The child inherits the parent's memory, runs its target there, sends the encoded result back
//! through a pipe, and leaves with `_exit`, never returning into the parent's stack. The crate's
//! own code in the child takes no lock another thread may have held: the locks it needs (the
//! children registry, stdout, stderr) are held by the forking thread across `fork`, so the child
//! inherits them consistent and owned by itself; its identity is published through an atomic
//! pointer; glibc's own fork handlers keep `malloc` usable. What it cannot control is the user's
//! target: a task or closure that takes a lock another thread of the parent held at the fork (a
//! `Mutex` of the user's, a logger's, a thread pool's) waits for ever in the child. That is a
//! deadlock, not memory unsafety, and it is the hazard Python 3.12 warns of.

use crate::error::{Error, TaskFailure};
use crate::process::children::{self, ChildCore};
use crate::process::current::{self, Identity};
use crate::sys;
use crate::task::{catch_panic, registry, Target};
use crate::wire;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The pipes between a parent and one child.
struct Pipes {
    result_read: OwnedFd,
    result_write: OwnedFd,
    /// For a daemonic child: its hang-up pipe, `(read end for the child, write end kept by the
    /// parent)`.
    hangup: Option<(OwnedFd, OwnedFd)>,
}

impl Pipes {
    fn new(daemon: bool) -> io::Result<Self> {
        let (result_read, result_write) = sys::nonblocking_pipe()?;
        let hangup = if daemon { Some(sys::pipe()?) } else { None };
        Ok(Pipes {
            result_read,
            result_write,
            hangup,
        })
    }
}

/// Warns once per process, on stderr, when a fork that was not chosen on purpose finds threads
/// of the user's besides the calling one (Python 3.12's `DeprecationWarning`): the child gets
/// only the calling thread, and waits for ever for a lock another one held.
pub(super) fn warn_if_threaded() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if WARNED.load(Ordering::Relaxed) {
        return;
    }
    let Some(threads) = sys::threads::others().filter(|&n| n > 1) else {
        return;
    };
    if !WARNED.swap(true, Ordering::Relaxed) {
        eprintln!(
            "multiproc: warning: this process has {threads} threads, and a forked child gets only \
             the one that forks: if it needs a lock another thread held, it waits for ever. Make \
             the body a #[process_task] started with task!(..): tasks start from the clean fork \
             server by default. Or choose fork on purpose (set_start_method(StartMethod::Fork)) \
             to silence this."
        );
    }
}

/// Starts `target` in a forked child; returns its core, registered among this process's children.
pub(crate) fn start_fork<T: Target>(
    target: T,
    name: Option<String>,
    daemon: Option<bool>,
) -> Result<Arc<ChildCore>, Error> {
    if current::is_daemon() {
        return Err(Error::DaemonicParent);
    }
    // Builds the task table before the fork, as a pool does: a child that starts a task later
    // must not find it half-built by another thread, for ever.
    match target.task_name() {
        Some(task) => drop(registry::lookup(task)?),
        None => drop(registry::lookup("")),
    }
    children::join_children_at_exit();
    // Read before the fork, so that the child never reads the environment, whose lock another
    // thread of this process may hold at the fork.
    sys::mem::read_switch();
    crate::task::panic::prepare_fork();
    let daemon = daemon.unwrap_or_else(current::is_daemon);
    let identity = current::next_child(name, daemon);
    let Pipes {
        result_read,
        result_write,
        hangup,
    } = Pipes::new(daemon)?;

    let mut registry = children::registry();
    let mut stdout = io::stdout().lock();
    let stderr = io::stderr().lock();
    // As Python does: output buffered before the fork must not be written twice, by both.
    let _ = stdout.flush();
    // SAFETY: fork has no memory-safety preconditions of its own: the child gets a copy of this
    // address space with one thread, this one. The child side only runs `child_main` and leaves
    // with `_exit`, never returning into frames whose other threads are gone; the crate's code
    // there takes no lock another thread could hold (module documentation). The user's target
    // may take such a lock and then wait for ever: a deadlock, which is not undefined behaviour.
    // The parent side just continues.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let (hangup_read, hangup_write) = hangup.unzip();
        drop((result_read, hangup_write));
        let for_parent = [
            Some(result_write.as_raw_fd()),
            hangup_read.as_ref().map(|fd| fd.as_raw_fd()),
        ];
        registry.reset_in_child(for_parent);
        drop((registry, stdout, stderr));
        child_main(target, identity, result_write, hangup_read);
    }
    drop((stdout, stderr, result_write));
    if pid < 0 {
        return Err(io::Error::last_os_error().into());
    }
    let (hangup_read, hangup_write) = hangup.unzip();
    drop(hangup_read);
    let pidfd = sys::pidfd_open(pid)?;
    let core = Arc::new(ChildCore::new(
        pid,
        pidfd,
        identity.name().to_owned(),
        daemon,
        result_read,
    ));
    registry.add(core.clone(), hangup_write);
    Ok(core)
}

/// The child's side: take the identity, arm the hang-up signal, run the target, send the result.
fn child_main<T: Target>(
    target: T,
    identity: Box<Identity>,
    result: OwnedFd,
    hangup: Option<OwnedFd>,
) -> ! {
    current::enter_child(identity);
    if let Some(hangup) = &hangup {
        die_with_parent(hangup);
    }
    let outcome = catch_panic(|| target.invoke());
    let code = if outcome.is_ok() { 0 } else { 1 };
    let mut small = [0u8; 512];
    if let Some(frame) = wire::encode_frame_into(&outcome, &mut small) {
        send_result(&result, frame);
        exit_child(code)
    }
    match wire::encode_frame(&outcome) {
        Ok(frame) => {
            send_result(&result, &frame);
            exit_child(code)
        }
        Err(error) => {
            let failure: Result<T::Output, _> = Err(TaskFailure::Encode(error.detail()));
            send_result(&result, &wire::encode_frame(&failure).unwrap_or_default());
            exit_child(1)
        }
    }
}

/// Writes the result frame. The parent may be gone or have discarded the result: then the
/// exit code still tells how the task ended.
pub(super) fn send_result(result: &OwnedFd, frame: &[u8]) {
    /// The default pipe buffer; a larger result asks for a larger one.
    const DEFAULT_PIPE: usize = 64 << 10;
    if frame.len() > DEFAULT_PIPE {
        sys::enlarge_pipe(result.as_fd());
    }
    let _ = sys::write_all(result.as_fd(), frame);
}

/// Arms the kernel to kill this (daemonic) process when its parent's end of the hang-up pipe
/// closes, which happens when the parent dies, however it dies.
pub(super) fn die_with_parent(hangup: &OwnedFd) {
    let armed = sys::signal_on_hangup(hangup.as_fd(), libc::SIGKILL);
    // The parent may have died before the signal was armed: then the pipe has hung up already.
    let parent_gone = sys::poll(
        &[hangup.as_fd()],
        libc::POLLIN,
        Some(std::time::Instant::now()),
    )
    .map_or(true, |ready| ready[0]);
    if armed.is_err() || parent_gone {
        // SAFETY: _exit ends the process at once; it is async-signal-safe.
        unsafe { libc::_exit(1) };
    }
}

/// Leaves a child process: joins its own children (Python's `_exit_function`), flushes the
/// standard streams, and `_exit`s without running the parent's exit handlers or destructors.
pub(crate) fn exit_child(code: i32) -> ! {
    children::finish_children();
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    // SAFETY: _exit ends the process at once, without unwinding into the parent's stack frames
    // that this forked process inherited.
    unsafe { libc::_exit(code) }
}
