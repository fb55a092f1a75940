//! `Lock`: a non-recursive lock shared between processes (Python's `multiprocessing.Lock`).

use super::raw::{self, Acquired};
use super::{LockResult, OwnerDied, SyncError, TryLockError, TryLockResult};
use crate::shm::{Shared, ShmError};
use crate::sys::owner;
use serde::{Deserialize, Serialize};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// A lock shared between processes (Python's `multiprocessing.Lock`).
///
/// Held by a process, not a thread: as in Python, any thread of any process may release it,
/// and acquiring it twice from one process blocks. Use it through guards ([`lock`](Lock::lock),
/// [`try_lock`](Lock::try_lock), [`lock_timeout`](Lock::lock_timeout)) or Python's
/// [`acquire`](Lock::acquire) / [`release`](Lock::release) (with
/// [`try_acquire`](Lock::try_acquire) and [`acquire_timeout`](Lock::acquire_timeout) for
/// Python's `acquire(block=False)` and `acquire(timeout=..)`). If the holding process dies, the
/// next acquirer gets the lock with [`OwnerDied`].
///
/// # Examples
///
/// ```
/// use multiproc::sync::Lock;
/// # fn main() -> multiproc::Result<()> {
/// let lock = Lock::new()?;
/// {
///     let _guard = lock.lock()?;
///     println!("only one process prints at a time");
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Lock {
    word: Shared<AtomicU64>,
}

/// Holds a [`Lock`] until dropped (Python's `with lock:` block).
///
/// # Examples
///
/// ```
/// use multiproc::sync::Lock;
///
/// # fn main() -> multiproc::Result<()> {
/// let lock = Lock::new()?;
/// {
///     let _guard = lock.lock()?;
///     assert!(lock.is_locked());
/// }
/// assert!(!lock.is_locked()); // released at the end of the block
/// # Ok(())
/// # }
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // Python lets another process release a Lock; then there is nothing left to release.
        let _ = self.lock.release();
    }
}

impl Lock {
    /// A new, unlocked lock in shared memory (Python's `multiprocessing.Lock()`).
    pub fn new() -> Result<Lock, ShmError> {
        Ok(Lock {
            word: Shared::new()?,
        })
    }

