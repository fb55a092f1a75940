//! A shared segment: a memfd mapped `MAP_SHARED`, which a forked child inherits and any other
//! process of the same user can map again from a descriptor it is sent or lent.
//!
//! A segment is reference-counted ([`Arc`]) within a process and unmapped when the last handle
//! drops. Its serialised form, [`SegmentRef`], names the memfd's inode and a slot of the
//! descriptors sent to a spawned child, or a standing loan of the serialising process
//! (`sys::sharer`, revoked when the segment is dropped there); the decoding side reuses its own
//! mapping of that inode if it has one, so decoding many handles into one segment costs one
//! mapping and no borrowing, and checks the inode of what it borrows.

use super::ShmError;
use crate::sys::sharer::{self, Loan};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::{Arc, Weak};

/// A mapped memfd (Python's `multiprocessing.heap.Arena`).
pub(super) struct Segment {
    ptr: NonNull<u8>,
    len: usize,
    ino: u64,
    fd: OwnedFd,
}

// SAFETY: the mapping is shared memory that every user accesses through atomics or under the
// primitives' locks; the pointer stays valid until `Drop`, which runs once, when no handle is left.
unsafe impl Send for Segment {}
// SAFETY: as for Send: `&Segment` only hands out the base pointer and length.
unsafe impl Sync for Segment {}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("len", &self.len)
            .field("ino", &self.ino)
            .finish()
    }
}

impl Segment {
    /// A new zero-filled segment of `len` bytes.
    pub(super) fn create(len: usize) -> Result<Arc<Segment>, ShmError> {
        if len == 0 {
            return Err(ShmError::BadSize(0));
        }
        let segment = Arc::new(Segment::map(memfd(c"multiproc", len)?, len)?);
        remember(&segment);
        Ok(segment)
    }

    /// Maps `len` bytes of the shared file `fd`.
    fn map(fd: OwnedFd, len: usize) -> Result<Segment, ShmError> {
        let ino = File::from(fd.try_clone()?).metadata().map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.ino()
        })?;
        let ptr = map_shared(&fd, len)?;
        Ok(Segment { ptr, len, ino, fd })
    }

    /// The mapping's first byte.
    #[inline]
    pub(super) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The mapping's length in bytes.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The reference another process maps again: when the value is encoded for a process
    /// started by exec, a slot of the descriptors that go with it (`pid` 0, see
    /// `sys::transfer`); otherwise a standing loan of this process's descriptor
    /// (`sys::sharer`), good for as long as this process keeps the segment.
    pub(super) fn to_ref(&self) -> Result<SegmentRef, ShmError> {
        let (pid, fd, loan) = match crate::sys::transfer::offer(self.fd.as_fd()) {
            Some(slot) => (0, slot? as i32, None),
            None => {
                let loan = sharer::lend_standing(self.ino, self.fd.as_fd())?;
                (std::process::id(), self.fd.as_raw_fd(), Some(loan))
            }
        };
        Ok(SegmentRef {
            pid,
            fd,
            ino: self.ino,
            len: self.len as u64,
            loan,
        })
    }

    /// This process's mapping of the segment `r` names: an existing one, or a new one.
    pub(super) fn attach(r: &SegmentRef) -> Result<Arc<Segment>, ShmError> {
        match lookup(r.ino) {
            Some(segment) => Ok(segment),
            None => Self::open(r),
        }
    }

    /// Maps the segment `r` names anew: through the descriptor sent in its slot, or borrowed
    /// from the sender's loan.
    fn open(r: &SegmentRef) -> Result<Arc<Segment>, ShmError> {
        use std::os::unix::fs::MetadataExt;
        let lost = || ShmError::Unreachable {
            pid: r.pid,
            fd: r.fd,
        };
        let fd = match (r.pid, &r.loan) {
            (0, _) => {
                let slot = u32::try_from(r.fd).map_err(|_| lost())?;
                crate::sys::transfer::take(slot).map_err(|_| lost())?
            }
            (_, Some(loan)) => sharer::borrow(loan).map_err(|_| lost())?,
            (_, None) => return Err(lost()),
        };
        let file = File::from(fd);
        let meta = file.metadata()?;
        // A recycled descriptor number names another file: refuse it rather than map it.
        if meta.ino() != r.ino || meta.len() < r.len {
            return Err(lost());
        }
        let len = usize::try_from(r.len).map_err(|_| lost())?;
        let segment = Arc::new(Segment::map(OwnedFd::from(file), len)?);
        remember(&segment);
        Ok(segment)
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        forget(self.ino);
        sharer::revoke_standing(self.ino);
        // SAFETY: `ptr`/`len` are the mapping made in `map`; this is the last handle to it, so
        // no reference into it survives.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A new memfd of `len` zero bytes, closed on exec.
pub(super) fn memfd(name: &std::ffi::CStr, len: usize) -> Result<OwnedFd, ShmError> {
    let fd = nix::sys::memfd::memfd_create(name, nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
        .map_err(std::io::Error::from)?;
    let file = File::from(fd);
    file.set_len(len as u64)?;
    Ok(OwnedFd::from(file))
}

/// Maps `len` bytes of the shared file `fd`, readable and writable, at an address the kernel
/// chooses.
pub(super) fn map_shared(fd: &impl AsRawFd, len: usize) -> Result<NonNull<u8>, ShmError> {
    // SAFETY: a fresh shared mapping chosen by the kernel (null hint), backed by `fd`, which the
    // callers made or found at least `len` bytes long; nothing else refers to that range yet.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error().into());
    }
    NonNull::new(ptr.cast::<u8>()).ok_or(ShmError::BadSize(len))
}

/// What names a segment across processes: the memfd's inode, which identifies it for as long as
/// it exists, and how to get a descriptor for it (a slot, or a loan of the process that sent it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SegmentRef {
    /// The process that serialised the reference (it must still run when the reference is
    /// decoded, unless the decoding process has the segment mapped already); 0 when `fd` is a
    /// slot of the descriptors sent with the value.
    pub pid: u32,
    /// The descriptor of the segment in that process.
    pub fd: i32,
    /// The memfd's inode.
    pub ino: u64,
    /// The segment's length in bytes.
    pub len: u64,
    /// Where to borrow the descriptor, when it is not in a slot.
    pub loan: Option<Loan>,
}

