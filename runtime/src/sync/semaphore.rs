//! `Semaphore` and `BoundedSemaphore`: counters that block at zero, shared between processes
//! (Python's `multiprocessing.Semaphore` and `BoundedSemaphore`).

use super::SyncError;
use crate::shm::{Shared, ShmError};
use crate::sys::futex;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The count (the futex) and how many may sleep on it.
#[repr(C)]
struct State {
    count: AtomicU32,
    sleepers: AtomicU32,
}

// SAFETY: two atomics, valid when zero.
unsafe impl crate::shm::SharedState for State {}

/// A semaphore shared between processes (Python's `multiprocessing.Semaphore(value)`).
///
/// # Examples
///
/// ```
/// use multiproc::sync::Semaphore;
/// # fn main() -> multiproc::Result<()> {
/// let slots = Semaphore::new(2)?;
/// let a = slots.lock(); // at most two holders at once
/// let _b = slots.lock();
/// assert!(slots.try_lock().is_none());
/// drop(a);
/// assert_eq!(slots.get_value(), 1);
/// slots.release()?; // a plain Semaphore may go past its initial value
/// assert_eq!(slots.get_value(), 2);
/// # Ok(())
/// # }
/// ```
///
/// # Dead processes
///
/// A semaphore does not know who holds its units. A process that dies (killed, or exits)
/// holding units never gives them back: the value stays that much lower for good, and with none
/// left the others wait for ever. CPython loses them the same way. Wait with
/// [`lock_timeout`](Semaphore::lock_timeout) or [`acquire`](Semaphore::acquire)'s timeout where
/// a holder may die, and [`release`](Semaphore::release) the lost units from the process that
/// [`join`](crate::ProcessHandle::join)ed the dead one if you know how many it held. (A
/// [`Lock`](crate::sync::Lock) has one holder and is handed on with
/// [`OwnerDied`](crate::sync::OwnerDied) instead.)
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Semaphore {
    state: Shared<State>,
}

/// Holds one unit of a [`Semaphore`] or [`BoundedSemaphore`] until dropped (Python's
/// `with sem:`).
///
/// # Examples
///
/// ```
/// use multiproc::sync::Semaphore;
///
/// # fn main() -> multiproc::Result<()> {
/// let sem = Semaphore::new(1)?;
/// let unit = sem.lock();
/// assert_eq!(sem.get_value(), 0);
/// drop(unit);
/// assert_eq!(sem.get_value(), 1);
/// # Ok(())
/// # }
/// ```
#[must_use = "the unit is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct SemaphoreGuard<'a> {
    semaphore: &'a Semaphore,
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        // Only if other releases took the value to u32::MAX meanwhile does this fail; the unit
        // is then dropped rather than wrap the count to zero.
        let _ = self.semaphore.add_one();
    }
}

impl Semaphore {
    /// A semaphore with `value` units (Python's `Semaphore(value)`).
    pub fn new(value: u32) -> Result<Semaphore, ShmError> {
        let state: Shared<State> = Shared::new()?;
        state.count.store(value, Ordering::Release);
        Ok(Semaphore { state })
    }

