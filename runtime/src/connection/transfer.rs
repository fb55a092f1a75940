//! Passing connection ends between processes as serialised values (Python's `reduction` of a
//! `Connection`).
//!
//! A serialised end names its pipes by the sending process, descriptor number and identity
//! (device and inode). Deserialising in the same process duplicates the descriptors; in another
//! process it takes a copy of them from the sender with `pidfd_getfd`, and checks that they are
//! the same pipes, so a stale or reused number is an error, never someone else's file. An end
//! encoded for a process started by exec names slots of the descriptors sent with it instead
//! (`sys::transfer`), so that start needs neither `pidfd_getfd` nor the sender alive.

use super::error::ConnectionError;
use crate::sys;
use serde::{Deserialize, Serialize};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// The descriptors of a connection end, borrowed for serialisation.
pub(super) struct EndRefs<'a> {
    pub(super) read: Option<BorrowedFd<'a>>,
    pub(super) write: Option<BorrowedFd<'a>>,
}

/// A connection end as it travels: who holds the pipes, and which ones they are.
#[derive(Serialize, Deserialize)]
pub(super) struct WireEnds {
    pid: i32,
    read: Option<WireFd>,
    write: Option<WireFd>,
}

/// One descriptor, with the identity of the file it refers to.
#[derive(Serialize, Deserialize)]
struct WireFd {
    fd: RawFd,
    dev: u64,
    ino: u64,
}

impl WireFd {
    fn of(fd: BorrowedFd<'_>) -> Result<Self, ConnectionError> {
        let stat = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(std::io::Error::from)?;
        Ok(WireFd {
            fd: fd.as_raw_fd(),
            dev: stat.st_dev,
            ino: stat.st_ino,
        })
    }

    /// A descriptor of this process for the same file, from the process `pid` that sent it.
    /// The bytes may be forged, so the number is checked before any use: a negative one is an
    /// error here, and one that is not open is an error of the duplication.
    fn open(&self, pid: i32) -> Result<OwnedFd, ConnectionError> {
        if self.fd < 0 {
            return Err(ConnectionError::Transfer(format!(
                "{} is not a descriptor number",
                self.fd
            )));
        }
        let fd = if pid == 0 {
            // A slot of the descriptors sent with the value (`sys::transfer`).
            sys::transfer::take(self.fd as u32)?
        } else if pid == std::process::id() as i32 {
            // Whatever the number is now, the identity check below rejects it if it is not the
            // pipe that was sent.
            sys::dup_number(self.fd)?
        } else {
            take_from(pid, self.fd)?
        };
        let now = WireFd::of(fd.as_fd())?;
        if (now.dev, now.ino) == (self.dev, self.ino) {
            Ok(fd)
        } else {
            Err(ConnectionError::Transfer(format!(
                "descriptor {} of process {pid} is no longer the pipe that was sent",
                self.fd
            )))
        }
    }
}

impl EndRefs<'_> {
    /// The ends as they travel: this process's descriptors, or, when the value is encoded for a
    /// process started by exec, slots of the descriptors that go with it (`pid` 0).
    pub(super) fn to_wire(&self) -> Result<WireEnds, ConnectionError> {
        let mut pid = std::process::id() as i32;
        let mut wire = |fd: BorrowedFd<'_>| {
            let mut wire = WireFd::of(fd)?;
            if let Some(slot) = sys::transfer::offer(fd) {
                wire.fd = slot? as RawFd;
                pid = 0;
            }
            Ok::<_, ConnectionError>(wire)
        };
        let read = self.read.map(&mut wire).transpose()?;
        let write = self.write.map(&mut wire).transpose()?;
        Ok(WireEnds { pid, read, write })
    }
}

impl WireEnds {
    /// Descriptors of this process for the ends that were sent.
    pub(super) fn open(&self) -> Result<(Option<OwnedFd>, Option<OwnedFd>), ConnectionError> {
        let read = self.read.as_ref().map(|fd| fd.open(self.pid)).transpose()?;
        let write = self
            .write
            .as_ref()
            .map(|fd| fd.open(self.pid))
            .transpose()?;
        Ok((read, write))
    }
}

/// A copy of descriptor `fd` of process `pid` (which must still be running).
fn take_from(pid: i32, fd: RawFd) -> Result<OwnedFd, ConnectionError> {
    let gone = |e: std::io::Error| {
        ConnectionError::Transfer(format!(
            "cannot take descriptor {fd} of process {pid} (the sender has exited or closed \
             it, or is another user's): {e}"
        ))
    };
    let pidfd = sys::pidfd_open(pid).map_err(gone)?;
    sys::pidfd_getfd(pidfd.as_fd(), fd).map_err(gone)
}
