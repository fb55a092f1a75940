//! Shared memory: segments that several processes map, and the pieces of them that shared
//! objects live in (the machinery under Python's `multiprocessing.heap` and `shared_memory`).
//!
//! [`SharedMemory`] is Python's `shared_memory.SharedMemory`: a block in `/dev/shm` named so
//! that unrelated processes can attach it, removed by a cleanup process if its creator dies.
//! Inside the crate, a `Segment` is a memfd mapped `MAP_SHARED` and a `Block` a piece of one,
//! allocated so that thousands of small objects share a few mappings, and whose space is used
//! again once no process can reach it; both are inherited by a forked child and serialise to a
//! reference that another process maps again. A `Mirror` maps one memfd twice back to back,
//! for rings whose messages may wrap around the end.

mod arena;
mod block;
mod mirror;
mod named;
mod segment;
mod shared;
mod tracker;

pub(crate) use block::Block;
pub(crate) use mirror::Mirror;
pub use named::SharedMemory;
pub(crate) use shared::{Shared, SharedState};

/// What can go wrong with shared memory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShmError {
    /// A system call failed.
    #[error("shared memory: {0}")]
    Io(#[from] std::io::Error),
    /// A size that cannot be mapped (zero, or beyond the address space).
    #[error("bad shared memory size: {0} bytes")]
    BadSize(usize),
    /// An alignment that is not a power of two up to 4096.
    #[error("bad shared memory alignment: {0} (a power of two up to 4096 is needed)")]
    BadAlign(usize),
    /// A reference to a segment that can no longer be mapped: the process that sent it has
    /// exited or closed it, and this process has no mapping of it.
    #[error("the shared segment sent by process {pid} (descriptor {fd}) is gone")]
    Unreachable {
        /// The process named in the reference.
        pid: u32,
        /// Its descriptor number.
        fd: i32,
    },
    /// A `SharedMemory` name that is already taken (Python's `FileExistsError`).
    #[error("shared memory `{0}` already exists")]
    Exists(String),
    /// No `SharedMemory` has this name (Python's `FileNotFoundError`).
    #[error("no shared memory is named `{0}`")]
    NotFound(String),
    /// A name that cannot name a segment: empty, longer than 254 bytes, or with `/` or NUL
    /// after its optional leading `/`.
    #[error("bad shared memory name `{0}`")]
    BadName(String),
    /// An index past the end (Python's `IndexError`).
    #[error("index {index} is out of range for length {len}")]
    IndexOutOfRange {
        /// The index given.
        index: usize,
        /// The length.
        len: usize,
    },
    /// A slice assignment whose values do not match the slice's length.
    #[error("slice of length {expected} cannot be assigned {got} values")]
    LengthMismatch {
        /// The slice's length.
        expected: usize,
        /// The number of values given.
        got: usize,
    },
    /// A value too long for its `ShareableList` slot, whose size was fixed when the list was
    /// made (Python's `ValueError: exceeds available storage`).
    #[error("item {index} holds at most {capacity} bytes, not {len}")]
    ItemTooLarge {
        /// The item's index.
        index: usize,
        /// Its slot's size in bytes.
        capacity: usize,
        /// The encoded value's size.
        len: usize,
    },
    /// A block that does not hold a `ShareableList`, or an item torn by writers racing on it.
    #[error("shared memory `{name}` does not hold a valid ShareableList: {reason}")]
    NotAShareableList {
        /// The block's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A byte range that does not lie inside a `SharedMemory` block (Python's `IndexError`
    /// or `ValueError` on `buf[a:b]`).
    #[error("bytes {offset}.. ({len} of them) lie outside the block of {size} bytes")]
    OutOfBounds {
        /// Where the range starts.
        offset: usize,
        /// How many bytes it spans.
        len: usize,
        /// The block's size.
        size: usize,
    },
}
