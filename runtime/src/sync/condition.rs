//! `Condition`: wait until notified, across processes (Python's `multiprocessing.Condition`).

use super::raw::Acquired;
use super::{Lock, RLock, SyncError};
use crate::shm::{Shared, ShmError};
use crate::sys::futex;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A [`Lock`] or an [`RLock`]: the lock under a [`Condition`] (an `RLock` by default, as in
/// Python), a `Value` or an `Array`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum AnyLock {
    /// A recursive lock: a wait releases every level and takes them all back.
    RLock(RLock),
    /// A plain lock.
    Lock(Lock),
}

impl From<RLock> for AnyLock {
    fn from(lock: RLock) -> Self {
        AnyLock::RLock(lock)
    }
}

impl From<Lock> for AnyLock {
    fn from(lock: Lock) -> Self {
        AnyLock::Lock(lock)
    }
}

impl AnyLock {
    #[inline]
    pub(crate) fn is_mine(&self) -> bool {
        match self {
            AnyLock::RLock(l) => l.is_mine(),
            AnyLock::Lock(l) => l.is_mine(),
        }
    }

    #[inline]
    pub(crate) fn acquire_until(&self, deadline: Option<Instant>) -> Acquired {
        match self {
            AnyLock::RLock(l) => l.acquire_until(deadline),
            AnyLock::Lock(l) => l.acquire_until(deadline),
        }
    }

    /// Releases one level of a hold this thread (`RLock`) or process (`Lock`) has, and nothing
    /// else: after a foreign release, the lock may be someone else's now.
    #[inline]
    pub(crate) fn release_own(&self) {
        match self {
            AnyLock::RLock(l) => {
                let _ = l.release();
            }
            AnyLock::Lock(l) => {
                l.release_if_mine();
            }
        }
    }

    /// Python's `acquire()` on whichever lock this is: waits as long as it takes (see
    /// [`Lock::acquire`]).
    ///
    /// # Errors
    ///
    /// [`SyncError::OwnerDied`], with the lock held, if its holder had died.
    pub fn acquire(&self) -> Result<(), SyncError> {
        match self {
            AnyLock::RLock(l) => l.acquire(),
            AnyLock::Lock(l) => l.acquire(),
        }
    }

    /// Python's `acquire(block=False)` on whichever lock this is: whether it was acquired.
    ///
    /// # Errors
    ///
    /// [`SyncError::OwnerDied`], with the lock held, if its holder had died.
    pub fn try_acquire(&self) -> Result<bool, SyncError> {
        match self {
            AnyLock::RLock(l) => l.try_acquire(),
            AnyLock::Lock(l) => l.try_acquire(),
        }
    }

    /// Python's `acquire(timeout=..)` on whichever lock this is: whether it was acquired.
    ///
    /// # Errors
    ///
    /// [`SyncError::OwnerDied`], with the lock held, if its holder had died.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, SyncError> {
        match self {
            AnyLock::RLock(l) => l.acquire_timeout(timeout),
            AnyLock::Lock(l) => l.acquire_timeout(timeout),
        }
    }

    /// Python's `release()` on whichever lock this is.
    #[inline]
    pub fn release(&self) -> Result<(), SyncError> {
        match self {
            AnyLock::RLock(l) => l.release(),
            AnyLock::Lock(l) => l.release(),
        }
    }

    /// Whether some process (or thread, for an `RLock`) holds it this instant.
    pub fn is_locked(&self) -> bool {
        match self {
            AnyLock::RLock(l) => l.is_locked(),
            AnyLock::Lock(l) => l.is_locked(),
        }
    }

    /// Releases the lock entirely; returns what [`restore`](Self::restore) needs.
    pub(crate) fn release_all(&self) -> u32 {
        match self {
            AnyLock::RLock(l) => l.release_all(),
            AnyLock::Lock(l) => u32::from(l.release().is_ok()),
        }
    }

    pub(crate) fn restore(&self, depth: u32) -> Acquired {
        match self {
            AnyLock::RLock(l) => l.restore(depth),
            AnyLock::Lock(l) => l.acquire_until(None),
        }
    }
}

/// A condition variable shared between processes (Python's `multiprocessing.Condition`).
///
/// Waiting and notifying need its lock held ([`SyncError::NotHeld`] otherwise). A wait may
/// return without a notify (another waiter's notify racing with it, a signal): check the
/// condition in a loop, or use [`wait_for`](Condition::wait_for), as Python advises.
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
/// use std::time::Duration;
///
/// #[process_task]
/// fn produce(cond: Condition, count: Value<u32>) {
///     let _held = cond.lock().expect("lock");
///     count.set(1);
///     cond.notify_all().expect("notify");
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let cond = Condition::new()?;
/// let count = Value::new(0u32)?;
/// let _held = cond.lock()?;
/// let child = Process::new(task!(produce, cond.clone(), count.clone())).start()?;
/// // The wait releases the lock, so the child can take it and notify.
/// assert!(cond.wait_for(|| count.get() == 1, Some(Duration::from_secs(10)))?);
/// drop(_held);
/// child.join()?;
/// # Ok(())
/// # }
/// ```
///
/// Waiting or notifying without the lock is an error:
///
/// ```
/// use multiproc::sync::{Condition, SyncError};
/// # fn main() -> multiproc::Result<()> {
/// let cond = Condition::new()?;
/// assert_eq!(cond.notify_all(), Err(SyncError::NotHeld));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Condition {
    lock: AnyLock,
    /// Bumped by every notify; waiters sleep on it.
    seq: Shared<AtomicU32>,
}

