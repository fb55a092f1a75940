//! `SharedMemory`: a named block of bytes in `/dev/shm` (Python's
//! `multiprocessing.shared_memory.SharedMemory`).

use super::segment::map_shared;
use super::{tracker, ShmError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering};

/// The longest name accepted (NAME_MAX, less the leading slash).
const MAX_NAME: usize = 254;

/// A named shared memory block (Python's `multiprocessing.shared_memory.SharedMemory`).
///
/// [`create`](SharedMemory::create) makes one (named by the caller or at random),
/// [`attach`](SharedMemory::attach) maps an existing one by name. Only the creator should
/// [`unlink`](SharedMemory::unlink) it; an attacher that exits never removes it. If the creator
/// ends without unlinking, however it ends (SIGKILL included), a cleanup process unlinks the
/// name within moments. Serialises as its name: decoding attaches.
///
/// The bytes are shared with every other handle of the block, in this process and in others,
/// so this handle never lends them out as a safe slice: [`read_at`](SharedMemory::read_at) and
/// [`write_at`](SharedMemory::write_at) copy them in and out (each byte atomically, so that
/// threads and processes copying at once race only on the values, as Python's `buf` does), and
/// [`as_slice`](SharedMemory::as_slice) / [`as_mut_slice`](SharedMemory::as_mut_slice) view
/// them in place for whoever can promise that nobody writes them meanwhile (memmap2's stance on
/// a file mapping).
///
/// ```
/// use multiproc::shm::SharedMemory;
/// # fn main() -> multiproc::Result<()> {
/// let shm = SharedMemory::create(None, 16)?;
/// shm.write_at(0, b"hi")?;
/// let other = SharedMemory::attach(shm.name())?;
/// let mut seen = [0u8; 2];
/// other.read_at(0, &mut seen)?;
/// assert_eq!(&seen, b"hi");
/// shm.unlink()?;
/// # Ok(())
/// # }
/// ```
pub struct SharedMemory {
    name: String,
    ptr: NonNull<u8>,
    size: usize,
}

// SAFETY: the handle owns its mapping (unmapped once, on drop, by whichever thread drops it);
// the pointer is not tied to the thread that mapped it.
unsafe impl Send for SharedMemory {}
// SAFETY: the safe methods of `&SharedMemory` touch the bytes only through per-byte atomics
// (`read_at`, `write_at`), which any number of threads may run at once; the slices are behind
// `unsafe fn`s whose callers promise the absence of concurrent writers.
unsafe impl Sync for SharedMemory {}

impl SharedMemory {
    /// Creates a new block of `size` bytes, zero-filled, named `name` or a random `psm_` name
    /// (Python's `SharedMemory(name, create=True, size=size)`). A name in use is
    /// [`ShmError::Exists`].
    pub fn create(name: Option<&str>, size: usize) -> Result<SharedMemory, ShmError> {
        if size == 0 || size > isize::MAX as usize {
            return Err(ShmError::BadSize(size));
        }
        let name = match name {
            Some(name) => checked_name(name)?,
            None => random_name()?,
        };
        let fd = open(&name, libc::O_CREAT | libc::O_EXCL | libc::O_RDWR)?;
        let file = std::fs::File::from(fd);
        // Registered before anything else can fail, so that a crash leaves nothing behind.
        let mapped = tracker::register(&name)
            .and_then(|()| file.set_len(size as u64))
            .map_err(ShmError::from)
            .and_then(|()| map_shared(&file, size));
        match mapped {
            Ok(ptr) => Ok(SharedMemory { name, ptr, size }),
            Err(e) => {
                let _ = unlink_name(&name);
                Err(e)
            }
        }
    }

    /// Maps the existing block `name` (Python's `SharedMemory(name)`); an unknown name is
    /// [`ShmError::NotFound`].
    pub fn attach(name: &str) -> Result<SharedMemory, ShmError> {
        let name = checked_name(name)?;
        let file = std::fs::File::from(open(&name, libc::O_RDWR)?);
        let size = usize::try_from(file.metadata()?.len()).map_err(|_| ShmError::BadSize(0))?;
        if size == 0 {
            return Err(ShmError::BadSize(0));
        }
        let ptr = map_shared(&file, size)?;
        Ok(SharedMemory { name, ptr, size })
    }