/// The segments this process has mapped, by inode, so that decoding reuses a mapping.
type Table = HashMap<u64, Weak<Segment>>;

static TABLE: crate::sys::fork_safe::ForkSafeLock<Option<Table>> =
    crate::sys::fork_safe::ForkSafeLock::new(None);

fn lookup(ino: u64) -> Option<Arc<Segment>> {
    TABLE.with(|table| table.as_ref()?.get(&ino)?.upgrade())
}

fn remember(segment: &Arc<Segment>) {
    TABLE.with(|table| {
        table
            .get_or_insert_with(HashMap::new)
            .insert(segment.ino, Arc::downgrade(segment))
    });
}

fn forget(ino: u64) {
    TABLE.with(|table| {
        if let Some(table) = table {
            if table.get(&ino).is_some_and(|w| w.strong_count() == 0) {
                table.remove(&ino);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_maps_again_through_proc() {
        let segment = Segment::create(4096).unwrap();
        // SAFETY: the first byte of a live mapping of 4096 bytes.
        unsafe { segment.as_ptr().write(42) };
        let again = Segment::open(&segment.to_ref().unwrap()).unwrap();
        assert_ne!(again.as_ptr(), segment.as_ptr(), "a second mapping");
        // SAFETY: as above, through the second mapping of the same memfd.
        assert_eq!(unsafe { again.as_ptr().read() }, 42);
    }

    #[test]
    fn a_reference_to_another_file_is_refused() {
        let segment = Segment::create(64).unwrap();
        let other = Segment::create(64).unwrap();
        let wrong = SegmentRef {
            ino: other.ino,
            ..segment.to_ref().unwrap()
        };
        assert!(matches!(
            Segment::open(&wrong),
            Err(ShmError::Unreachable { .. })
        ));
        let gone = SegmentRef {
            loan: None,
            ..segment.to_ref().unwrap()
        };
        assert!(matches!(
            Segment::open(&gone),
            Err(ShmError::Unreachable { .. })
        ));
    }
}