/// Holds a [`Condition`]'s lock until dropped (Python's `with cond:`).
///
/// # Examples
///
/// ```
/// use multiproc::sync::Condition;
///
/// # fn main() -> multiproc::Result<()> {
/// let cond = Condition::new()?;
/// let held = cond.lock()?;
/// cond.notify(1)?; // allowed: the lock is held
/// drop(held);
/// assert!(!cond.get_lock().is_locked());
/// # Ok(())
/// # }
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct ConditionGuard<'a> {
    cond: &'a Condition,
    /// An `RLock` is owned by a thread: the guard must be dropped on it.
    not_send: PhantomData<*const ()>,
}

impl Drop for ConditionGuard<'_> {
    fn drop(&mut self) {
        let _ = self.cond.lock.release();
    }
}

impl Condition {
    /// A condition over a new [`RLock`] (Python's `Condition()`).
    pub fn new() -> Result<Condition, ShmError> {
        Self::with_lock(RLock::new()?)
    }

    /// A condition over `lock`, a [`Lock`] or an [`RLock`] (Python's `Condition(lock)`).
    pub fn with_lock(lock: impl Into<AnyLock>) -> Result<Condition, ShmError> {
        Ok(Condition {
            lock: lock.into(),
            seq: Shared::new()?,
        })
    }

    /// The lock under the condition.
    pub fn get_lock(&self) -> &AnyLock {
        &self.lock
    }

    /// Acquires the lock until the guard drops; `Err` when its holder had died (the guard is
    /// dropped then, and the lock released).
    pub fn lock(&self) -> Result<ConditionGuard<'_>, SyncError> {
        match self.lock.acquire_until(None) {
            Acquired::FromDead(pid) => {
                let _ = self.lock.release();
                Err(SyncError::OwnerDied { pid })
            }
            _ => Ok(ConditionGuard {
                cond: self,
                not_send: PhantomData,
            }),
        }
    }

    /// Python's `acquire()`: acquires the lock, waiting as long as it takes.
    pub fn acquire(&self) -> Result<(), SyncError> {
        match self.lock.acquire_until(None) {
            Acquired::FromDead(pid) => Err(SyncError::OwnerDied { pid }),
            _ => Ok(()),
        }
    }

    /// Python's `release()`.
    pub fn release(&self) -> Result<(), SyncError> {
        self.lock.release()
    }

    /// Releases the lock, sleeps until notified, and takes the lock back (Python's `wait()`).
    pub fn wait(&self) -> Result<(), SyncError> {
        self.wait_until(None).map(drop)
    }

    /// As [`wait`](Self::wait), at most `timeout`; whether it was woken rather than timed out
    /// (Python's `wait(timeout)`). The lock is held again either way.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, SyncError> {
        self.wait_until(crate::util::deadline(timeout))
    }

    /// Waits until `predicate` holds, at most `timeout` (`None`: no limit); returns the last
    /// value of the predicate (Python's `wait_for(predicate, timeout)`).
    pub fn wait_for(
        &self,
        mut predicate: impl FnMut() -> bool,
        timeout: Option<Duration>,
    ) -> Result<bool, SyncError> {
        let deadline = timeout.and_then(crate::util::deadline);
        loop {
            if predicate() {
                return Ok(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            self.wait_until(deadline)?;
        }
    }

    /// Wakes `n` waiters (Python's `notify(n)`), or one more: a waiter killed as it is woken
    /// then passes its turn on at once. Python's documentation allows this too ("may
    /// occasionally wake up more than n threads"); re-check the state after a wait, as with
    /// [`wait_for`](Self::wait_for).
    pub fn notify(&self, n: u32) -> Result<(), SyncError> {
        if !self.lock.is_mine() {
            return Err(SyncError::NotHeld);
        }
        self.seq.fetch_add(1, Ordering::Release);
        futex::wake(&self.seq, n);
        Ok(())
    }

    /// Wakes every waiter (Python's `notify_all()`).
    pub fn notify_all(&self) -> Result<(), SyncError> {
        self.notify(u32::MAX)
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<bool, SyncError> {
        if !self.lock.is_mine() {
            return Err(SyncError::NotHeld);
        }
        // Read before releasing: a notify after the release changes it, so the wait below
        // cannot miss it.
        let seq = self.seq.load(Ordering::Acquire);
        let depth = self.lock.release_all();
        let woken = futex::wait(&self.seq, seq, deadline) == futex::Wake::Woken;
        match self.lock.restore(depth) {
            Acquired::FromDead(pid) => Err(SyncError::OwnerDied { pid }),
            _ => Ok(woken),
        }
    }
}