    /// Takes a unit, waiting as long as it takes (Python's `with sem:`).
    pub fn lock(&self) -> SemaphoreGuard<'_> {
        self.take(None);
        SemaphoreGuard { semaphore: self }
    }

    /// Takes a unit if one is left now (Python's `acquire(block=False)`).
    pub fn try_lock(&self) -> Option<SemaphoreGuard<'_>> {
        self.take(Some(Instant::now()))
            .then(|| SemaphoreGuard { semaphore: self })
    }

    /// Takes a unit, waiting at most `timeout` (Python's `acquire(timeout=..)`).
    pub fn lock_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
        self.take(crate::util::deadline(timeout))
            .then(|| SemaphoreGuard { semaphore: self })
    }

    /// Takes a unit, waiting as long as it takes (Python's `acquire()`); give it back with
    /// [`release`](Semaphore::release). [`try_acquire`](Semaphore::try_acquire) and
    /// [`acquire_timeout`](Semaphore::acquire_timeout) are Python's `acquire(block=False)` and
    /// `acquire(timeout=..)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::sync::Semaphore;
    /// use std::time::Duration;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let sem = Semaphore::new(2)?;
    /// sem.acquire();
    /// assert!(sem.try_acquire());
    /// assert!(!sem.acquire_timeout(Duration::from_millis(10))); // none left
    /// sem.release()?;
    /// assert_eq!(sem.get_value(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn acquire(&self) {
        self.take(None);
    }

    /// Takes a unit if one is left now (Python's `acquire(block=False)`): whether it did.
    pub fn try_acquire(&self) -> bool {
        self.take(Some(Instant::now()))
    }

    /// Takes a unit, waiting at most `timeout` (Python's `acquire(timeout=..)`): whether it
    /// did.
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.take(crate::util::deadline(timeout))
    }

    /// Gives a unit back (Python's `release()`). A plain semaphore may go past its initial
    /// value, up to `u32::MAX`.
    ///
    /// # Errors
    ///
    /// [`SyncError::SemaphoreOverflow`] if the value is already `u32::MAX`; it is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::sync::{Semaphore, SyncError};
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let sem = Semaphore::new(u32::MAX - 1)?;
    /// sem.release()?;
    /// assert_eq!(sem.release(), Err(SyncError::SemaphoreOverflow));
    /// assert_eq!(sem.get_value(), u32::MAX);
    /// # Ok(())
    /// # }
    /// ```
    pub fn release(&self) -> Result<(), SyncError> {
        self.add_one()
    }

    /// The units left (Python's `get_value()`).
    pub fn get_value(&self) -> u32 {
        self.state.count.load(Ordering::Relaxed)
    }

    fn take(&self, deadline: Option<Instant>) -> bool {
        let count = &self.state.count;
        loop {
            let c = count.load(Ordering::Relaxed);
            if c > 0 {
                if count
                    .compare_exchange_weak(c, c - 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return true;
                }
                continue;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            self.state.sleepers.fetch_add(1, Ordering::SeqCst);
            futex::wait(count, 0, deadline);
            self.state.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Adds a unit unless the value is `u32::MAX`, and wakes a sleeper.
    fn add_one(&self) -> Result<(), SyncError> {
        self.state
            .count
            .fetch_update(Ordering::SeqCst, Ordering::Relaxed, |c| c.checked_add(1))
            .map_err(|_| SyncError::SemaphoreOverflow)?;
        self.wake_one();
        Ok(())
    }

    fn wake_one(&self) {
        if self.state.sleepers.load(Ordering::SeqCst) > 0 {
            futex::wake_one(&self.state.count);
        }
    }
}

/// A semaphore that refuses to be released past its initial value (Python's
/// `multiprocessing.BoundedSemaphore(value)`): such a release is
/// [`SyncError::TooManyReleases`].
///
/// # Examples
///
/// ```
/// use multiproc::sync::{BoundedSemaphore, SyncError};
///
/// # fn main() -> multiproc::Result<()> {
/// let sem = BoundedSemaphore::new(1)?;
/// sem.acquire();
/// sem.release()?;
/// assert_eq!(sem.release(), Err(SyncError::TooManyReleases { initial: 1 }));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BoundedSemaphore {
    semaphore: Semaphore,
    initial: u32,
}

impl BoundedSemaphore {
    /// A bounded semaphore with `value` units, never more.
    pub fn new(value: u32) -> Result<BoundedSemaphore, ShmError> {
        Ok(BoundedSemaphore {
            semaphore: Semaphore::new(value)?,
            initial: value,
        })
    }

    /// Takes a unit, waiting as long as it takes.
    pub fn lock(&self) -> SemaphoreGuard<'_> {
        self.semaphore.lock()
    }

    /// Takes a unit if one is left now.
    pub fn try_lock(&self) -> Option<SemaphoreGuard<'_>> {
        self.semaphore.try_lock()
    }

    /// Takes a unit, waiting at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
        self.semaphore.lock_timeout(timeout)
    }

    /// Takes a unit, waiting as long as it takes (Python's `acquire()`).
    pub fn acquire(&self) {
        self.semaphore.acquire()
    }

    /// Takes a unit if one is left now (Python's `acquire(block=False)`): whether it did.
    pub fn try_acquire(&self) -> bool {
        self.semaphore.try_acquire()
    }

    /// Takes a unit, waiting at most `timeout` (Python's `acquire(timeout=..)`): whether it
    /// did.
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.semaphore.acquire_timeout(timeout)
    }

    /// Gives a unit back (Python's `release()`).
    ///
    /// # Errors
    ///
    /// [`SyncError::TooManyReleases`] past the initial value; the count is unchanged.
    pub fn release(&self) -> Result<(), SyncError> {
        let count = &self.semaphore.state.count;
        let mut c = count.load(Ordering::Relaxed);
        loop {
            if c >= self.initial {
                return Err(SyncError::TooManyReleases {
                    initial: self.initial,
                });
            }
            match count.compare_exchange_weak(c, c + 1, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => c = now,
            }
        }
        self.semaphore.wake_one();
        Ok(())
    }

    /// The units left (Python's `get_value()`).
    pub fn get_value(&self) -> u32 {
        self.semaphore.get_value()
    }
}
