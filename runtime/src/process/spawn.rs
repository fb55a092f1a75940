//! The spawn start method, parent side (Python's `popen_spawn_posix`): executes this program
//! again, with a [`Boot`] that names the task, its encoded arguments and the descriptors the
//! child is given, and registers the child as the fork method does.
//!
//! The child's side is in `boot`: it runs the task before `main` would start. The arguments are
//! encoded with `sys::transfer` collecting, so that every handle among them (a shared segment, a
//! pipe end) travels as a descriptor the child inherits, never as a number in this process.
//! [`prepare`] and [`exec_boot`] serve the fork server too, which is started by spawn and is
//! sent each child's boot.

use super::boot::{self, Boot};
use super::children::{self, ChildCore, Children};
use super::current;
use super::method::{StartError, StartMethod};
use crate::error::Error;
use crate::sys;
use crate::task::{registry, Target};
use crate::wire;
use serde::Serialize;
use std::ffi::OsString;
use std::io::{Seek, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

/// Starts `target`, a named task, in a new execution of this program; returns its core,
/// registered among this process's children.
pub(crate) fn start_spawn<T: Target>(
    target: T,
    name: Option<String>,
    daemon: Option<bool>,
) -> Result<Arc<ChildCore>, Error> {
    let prepared = prepare(target, name, daemon, StartMethod::Spawn)?;
    // Held across the start, as the fork method holds it across fork: a child another thread
    // forks meanwhile must not keep this child's hang-up pipe open.
    let mut registry = children::registry();
    let pid = exec_boot(&prepared.boot, &prepared.given)?;
    let pidfd = sys::pidfd_open(pid)?;
    Ok(prepared.register(pid, pidfd, &mut registry, None))
}

/// A child about to start from a [`Boot`] (by spawn or by the fork server), and what its parent
/// keeps of it.
pub(super) struct Prepared {
    pub(super) boot: Boot,
    name: String,
    daemon: bool,
    result_read: OwnedFd,
    /// What the child is given, in [`Boot::descriptors`] order: the result pipe's write end, the
    /// hang-up pipe's read end (a daemon's), the handles among the arguments.
    pub(super) given: Vec<OwnedFd>,
    /// The parent's end of a daemon's hang-up pipe.
    hangup_write: Option<OwnedFd>,
}

/// Checks that `target` can start by `method`, a method that runs it by name, encodes its
/// arguments and makes its pipes and [`Boot`].
pub(super) fn prepare<T: Target>(
    target: T,
    name: Option<String>,
    daemon: Option<bool>,
    method: StartMethod,
) -> Result<Prepared, Error> {
    if current::is_daemon() {
        return Err(Error::DaemonicParent);
    }
    if let Some(reason) = boot::spawn_unavailable() {
        return Err(StartError::Unavailable { method, reason }.into());
    }
    let task = target
        .task_name()
        .ok_or(StartError::ClosureNeedsFork(method))?;
    registry::lookup(task)?;
    let (args, handles) = sys::transfer::collecting(|| target.encode_args());
    let args = args.ok_or(StartError::ClosureNeedsFork(method))??;
    children::join_children_at_exit();
    let daemon = daemon.unwrap_or_else(current::is_daemon);
    let identity = current::next_child(name, daemon);
    let (result_read, result_write) = sys::nonblocking_pipe()?;
    let (hangup_read, hangup_write) = if daemon {
        let (read, write) = sys::pipe()?;
        (Some(read), Some(write))
    } else {
        (None, None)
    };
    let mut given = vec![result_write];
    given.extend(hangup_read);
    given.extend(handles);
    let raw = |fd: &OwnedFd| fd.as_raw_fd();
    let descriptors = (
        raw(&given[0]),
        daemon.then(|| raw(&given[1])),
        given[1 + usize::from(daemon)..].iter().map(raw).collect(),
    );
    Ok(Prepared {
        boot: Boot::new(identity.to_wire(), task, args, descriptors),
        name: identity.name().to_owned(),
        daemon,
        result_read,
        given,
        hangup_write,
    })
}

impl Prepared {
    /// Registers the child, started as `pid`, among this process's children, and closes what
    /// it was given (it has its own copies). `server_status`: the fork server's status socket
    /// for a child that the server forked.
    pub(super) fn register(
        self,
        pid: i32,
        pidfd: OwnedFd,
        registry: &mut Children,
        server_status: Option<OwnedFd>,
    ) -> Arc<ChildCore> {
        let mut core = ChildCore::new(pid, pidfd, self.name, self.daemon, self.result_read);
        if let Some(status) = server_status {
            core = core.reaped_by_server(status);
        }
        let core = Arc::new(core);
        registry.add(core.clone(), self.hangup_write);
        core
    }
}

/// Executes this program again to run `boot`, which names descriptors among `given`: they are
/// inherited under their numbers. Returns the child's pid.
pub(super) fn exec_boot(boot: &Boot, given: &[OwnedFd]) -> Result<i32, Error> {
    let boot_file = boot_file(boot)?;
    let mut inherit: Vec<BorrowedFd<'_>> = vec![boot_file.as_fd()];
    inherit.extend(given.iter().map(AsFd::as_fd));
    let marker = format!(
        "{}={}",
        boot::MARKER,
        boot::marker(boot_file.as_raw_fd(), boot.nonce)
    );
    let env = environment()
        .map(|(key, value)| {
            let mut pair = key;
            pair.push("=");
            pair.push(value);
            pair
        })
        .chain(std::iter::once(OsString::from(marker)));
    Ok(sys::exec::exec_self(std::env::args_os(), env, &inherit)?)
}

/// This process's environment, for a child: without a marker of its own start.
pub(super) fn environment() -> impl Iterator<Item = (OsString, OsString)> {
    std::env::vars_os().filter(|(key, _)| key != boot::MARKER)
}

/// An anonymous file holding the encoded `value` (a boot), read from its start by the child.
pub(super) fn boot_file<T: Serialize>(value: &T) -> Result<OwnedFd, Error> {
    let bytes = wire::encode(value)?;
    let fd = nix::sys::memfd::memfd_create(
        c"multiproc-boot",
        nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(&bytes)?;
    file.rewind()?;
    Ok(file.into())
}
