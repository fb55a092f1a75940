//! [`SharedMemoryManager`], Python's `multiprocessing.managers.SharedMemoryManager`: it makes
//! [`SharedMemory`] blocks and [`ShareableList`]s and unlinks every one of them when it shuts
//! down.
//!
//! Python's runs a server process that records the names its clients create. Here the blocks
//! are made in the process that holds the manager, which records their names: shutting it down
//! (or dropping it) unlinks them, and if that process dies first, however it dies (SIGKILL
//! included), the cleanup process every creator of a named block has unlinks them (see
//! `shm/tracker.rs`). No server is needed for that, so none is started.

use super::shareable_list::{Item, ShareableList};
use crate::shm::{SharedMemory, ShmError};
use crate::sys::fork_safe::ForkSafeLock;
use crate::sys::owner;

/// Makes shared memory blocks and unlinks them all at shutdown (Python's
/// `SharedMemoryManager`, used as `with SharedMemoryManager() as smm:`).
///
/// Only the process that started it unlinks: a forked copy of it never does.
///
/// # Examples
///
/// ```
/// use multiproc::managers::{Item, SharedMemoryManager};
/// use multiproc::shm::{SharedMemory, ShmError};
///
/// # fn main() -> multiproc::Result<()> {
/// let smm = SharedMemoryManager::start();
/// let block = smm.shared_memory(128)?;
/// let list = smm.shareable_list([Item::from(1), Item::from("two")])?;
/// let name = block.name().to_string();
/// smm.shutdown()?;
/// assert!(matches!(SharedMemory::attach(&name), Err(ShmError::NotFound(_))));
/// assert!(SharedMemory::attach(list.name()).is_err());
/// # Ok(())
/// # }
/// ```
pub struct SharedMemoryManager {
    /// The names of the blocks made, not yet unlinked.
    created: ForkSafeLock<Vec<String>>,
    /// The process that started it.
    owner: u32,
}

impl SharedMemoryManager {
    /// A new manager, holding no blocks yet (Python's `SharedMemoryManager().start()`).
    pub fn start() -> SharedMemoryManager {
        SharedMemoryManager {
            created: ForkSafeLock::new(Vec::new()),
            owner: owner::pid(),
        }
    }

    /// A new block of `size` bytes, with a random name, unlinked at shutdown (Python's
    /// `smm.SharedMemory(size)`).
    ///
    /// # Errors
    ///
    /// As [`SharedMemory::create`].
    pub fn shared_memory(&self, size: usize) -> Result<SharedMemory, ShmError> {
        let block = SharedMemory::create(None, size)?;
        self.record(block.name());
        Ok(block)
    }

    /// A new list of `items`, in a block unlinked at shutdown (Python's
    /// `smm.ShareableList(sequence)`).
    ///
    /// # Errors
    ///
    /// As [`ShareableList::create`].
    pub fn shareable_list(
        &self,
        items: impl IntoIterator<Item = Item>,
    ) -> Result<ShareableList, ShmError> {
        let list = ShareableList::create(None, items)?;
        self.record(list.name());
        Ok(list)
    }

    /// The names of the blocks it made that it has not unlinked yet.
    pub fn names(&self) -> Vec<String> {
        self.created.with(|created| created.clone())
    }

    fn record(&self, name: &str) {
        self.created.with(|created| created.push(name.to_string()));
    }

    /// Unlinks every block it made (Python's `smm.shutdown()`); handles still open keep their
    /// memory until they close. Blocks unlinked already are skipped; calling it again does
    /// nothing.
    ///
    /// # Errors
    ///
    /// The first [`ShmError`] met other than a block already gone; the other blocks are
    /// unlinked all the same.
    pub fn shutdown(&self) -> Result<(), ShmError> {
        let names = self.created.with(std::mem::take);
        let mut first_error = None;
        for name in names {
            match SharedMemory::attach(&name).and_then(|block| block.unlink()) {
                Ok(()) | Err(ShmError::NotFound(_)) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for SharedMemoryManager {
    fn drop(&mut self) {
        if owner::pid() == self.owner {
            let _ = self.shutdown();
        }
    }
}

impl std::fmt::Debug for SharedMemoryManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMemoryManager")
            .field("blocks", &self.names().len())
            .finish()
    }
}
