//! `RLock`: a recursive lock shared between processes (Python's `multiprocessing.RLock`).

use super::lock::{acquired, guard_for};
use super::raw::{self, Acquired};
use super::{LockResult, OwnerDied, SyncError, TryLockError, TryLockResult};
use crate::shm::{Block, Shared, ShmError};
use crate::sys::owner;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The owner word and the recursion count (touched only by the owner).
#[repr(C)]
#[derive(Default)]
struct State {
    word: AtomicU64,
    count: AtomicU32,
}

// SAFETY: two atomics, valid when zero (free, count 0).
unsafe impl crate::shm::SharedState for State {}

/// A recursive lock shared between processes (Python's `multiprocessing.RLock`).
///
/// Owned by a thread: the owner may acquire it again, and must release it as many times; only
/// the owner may release it ([`SyncError::NotOwner`] otherwise). If the owning thread's process
/// dies, the next acquirer gets it with [`OwnerDied`].
///
/// # Examples
///
/// ```
/// use multiproc::sync::RLock;
/// # fn main() -> multiproc::Result<()> {
/// let lock = RLock::new()?;
/// let outer = lock.lock()?;
/// let inner = lock.lock()?; // the owner may take it again
/// assert!(lock.is_mine());
/// drop(inner);
/// drop(outer);
/// assert!(!lock.is_locked());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RLock {
    state: Shared<State>,
}

/// Holds one level of an [`RLock`] until dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    /// An `RLock` is owned by a thread: the guard must be dropped on it.
    not_send: PhantomData<*const ()>,
}

impl Drop for RLockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // The guard's thread owns the lock (guards are not Send), so this cannot fail.
        let _ = self.lock.release();
    }
}

impl RLock {
    /// A new, unlocked recursive lock in shared memory (Python's `multiprocessing.RLock()`).
    pub fn new() -> Result<RLock, ShmError> {
        Ok(RLock {
            state: Shared::new()?,
        })
    }

    /// An unlocked recursive lock at the start of `block` (zeroed, at least [`RLock::SIZE`]
    /// bytes), so that a `Value` keeps its lock on the same cache line as its data.
    pub(crate) fn in_block(block: Block) -> Result<RLock, ShmError> {
        Ok(RLock {
            state: Shared::from_block(block)?,
        })
    }

    /// Bytes an `RLock` takes in shared memory.
    pub(crate) const SIZE: usize = std::mem::size_of::<State>();

