//! Synchronisation across processes (Python's `multiprocessing.synchronize`): [`Lock`],
//! [`RLock`], [`Semaphore`], [`BoundedSemaphore`], [`Event`], [`Condition`] and [`Barrier`],
//! built on futexes in shared memory.
//!
//! Each primitive is a handle to a few words in a shared segment: `Clone + Send + Sync`,
//! inherited by a forked child, and serialisable as a reference that another process maps
//! again. They sleep and wake through the platform layer's futex (`sys/futex.rs`), kept below
//! and apart from the primitives as parking_lot keeps its parking lot. A process that
//! dies holding a `Lock` or an `RLock` does not deadlock the others: the next acquirer gets the
//! lock within about 100 ms of sleeping, with [`OwnerDied`], as `std::sync::Mutex` reports
//! poisoning.

mod barrier;
mod condition;
mod event;
mod lock;
pub(crate) mod raw;
mod rlock;
mod semaphore;

pub use barrier::Barrier;
pub use condition::{AnyLock, Condition, ConditionGuard};
pub use event::Event;
pub use lock::{Lock, LockGuard};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphoreGuard};

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a synchronisation operation can fail with (Python raises these as `ValueError`,
/// `AssertionError`, `RuntimeError` and `BrokenBarrierError`).
///
/// # Examples
///
/// ```
/// use multiproc::sync::{Lock, SyncError};
///
/// # fn main() -> multiproc::Result<()> {
/// let lock = Lock::new()?;
/// assert_eq!(lock.release(), Err(SyncError::NotLocked));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SyncError {
    /// The holder of the lock died; the caller now holds it (the lock-style API's form of
    /// [`OwnerDied`]). What the lock protects may be half-updated.
    #[error("the holder of the lock (process or thread {pid}) died; the lock is now yours")]
    OwnerDied {
        /// The dead holder's pid (thread id for an `RLock`).
        pid: u32,
    },
    /// The lock is held by someone else, or the timeout passed.
    #[error("the lock is held by someone else")]
    WouldBlock,
    /// Release of a `Lock` that is not locked (Python: "semaphore or lock released too many
    /// times").
    #[error("release of an unlocked lock")]
    NotLocked,
    /// Release of an `RLock` by a thread that does not own it (Python: "cannot release
    /// un-acquired lock").
    #[error("cannot release an RLock this thread does not own")]
    NotOwner,
    /// A `BoundedSemaphore` released past its initial value.
    #[error("semaphore released too many times (past its initial value {initial})")]
    TooManyReleases {
        /// The initial value.
        initial: u32,
    },
    /// A `Semaphore` released while its value is already `u32::MAX` (Python's
    /// `BoundedSemaphore` says "Semaphore released too many times"; a plain Python
    /// `Semaphore` fails with `OverflowError` past `SEM_VALUE_MAX`).
    #[error("semaphore released too many times (its value is already u32::MAX)")]
    SemaphoreOverflow,
    /// A `Condition` waited on or notified without holding its lock (Python: "cannot wait on
    /// un-acquired lock").
    #[error("the condition's lock must be held to wait or notify")]
    NotHeld,
    /// The barrier is broken (aborted, reset while waited on, or a wait timed out); it stays
    /// so until `reset` (Python's `BrokenBarrierError`).
    #[error("the barrier is broken")]
    BrokenBarrier,
    /// A barrier for zero parties (Python: `ValueError`).
    #[error("a barrier needs at least one party")]
    NoParties,
    /// The shared memory of a new barrier could not be made (said as text: a `SyncError`
    /// crosses processes as a task's result).
    #[error("could not make the barrier's shared memory: {0}")]
    SharedMemory(String),
}

/// The lock was acquired, but its previous holder died holding it (the `PoisonError` of
/// `std::sync`): what it protected may be half-updated. Carries the guard, so the caller can
/// check, repair and go on: `lock().unwrap_or_else(OwnerDied::into_inner)`.
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
/// use multiproc::sync::OwnerDied;
///
/// #[process_task]
/// fn die_holding(lock: Lock) {
///     std::mem::forget(lock.lock()); // never released
///     multiproc::exit(1)
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let lock = Lock::new()?;
/// let child = Process::new(task!(die_holding, lock.clone())).start()?;
/// let _ = child.join();
/// match lock.lock() {
///     Err(died) => {
///         assert_eq!(died.pid(), child.pid() as u32);
///         let _guard = died.into_inner(); // the lock is ours now: check the data, go on
///     }
///     Ok(_) => panic!("the dead holder should have been reported"),
/// }
/// # Ok(())
/// # }
/// ```
pub struct OwnerDied<G> {
    guard: G,
    pid: u32,
}

impl<G> OwnerDied<G> {
    pub(crate) fn new(guard: G, pid: u32) -> Self {
        OwnerDied { guard, pid }
    }

    /// The guard: the lock is held.
    pub fn into_inner(self) -> G {
        self.guard
    }

    /// The guard, borrowed.
    pub fn get_ref(&self) -> &G {
        &self.guard
    }

    /// The dead holder's pid (thread id for an `RLock`).
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl<G> fmt::Debug for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnerDied").field("pid", &self.pid).finish()
    }
}

impl<G> fmt::Display for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&SyncError::OwnerDied { pid: self.pid }, f)
    }
}

impl<G> std::error::Error for OwnerDied<G> {}

impl<G> From<OwnerDied<G>> for SyncError {
    fn from(e: OwnerDied<G>) -> Self {
        SyncError::OwnerDied { pid: e.pid }
    }
}

/// Why a `try_lock` or `lock_timeout` did not simply succeed.
pub enum TryLockError<G> {
    /// The lock is held by someone else, or the timeout passed.
    WouldBlock,
    /// Acquired from a holder that died (see [`OwnerDied`]).
    OwnerDied(OwnerDied<G>),
}

impl<G> fmt::Debug for TryLockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryLockError::WouldBlock => f.write_str("WouldBlock"),
            TryLockError::OwnerDied(e) => e.fmt(f),
        }
    }
}

impl<G> fmt::Display for TryLockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryLockError::WouldBlock => fmt::Display::fmt(&SyncError::WouldBlock, f),
            TryLockError::OwnerDied(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<G> std::error::Error for TryLockError<G> {}

impl<G> From<TryLockError<G>> for SyncError {
    fn from(e: TryLockError<G>) -> Self {
        match e {
            TryLockError::WouldBlock => SyncError::WouldBlock,
            TryLockError::OwnerDied(e) => e.into(),
        }
    }
}

/// What `lock()` returns: the guard, or the guard inside [`OwnerDied`].
pub type LockResult<G> = Result<G, OwnerDied<G>>;
/// What `try_lock()` and `lock_timeout()` return.
pub type TryLockResult<G> = Result<G, TryLockError<G>>;