    /// The name, without a leading slash (Python's `name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The size in bytes (Python's `size`).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The first byte of the block, for code that shares it with C or builds its own view;
    /// valid for [`size`](SharedMemory::size) bytes while `self` lives (Python's `buf`, as a
    /// pointer).
    ///
    /// ```
    /// # use multiproc::shm::SharedMemory;
    /// # fn main() -> multiproc::Result<()> {
    /// let shm = SharedMemory::create(None, 8)?;
    /// assert!(!shm.as_ptr().is_null());
    /// # shm.unlink()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The bytes as a slice, without a copy (Python's `buf`, read-only).
    ///
    /// # Safety
    ///
    /// The memory is shared: other processes, and other handles of the same block in this
    /// process (a second [`attach`](SharedMemory::attach), a decoded handle), may write it
    /// through their own mappings. For as long as the slice is used, nothing may write the
    /// bytes: not another process, not another handle in this process, and not
    /// [`write_at`](SharedMemory::write_at) on this one (memmap2's contract for a mapped file
    /// that may be modified in or out of process). A lock or an `Event` that every writer
    /// honours is the usual way to promise it.
    ///
    /// ```
    /// # use multiproc::shm::SharedMemory;
    /// # fn main() -> multiproc::Result<()> {
    /// let shm = SharedMemory::create(None, 4)?;
    /// shm.write_at(0, &[1, 2, 3, 4])?;
    /// // SAFETY: nothing else knows the block's name yet, so nothing writes it.
    /// let sum: u32 = unsafe { shm.as_slice() }.iter().map(|&b| u32::from(b)).sum();
    /// assert_eq!(sum, 10);
    /// # shm.unlink()?;
    /// # Ok(())
    /// # }
    /// ```
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` maps `size` bytes, readable, while `self` lives, and the slice borrows
        // `self`; the caller promises that nothing writes them while the slice is used.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.size) }
    }

    /// The bytes as a writable slice, without a copy (Python's `buf`).
    ///
    /// # Safety
    ///
    /// As for [`as_slice`](SharedMemory::as_slice), and more: for as long as the slice is
    /// used, nothing else may read or write the bytes, in this process (another handle of the
    /// block) or another.
    ///
    /// ```
    /// # use multiproc::shm::SharedMemory;
    /// # fn main() -> multiproc::Result<()> {
    /// let mut shm = SharedMemory::create(None, 4)?;
    /// // SAFETY: nothing else knows the block's name yet, so nothing else maps it.
    /// unsafe { shm.as_mut_slice() }.copy_from_slice(b"abcd");
    /// let mut seen = [0u8; 4];
    /// shm.read_at(0, &mut seen)?;
    /// assert_eq!(&seen, b"abcd");
    /// # shm.unlink()?;
    /// # Ok(())
    /// # }
    /// ```
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`; `&mut self` keeps this handle's safe methods off the bytes
        // while the slice lives, and the caller promises that nothing else touches them.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.size) }
    }

    /// Copies `buf.len()` bytes from `offset` into `buf` (Python's `bytes(shm.buf[a:b])`).
    /// A range past the end is [`ShmError::OutOfBounds`].
    ///
    /// Each byte is read atomically, so this is sound while other threads and processes
    /// write; the copy is not a snapshot, though: synchronise with a lock to read a
    /// consistent state.
    ///
    /// ```
    /// # use multiproc::shm::{SharedMemory, ShmError};
    /// # fn main() -> multiproc::Result<()> {
    /// let shm = SharedMemory::create(None, 4)?;
    /// let mut buf = [9u8; 2];
    /// shm.read_at(2, &mut buf)?;
    /// assert_eq!(buf, [0, 0]);
    /// assert!(matches!(shm.read_at(3, &mut buf), Err(ShmError::OutOfBounds { .. })));
    /// # shm.unlink()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), ShmError> {
        let shared = self.bytes(offset, buf.len())?;
        for (byte, shared) in buf.iter_mut().zip(shared) {
            *byte = shared.load(Ordering::Relaxed);
        }
        Ok(())
    }

    /// Copies `data` into the block at `offset` (Python's `shm.buf[a:b] = data`). A range
    /// past the end is [`ShmError::OutOfBounds`], and writes nothing.
    ///
    /// Each byte is written atomically, so threads and processes may write at once (the
    /// bytes are then some mix of their data, as in Python).
    ///
    /// ```
    /// # use multiproc::shm::SharedMemory;
    /// # fn main() -> multiproc::Result<()> {
    /// let shm = SharedMemory::create(None, 4)?;
    /// shm.write_at(1, &[7, 8])?;
    /// let mut all = [0u8; 4];
    /// shm.read_at(0, &mut all)?;
    /// assert_eq!(all, [0, 7, 8, 0]);
    /// # shm.unlink()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), ShmError> {
        for (shared, &byte) in self.bytes(offset, data.len())?.iter().zip(data) {
            shared.store(byte, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Bytes `offset..offset + len` as atomics, or [`ShmError::OutOfBounds`].
    fn bytes(&self, offset: usize, len: usize) -> Result<&[AtomicU8], ShmError> {
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(ShmError::OutOfBounds {
                offset,
                len,
                size: self.size,
            });
        }
        // SAFETY: `offset + len <= size` (checked), so the range lies in the mapping, which
        // lives as long as `self`. `AtomicU8` has the size and alignment of `u8`, and every
        // access through safe code in this process is atomic (the slices are `unsafe`), so
        // viewing the bytes as atomics creates no data race.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(offset).cast(), len) })
    }

    /// Unmaps the block from this process (Python's `close()`); dropping does the same.
    pub fn close(self) {}

    /// Removes the name (Python's `unlink()`), so that the memory is freed once every process
    /// has closed it. Call it once, from the creator.
    pub fn unlink(&self) -> Result<(), ShmError> {
        unlink_name(&self.name)
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`size` are this handle's mapping, and nothing borrowed from it (the
        // atomics of `read_at`/`write_at`, the unsafe slices) outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.size) };
    }
}

