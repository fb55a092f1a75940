//! `SharedMemory`: a named block of bytes in `/dev/shm` (Python's
//! `multiprocessing.shared_memory.SharedMemory`).

use super::segment::map_shared;
use super::{tracker, ShmError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::ptr::NonNull;

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
/// ```no_run
/// use multiproc::shm::SharedMemory;
/// # fn main() -> multiproc::Result<()> {
/// let mut shm = SharedMemory::create(None, 16)?;
/// shm.buf_mut()[0] = 7;
/// let other = SharedMemory::attach(shm.name())?;
/// assert_eq!(other.buf()[0], 7);
/// shm.unlink()?;
/// # Ok(())
/// # }
/// ```
pub struct SharedMemory {
    name: String,
    ptr: NonNull<u8>,
    size: usize,
}

// SAFETY: the mapping belongs to this handle alone within this process (it is not Clone), and
// `buf`/`buf_mut` follow the borrow rules of `&self`/`&mut self`.
unsafe impl Send for SharedMemory {}
// SAFETY: as for Send; `&SharedMemory` gives only shared access.
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

    /// The bytes (Python's `buf`).
    pub fn buf(&self) -> &[u8] {
        // SAFETY: `ptr` maps `size` bytes while `self` lives; other processes may write them
        // concurrently, as with Python's memoryview: synchronise with a lock to read a
        // consistent state.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.size) }
    }

    /// The bytes, writable.
    pub fn buf_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `buf`; `&mut self` makes the slice unique within this process.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.size) }
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
        // SAFETY: `ptr`/`size` are this handle's mapping, and no slice of it outlives `self`.
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
        self.name.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SharedMemory {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        SharedMemory::attach(&name).map_err(serde::de::Error::custom)
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