    /// Acquires the lock (again, if this thread owns it), waiting as long as it takes.
    #[inline]
    pub fn lock(&self) -> LockResult<RLockGuard<'_>> {
        match self.acquire_until(None) {
            Acquired::FromDead(pid) => Err(OwnerDied::new(
                RLockGuard {
                    lock: self,
                    not_send: PhantomData,
                },
                pid,
            )),
            _ => Ok(RLockGuard {
                lock: self,
                not_send: PhantomData,
            }),
        }
    }

    /// Acquires the lock if it is free or already this thread's.
    pub fn try_lock(&self) -> TryLockResult<RLockGuard<'_>> {
        let acquired = self.acquire_until(Some(Instant::now()));
        match acquired {
            Acquired::No => Err(TryLockError::WouldBlock),
            acquired => guard_for(
                acquired,
                RLockGuard {
                    lock: self,
                    not_send: PhantomData,
                },
            ),
        }
    }

    /// Acquires the lock, waiting at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> TryLockResult<RLockGuard<'_>> {
        guard_for(
            self.acquire_until(crate::util::deadline(timeout)),
            RLockGuard {
                lock: self,
                not_send: PhantomData,
            },
        )
    }

    /// Acquires the lock, waiting as long as it takes, or one level more if this thread owns
    /// it (Python's `acquire()`). When its owner had died, returns [`SyncError::OwnerDied`]
    /// *with the lock held*.
    ///
    /// [`try_acquire`](RLock::try_acquire) and [`acquire_timeout`](RLock::acquire_timeout) are
    /// Python's `acquire(block=False)` and `acquire(timeout=..)`.
    ///
    /// # Errors
    ///
    /// [`SyncError::OwnerDied`], with the lock held, if its owner had died.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::sync::RLock;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let lock = RLock::new()?;
    /// lock.acquire()?;
    /// lock.acquire()?; // the owner may take it again
    /// lock.release()?;
    /// lock.release()?; // as many releases as acquires
    /// assert!(!lock.is_locked());
    /// # Ok(())
    /// # }
    /// ```
    pub fn acquire(&self) -> Result<(), SyncError> {
        acquired(self.acquire_until(None)).map(drop)
    }

    /// Acquires the lock if it is free or already this thread's (Python's
    /// `acquire(block=False)`): whether it did.
    ///
    /// # Errors
    ///
    /// [`SyncError::OwnerDied`], with the lock held, if its owner had died.
    pub fn try_acquire(&self) -> Result<bool, SyncError> {
        acquired(self.acquire_until(Some(Instant::now())))
    }

    /// Acquires the lock, waiting at most `timeout` (Python's `acquire(timeout=..)`): whether
    /// it did.
    ///
    /// # Errors
    ///
    /// [`SyncError::OwnerDied`], with the lock held, if its owner had died.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, SyncError> {
        acquired(self.acquire_until(crate::util::deadline(timeout)))
    }

    /// Releases one level (Python's `release()`); [`SyncError::NotOwner`] if this thread does
    /// not own the lock.
    ///
    /// # Errors
    ///
    /// [`SyncError::NotOwner`] if this thread does not own the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::sync::{RLock, SyncError};
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let lock = RLock::new()?;
    /// assert_eq!(lock.release(), Err(SyncError::NotOwner));
    /// lock.acquire()?;
    /// assert!(lock.try_acquire()?);
    /// lock.release()?;
    /// lock.release()?;
    /// assert!(!lock.is_locked());
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    pub fn release(&self) -> Result<(), SyncError> {
        if !self.is_mine() {
            return Err(SyncError::NotOwner);
        }
        let count = self.state.count.load(Ordering::Relaxed);
        if count > 1 {
            self.state.count.store(count - 1, Ordering::Relaxed);
        } else {
            self.state.count.store(0, Ordering::Relaxed);
            raw::release(&self.state.word);
        }
        Ok(())
    }

    /// Whether some thread holds the lock this instant.
    pub fn is_locked(&self) -> bool {
        raw::holder(&self.state.word) != 0
    }

    /// Whether the calling thread owns the lock.
    #[inline]
    pub fn is_mine(&self) -> bool {
        raw::holder(&self.state.word) == owner::thread()
    }

    /// How many times the owner holds it (0: free or another thread's).
    pub(crate) fn depth(&self) -> u32 {
        if self.is_mine() {
            self.state.count.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    /// Releases every level this thread holds; returns how many, for [`restore`](Self::restore).
    pub(crate) fn release_all(&self) -> u32 {
        let depth = self.depth();
        if depth > 0 {
            self.state.count.store(0, Ordering::Relaxed);
            raw::release(&self.state.word);
        }
        depth
    }

    /// Acquires the lock `depth` levels deep (after [`release_all`](Self::release_all)).
    pub(crate) fn restore(&self, depth: u32) -> Acquired {
        let acquired = raw::acquire(&self.state.word, owner::thread(), None);
        self.state.count.store(depth.max(1), Ordering::Relaxed);
        acquired
    }

    #[inline]
    pub(crate) fn acquire_until(&self, deadline: Option<Instant>) -> Acquired {
        let me = owner::thread();
        if raw::holder(&self.state.word) == me {
            self.state.count.fetch_add(1, Ordering::Relaxed);
            return Acquired::Yes;
        }
        let acquired = match deadline {
            Some(d) if d <= Instant::now() => {
                if raw::try_acquire(&self.state.word, me) {
                    Acquired::Yes
                } else {
                    Acquired::No
                }
            }
            _ => raw::acquire(&self.state.word, me, deadline),
        };
        if acquired != Acquired::No {
            self.state.count.store(1, Ordering::Relaxed);
        }
        acquired
    }
}
