//! The spawn start method, parent side (Python's `popen_spawn_posix`): executes this program
//! again, with a [`Boot`] that names the task, its encoded arguments and the descriptors the
//! child is given, and registers the child as the fork method does.
//!
//! The child's side is in `boot`: it runs the task before `main` would start. The arguments are
//! encoded with `sys::transfer` collecting, so that every handle among them (a shared segment, a
//! pipe end) travels as a descriptor the child inherits, never as a number in this process.

use super::boot::{self, Boot};
use super::children::{self, ChildCore};
use super::current;
use super::method::{self, StartError, StartMethod};
use crate::error::Error;
use crate::sys;
use crate::task::{registry, Target};
use crate::wire;
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
    if current::is_daemon() {
        return Err(Error::DaemonicParent);
    }
    if let Some(reason) = boot::spawn_unavailable() {
        let method = StartMethod::Spawn;
        return Err(StartError::Unavailable { method, reason }.into());
    }
    let task = target
        .task_name()
        .ok_or(StartError::ClosureNeedsFork(StartMethod::Spawn))?;
    registry::lookup(task)?;
    let (args, handles) = sys::transfer::collecting(|| target.encode_args());
    let args = args.ok_or(StartError::ClosureNeedsFork(StartMethod::Spawn))??;
    children::join_children_at_exit();
    let daemon = daemon.unwrap_or_else(current::is_daemon);
    let identity = current::next_child(name, daemon);
    let (result_read, result_write) = sys::nonblocking_pipe()?;
    let hangup = if daemon { Some(sys::pipe()?) } else { None };
    let nonce = sys::random_u64();
    let boot = Boot {
        version: boot::VERSION,
        nonce,
        identity: identity.to_wire(),
        start_method: method::chosen().map_or(
            (StartMethod::Fork.name().to_owned(), false),
            |(m, explicit)| (m.name().to_owned(), explicit),
        ),
        task: task.to_owned(),
        args,
        result: result_write.as_raw_fd(),
        hangup: hangup.as_ref().map(|(read, _)| read.as_raw_fd()),
        handles: handles.iter().map(AsRawFd::as_raw_fd).collect(),
    };
    let boot_file = boot_file(&boot)?;

    let mut inherit: Vec<BorrowedFd<'_>> = vec![boot_file.as_fd(), result_write.as_fd()];
    inherit.extend(hangup.as_ref().map(|(read, _)| read.as_fd()));
    inherit.extend(handles.iter().map(AsFd::as_fd));
    let marker = format!(
        "{}={}",
        boot::MARKER,
        boot::marker(boot_file.as_raw_fd(), nonce)
    );
    let env = std::env::vars_os()
        .filter(|(key, _)| key != boot::MARKER)
        .map(|(key, value)| {
            let mut pair = key;
            pair.push("=");
            pair.push(value);
            pair
        })
        .chain(std::iter::once(OsString::from(marker)));

    // Held across the start, as the fork method holds it across fork: a child another thread
    // forks meanwhile must not keep this child's hang-up pipe open.
    let mut registry = children::registry();
    let pid = sys::exec::exec_self(std::env::args_os(), env, &inherit)?;
    drop(inherit);
    // The child has its own copies now.
    drop((boot_file, result_write, handles));
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

/// An anonymous file holding the encoded `boot`, read from its start by the child.
fn boot_file(boot: &Boot) -> Result<OwnedFd, Error> {
    let bytes = wire::encode(boot)?;
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