    /// Acquires the lock, waiting as long as it takes; `Err(OwnerDied)` carries the guard when
    /// the previous holder died holding it.
    ///
    /// # Errors
    ///
    /// [`OwnerDied`], holding the guard, if the previous holder died with the lock (see its
    /// example).
    #[inline]
    pub fn lock(&self) -> LockResult<LockGuard<'_>> {
        match self.acquire_until(None) {
            Acquired::FromDead(pid) => Err(OwnerDied::new(LockGuard { lock: self }, pid)),
            _ => Ok(LockGuard { lock: self }),
        }
    }

    /// Acquires the lock if it is free now (Python's `acquire(block=False)`).
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`] if it is held, even by this process.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::sync::Lock;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let lock = Lock::new()?;
    /// let held = lock.try_lock()?;
    /// assert!(lock.try_lock().is_err());
    /// drop(held);
    /// assert!(lock.try_lock().is_ok());
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    pub fn try_lock(&self) -> TryLockResult<LockGuard<'_>> {
        if raw::try_acquire(&self.word, owner::process()) {
            Ok(LockGuard { lock: self })
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Acquires the lock, waiting at most `timeout` (Python's `acquire(timeout=..)`).
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`] if the timeout passed; [`TryLockError::OwnerDied`], holding
    /// the guard, if the previous holder died with the lock.
    pub fn lock_timeout(&self, timeout: Duration) -> TryLockResult<LockGuard<'_>> {
        guard_for(
            self.acquire_until(crate::util::deadline(timeout)),
            LockGuard { lock: self },
        )
    }

    /// Acquires the lock, waiting as long as it takes (Python's `acquire()`); release it with
    /// [`release`](Lock::release). When its holder had died, returns [`SyncError::OwnerDied`]
    /// *with the lock held*: release it when done, as after `Ok(())`.
    ///
    /// Python's other forms are [`try_acquire`](Lock::try_acquire) (`acquire(block=False)`) and
    /// [`acquire_timeout`](Lock::acquire_timeout) (`acquire(timeout=..)`); the guards of
    /// [`lock`](Lock::lock) release by themselves.
    ///
    /// # Errors
    ///
    /// [`SyncError::OwnerDied`], with the lock held, if its holder had died.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::sync::Lock;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let lock = Lock::new()?;
    /// lock.acquire()?;
    /// assert!(!lock.try_acquire()?); // not re-entrant
    /// assert!(lock.is_locked());
    /// lock.release()?;
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    pub fn acquire(&self) -> Result<(), SyncError> {
        acquired(self.acquire_until(None)).map(drop)
    }

    /// Acquires the lock if it is free now (Python's `acquire(block=False)`): whether it did.
    ///
    /// # Errors
    ///
    /// None today; the `Result` matches [`acquire`](Lock::acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::sync::Lock;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let lock = Lock::new()?;
    /// assert!(lock.try_acquire()?);
    /// assert!(!lock.try_acquire()?);
    /// lock.release()?;
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<bool, SyncError> {
        Ok(raw::try_acquire(&self.word, owner::process()))
    }

    /// Acquires the lock, waiting at most `timeout` (Python's `acquire(timeout=..)`): whether
    /// it did. When its holder had died, returns [`SyncError::OwnerDied`] *with the lock held*.
    ///
    /// # Errors
    ///
    /// [`SyncError::OwnerDied`], with the lock held, if its holder had died.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::sync::Lock;
    /// use std::time::Duration;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let lock = Lock::new()?;
    /// assert!(lock.acquire_timeout(Duration::from_millis(10))?);
    /// assert!(!lock.acquire_timeout(Duration::from_millis(10))?); // timed out
    /// lock.release()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, SyncError> {
        acquired(self.acquire_until(crate::util::deadline(timeout)))
    }

    /// Releases the lock, whoever acquired it (Python's `release()`); releasing an unlocked
    /// lock is [`SyncError::NotLocked`].
    ///
    /// # Errors
    ///
    /// [`SyncError::NotLocked`] if the lock is not held.
    #[inline]
    pub fn release(&self) -> Result<(), SyncError> {
        match raw::release(&self.word) {
            0 => Err(SyncError::NotLocked),
            _ => Ok(()),
        }
    }

    /// Whether some process holds the lock this instant.
    pub fn is_locked(&self) -> bool {
        raw::holder(&self.word) != 0
    }

    /// Whether this process holds the lock (what a `Condition` checks).
    pub(crate) fn is_mine(&self) -> bool {
        raw::holder(&self.word) == owner::process()
    }

    /// Releases the lock if this process holds it; whether it did.
    #[inline]
    pub(crate) fn release_if_mine(&self) -> bool {
        raw::release_held_by(&self.word, owner::process())
    }

    #[inline]
    pub(crate) fn acquire_until(&self, deadline: Option<Instant>) -> Acquired {
        raw::acquire(&self.word, owner::process(), deadline)
    }
}

/// The Python-style result of an acquire: whether it did, or `OwnerDied` with the lock held.
pub(crate) fn acquired(acquired: Acquired) -> Result<bool, SyncError> {
    match acquired {
        Acquired::Yes => Ok(true),
        Acquired::No => Ok(false),
        Acquired::FromDead(pid) => Err(SyncError::OwnerDied { pid }),
    }
}

/// The guard-style result of an acquire.
pub(crate) fn guard_for<G>(acquired: Acquired, guard: G) -> TryLockResult<G> {
    match acquired {
        Acquired::Yes => Ok(guard),
        Acquired::FromDead(pid) => Err(TryLockError::OwnerDied(OwnerDied::new(guard, pid))),
        Acquired::No => {
            // The guard was never acquired: it must not release on drop.
            std::mem::forget(guard);
            Err(TryLockError::WouldBlock)
        }
    }
}
