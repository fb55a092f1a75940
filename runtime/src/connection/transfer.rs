//! Passing connection ends between processes as serialised values (Python's `reduction` of a
//! `Connection`).
//!
//! A serialised end names its pipes by their identity (device and inode) and how to get them:
//! a loan of this process's `sys::sharer`, which the receiver borrows by `SCM_RIGHTS`, once; or,
//! when the value is encoded for a process started by exec, slots of the descriptors sent with it
//! (`sys::transfer`). Neither needs `pidfd_getfd` or `/proc/<pid>/fd`, which sandboxes refuse, and
//! the sender may close its end as soon as it is encoded. The receiver checks that it got the
//! same pipes, so stale or forged bytes are an error, never someone else's file.

use super::error::ConnectionError;
use crate::sys;
use crate::sys::sharer::Loan;
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
    /// The slot, when `pid` is 0; otherwise unused.
    fd: RawFd,
    dev: u64,
    ino: u64,
    /// Where to borrow it, when it is not in a slot.
    loan: Option<Loan>,
}

impl WireFd {
    fn of(fd: BorrowedFd<'_>) -> Result<Self, ConnectionError> {
        let stat = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(std::io::Error::from)?;
        Ok(WireFd {
            fd: fd.as_raw_fd(),
            dev: stat.st_dev,
            ino: stat.st_ino,
            loan: None,
        })
    }

    /// A descriptor of this process for the same file. The bytes may be forged, so the slot is
    /// checked, and the file's identity after.
    fn open(&self, pid: i32) -> Result<OwnedFd, ConnectionError> {
        let fd = match (pid, &self.loan) {
            (0, _) => {
                let slot = u32::try_from(self.fd).map_err(|_| {
                    ConnectionError::Transfer(format!("{} is not a descriptor slot", self.fd))
                })?;
                sys::transfer::take(slot)?
            }
            (_, Some(loan)) => sys::sharer::borrow(loan)
                .map_err(|e| ConnectionError::Transfer(format!("a connection end: {e}")))?,
            (_, None) => {
                return Err(ConnectionError::Transfer(
                    "a connection end names neither a slot nor a loan".to_owned(),
                ))
            }
        };
        let now = WireFd::of(fd.as_fd())?;
        if (now.dev, now.ino) == (self.dev, self.ino) {
            Ok(fd)
        } else {
            Err(ConnectionError::Transfer(format!(
                "the descriptor process {pid} sent is no longer the pipe it named"
            )))
        }
    }
}

impl EndRefs<'_> {
    /// The ends as they travel: slots of the descriptors that go with a value encoded for a
    /// process started by exec (`pid` 0), or loans of this process's descriptors.
    pub(super) fn to_wire(&self) -> Result<WireEnds, ConnectionError> {
        let mut pid = std::process::id() as i32;
        let mut wire = |fd: BorrowedFd<'_>| {
            let mut wire = WireFd::of(fd)?;
            match sys::transfer::offer(fd) {
                Some(slot) => {
                    wire.fd = slot? as RawFd;
                    pid = 0;
                }
                None => wire.loan = Some(sys::sharer::lend(fd)?),
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