impl std::fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMemory")
            .field("name", &self.name)
            .field("size", &self.size)
            .finish()
    }
}

impl Serialize for SharedMemory {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::sys::transfer::local_only::<S::Error>("a `SharedMemory`")?;
        self.name.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SharedMemory {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        SharedMemory::attach(&name).map_err(|e| match e {
            ShmError::NotFound(name) => serde::de::Error::custom(format_args!(
                "shared memory `{name}` not found: it was unlinked, or never created"
            )),
            e => serde::de::Error::custom(e),
        })
    }
}

/// `name` without its optional leading slash, if it is a valid segment name.
fn checked_name(name: &str) -> Result<String, ShmError> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let valid = !bare.is_empty()
        && bare.len() <= MAX_NAME
        && bare != "."
        && bare != ".."
        && !bare.contains(['/', '\0']);
    if valid {
        Ok(bare.to_owned())
    } else {
        Err(ShmError::BadName(name.to_owned()))
    }
}

/// A fresh name like Python's: `psm_` and 16 random hex digits.
fn random_name() -> Result<String, ShmError> {
    let mut bytes = [0u8; 8];
    // SAFETY: getrandom fills the live buffer of this length.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(format!("psm_{:016x}", u64::from_ne_bytes(bytes)))
}

fn c_path(name: &str) -> Result<CString, ShmError> {
    CString::new(format!("/{name}")).map_err(|_| ShmError::BadName(name.to_owned()))
}

fn open(name: &str, flags: libc::c_int) -> Result<OwnedFd, ShmError> {
    let path = c_path(name)?;
    // SAFETY: a valid NUL-terminated path; the descriptor returned is new and ours.
    let fd = unsafe { libc::shm_open(path.as_ptr(), flags | libc::O_CLOEXEC, 0o600) };
    if fd < 0 {
        return Err(named_error(name, std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just returned by shm_open, so it is open and owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn unlink_name(name: &str) -> Result<(), ShmError> {
    let path = c_path(name)?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::shm_unlink(path.as_ptr()) } != 0 {
        return Err(named_error(name, std::io::Error::last_os_error()));
    }
    tracker::unregister(name)?;
    Ok(())
}

fn named_error(name: &str, e: std::io::Error) -> ShmError {
    match e.raw_os_error() {
        Some(libc::EEXIST) => ShmError::Exists(name.to_owned()),
        Some(libc::ENOENT) => ShmError::NotFound(name.to_owned()),
        Some(libc::EINVAL | libc::ENAMETOOLONG) => ShmError::BadName(name.to_owned()),
        _ => e.into(),
    }
}
