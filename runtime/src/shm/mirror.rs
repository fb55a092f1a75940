//! A mirrored segment: a memfd mapped twice, back to back, so that the byte after its last is
//! its first again. A ring buffer kept in it hands out any span of up to its size as one slice,
//! even a span that wraps around the end, so its reader can decode a message where it lies.

use super::ShmError;
use crate::sys::mem::Prefault;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

/// `len` bytes of shared memory seen at `ptr .. ptr + len` and again at `ptr + len .. ptr + 2 *
/// len`. A forked child inherits both views; another process maps them again from `fd`.
pub(crate) struct Mirror {
    ptr: NonNull<u8>,
    len: usize,
    fd: OwnedFd,
}

// SAFETY: the views are shared memory whose users coordinate through atomics kept elsewhere (the
// ring's header); the pointer stays valid until `Drop`, which runs once.
unsafe impl Send for Mirror {}
// SAFETY: as for Send: `&Mirror` only hands out the base pointer.
unsafe impl Sync for Mirror {}

impl Mirror {
    /// A new zero-filled mirrored segment of `len` bytes, a whole number of pages.
    pub(crate) fn create(len: usize) -> Result<Mirror, ShmError> {
        if len == 0 || !len.is_multiple_of(crate::sys::mem::page_size()) {
            return Err(ShmError::BadSize(len));
        }
        Self::map(super::segment::memfd(c"multiproc-ring", len)?, len)
    }

    /// The mirrored segment of another process, whose memfd `fd` is: refused unless it is
    /// exactly `len` bytes, a whole number of pages (a shorter file would fault past its end).
    pub(crate) fn open(fd: OwnedFd, len: usize) -> Result<Mirror, ShmError> {
        let size = std::fs::File::from(fd.try_clone()?).metadata()?.len();
        if len == 0 || !len.is_multiple_of(crate::sys::mem::page_size()) || size != len as u64 {
            return Err(ShmError::BadSize(len));
        }
        Self::map(fd, len)
    }

    /// Maps the `len` bytes of `fd` twice, back to back.
    fn map(fd: OwnedFd, len: usize) -> Result<Mirror, ShmError> {
        let ptr = reserve(2 * len)?;
        let mirror = Mirror { ptr, len, fd };
        for view in [0, len] {
            // SAFETY: `ptr + view .. + len` lies inside the reservation that `mirror` owns and
            // that nothing refers to yet; MAP_FIXED replaces that part of it with a view of the
            // memfd, which the callers made or checked to be `len` bytes long.
            let mapped = unsafe {
                libc::mmap(
                    mirror.ptr.as_ptr().add(view).cast(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_FIXED,
                    mirror.fd.as_raw_fd(),
                    0,
                )
            };
            if mapped == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error().into());
            }
        }
        Ok(mirror)
    }

    /// The memfd, to be sent to a process that maps it again with [`open`](Mirror::open).
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The first byte of the first view.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The length of one view in bytes (the memory's size; the views span twice as much).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// For `by`, prefaults every page of the first view into this process now, for writing, in
    /// one system call: the pages a writer would otherwise fault in one at a time (only a hint,
    /// as [`prefault_pages`](crate::sys::mem::prefault_pages)).
    pub(crate) fn prefault_first_view(&self, by: Prefault) {
        crate::sys::mem::prefault_pages(by, self.ptr.as_ptr(), self.len);
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        // SAFETY: the range is the reservation made in `map` (both views or what is left of
        // the reservation); this is its only owner, so no reference into it survives.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), 2 * self.len) };
    }
}

/// Reserves `len` bytes of address space, inaccessible, for views to be mapped over.
fn reserve(len: usize) -> Result<NonNull<u8>, ShmError> {
    // SAFETY: a fresh private mapping at an address the kernel chooses (null hint), with no
    // access; nothing refers to it.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error().into());
    }
    NonNull::new(ptr.cast::<u8>()).ok_or(ShmError::BadSize(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_view_shows_the_first() {
        let len = crate::sys::mem::page_size() * 2;
        let mirror = Mirror::create(len).unwrap();
        // SAFETY: both offsets lie inside the two views (2 * len bytes).
        unsafe {
            mirror.as_ptr().add(3).write(7);
            assert_eq!(mirror.as_ptr().add(len + 3).read(), 7);
            mirror.as_ptr().add(2 * len - 1).write(9);
            assert_eq!(mirror.as_ptr().add(len - 1).read(), 9);
        }
    }

    #[test]
    fn sizes_that_are_not_whole_pages_are_refused() {
        assert!(matches!(Mirror::create(0), Err(ShmError::BadSize(0))));
        assert!(matches!(Mirror::create(100), Err(ShmError::BadSize(100))));
    }

    #[test]
    fn a_mirror_opened_from_its_memfd_shows_the_same_bytes() {
        let len = crate::sys::mem::page_size();
        let mirror = Mirror::create(len).unwrap();
        let again = Mirror::open(mirror.fd().try_clone_to_owned().unwrap(), len).unwrap();
        // SAFETY: both offsets lie inside the two views of each mirror (2 * len bytes).
        unsafe {
            mirror.as_ptr().add(5).write(11);
            assert_eq!(again.as_ptr().add(len + 5).read(), 11);
        }
        let fd = || mirror.fd().try_clone_to_owned().unwrap();
        assert!(matches!(
            Mirror::open(fd(), 2 * len),
            Err(ShmError::BadSize(_))
        ));
    }
}
