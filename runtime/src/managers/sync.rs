//! [`LockProxy`] and [`EventProxy`], Python's `manager.Lock()` and `manager.Event()`: a lock and
//! an event held by a manager, whose waits the server parks and times out.

use super::client::{proxy_traits, Handle};
use super::protocol::{timeout_micros, Op};
use super::ManagerError;
use std::marker::PhantomData;
use std::time::Duration;

/// A lock served by a [`Manager`](super::Manager) (Python's `manager.Lock()`, or
/// `manager.RLock()` from [`Manager::rlock`](super::Manager::rlock)), with the crate's
/// [`Lock`](crate::Lock)'s method names. It is held by the connection that took it (one per
/// process and thread), and anyone may release a plain lock, as in Python. If its holder's connection ends
/// (its process died, or its thread ended) while holding it, the next acquirer gets it with
/// [`ManagerError::OwnerDied`].
///
/// Waits are parked on the server, which enforces their timeouts: a waiting process that dies
/// leaves nothing behind, and one whose manager dies gets [`ManagerError::Gone`] at once.
///
/// # Examples
///
/// ```
/// use multiproc::managers::Manager;
/// use std::time::Duration;
///
/// # fn main() -> multiproc::Result<()> {
/// let manager = Manager::start()?;
/// let lock = manager.lock()?;
/// lock.acquire()?;
/// assert!(!lock.acquire_timeout(Duration::from_millis(20))?);
/// lock.release()?;
/// assert!(lock.try_acquire()?);
/// # Ok(())
/// # }
/// ```
pub struct LockProxy {
    handle: Handle,
    /// No type: the field the proxies' common traits build with.
    types: PhantomData<()>,
}

proxy_traits!(LockProxy);

impl LockProxy {
    /// Waits until the lock is free and takes it (Python's `lock.acquire()`).
    ///
    /// # Errors
    ///
    /// [`ManagerError::OwnerDied`] if it was taken from a holder that died: the lock is now the
    /// caller's. Otherwise the manager gone or shut down.
    pub fn acquire(&self) -> Result<(), ManagerError> {
        self.acquire_within(None).map(|_| ())
    }

    /// Takes the lock if it is free (Python's `lock.acquire(block=False)`); whether it did.
    ///
    /// # Errors
    ///
    /// As [`acquire`](LockProxy::acquire).
    pub fn try_acquire(&self) -> Result<bool, ManagerError> {
        self.acquire_within(Some(0))
    }

    /// Waits at most `timeout` for the lock (Python's `lock.acquire(timeout=t)`); whether it
    /// took it.
    ///
    /// # Errors
    ///
    /// As [`acquire`](LockProxy::acquire).
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        self.acquire_within(Some(timeout_micros(timeout)))
    }

    fn acquire_within(&self, timeout_micros: Option<u64>) -> Result<bool, ManagerError> {
        let answer: Option<Option<i32>> = self.handle.call(&Op::LockAcquire { timeout_micros })?;
        match answer {
            None => Ok(false),
            Some(None) => Ok(true),
            Some(Some(pid)) => Err(ManagerError::OwnerDied { pid }),
        }
    }

    /// Releases the lock (Python's `lock.release()`): a plain lock whoever holds it, a
    /// reentrant one only by its holder, once per take.
    ///
    /// # Errors
    ///
    /// [`ServerError::NotLocked`](super::ServerError::NotLocked) if it is not held,
    /// [`ServerError::NotOwner`](super::ServerError::NotOwner) for a reentrant lock held by
    /// another; otherwise the manager gone or shut down.
    pub fn release(&self) -> Result<(), ManagerError> {
        self.handle.call(&Op::LockRelease)
    }

    /// Whether someone holds the lock.
    ///
    /// # Errors
    ///
    /// The manager gone or shut down.
    pub fn is_locked(&self) -> Result<bool, ManagerError> {
        self.handle.call(&Op::LockIsLocked)
    }
}

/// An event served by a [`Manager`](super::Manager) (Python's `manager.Event()`), with the
/// crate's [`Event`](crate::Event)'s method names; waits are parked on the server, which
/// enforces their timeouts.
///
/// # Examples
///
/// ```
/// use multiproc::managers::Manager;
/// use std::time::Duration;
///
/// # fn main() -> multiproc::Result<()> {
/// let manager = Manager::start()?;
/// let ready = manager.event()?;
/// assert!(!ready.wait_timeout(Duration::from_millis(20))?);
/// ready.set()?;
/// assert!(ready.wait()?);
/// # Ok(())
/// # }
/// ```
pub struct EventProxy {
    handle: Handle,
    /// No type: the field the proxies' common traits build with.
    types: PhantomData<()>,
}

proxy_traits!(EventProxy);

impl EventProxy {
    /// Sets the flag and wakes every waiter (Python's `event.set()`).
    ///
    /// # Errors
    ///
    /// The manager gone or shut down.
    pub fn set(&self) -> Result<(), ManagerError> {
        self.handle.call(&Op::EventSet)
    }

    /// Clears the flag (Python's `event.clear()`).
    ///
    /// # Errors
    ///
    /// As [`set`](EventProxy::set).
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.handle.call(&Op::EventClear)
    }

    /// Whether the flag is set (Python's `event.is_set()`).
    ///
    /// # Errors
    ///
    /// As [`set`](EventProxy::set).
    pub fn is_set(&self) -> Result<bool, ManagerError> {
        self.handle.call(&Op::EventIsSet)
    }

    /// Waits until the flag is set (Python's `event.wait()`); `true`.
    ///
    /// # Errors
    ///
    /// As [`set`](EventProxy::set); [`ManagerError::ShutDown`] if the manager shuts down
    /// meanwhile.
    pub fn wait(&self) -> Result<bool, ManagerError> {
        self.handle.call(&Op::EventWait {
            timeout_micros: None,
        })
    }

    /// Waits at most `timeout` (Python's `event.wait(timeout)`); whether the flag is set.
    ///
    /// # Errors
    ///
    /// As [`wait`](EventProxy::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        self.handle.call(&Op::EventWait {
            timeout_micros: Some(timeout_micros(timeout)),
        })
    }
}

/// A semaphore served by a [`Manager`](super::Manager) (Python's `manager.Semaphore(n)` and
/// `manager.BoundedSemaphore(n)`), with the crate's [`Semaphore`](crate::Semaphore)'s method
/// names; waits are parked on the server, which enforces their timeouts. A unit taken by a
/// process that dies is not given back, as in Python.
///
/// # Examples
///
/// ```
/// use multiproc::managers::{Manager, ManagerError, ServerError};
/// use std::time::Duration;
///
/// # fn main() -> multiproc::Result<()> {
/// let manager = Manager::start()?;
/// let slots = manager.bounded_semaphore(2)?;
/// slots.acquire()?;
/// assert!(slots.try_acquire()?);
/// assert!(!slots.acquire_timeout(Duration::from_millis(20))?);
/// slots.release()?;
/// slots.release()?;
/// assert!(matches!(
///     slots.release(),
///     Err(ManagerError::Server(ServerError::TooManyReleases))
/// ));
/// assert_eq!(slots.get_value()?, 2);
/// # Ok(())
/// # }
/// ```
pub struct SemaphoreProxy {
    handle: Handle,
    /// No type: the field the proxies' common traits build with.
    types: PhantomData<()>,
}

proxy_traits!(SemaphoreProxy);

impl SemaphoreProxy {
    /// Waits for a unit and takes it (Python's `sem.acquire()`).
    ///
    /// # Errors
    ///
    /// The manager gone or shut down (also while waiting).
    pub fn acquire(&self) -> Result<(), ManagerError> {
        self.acquire_within(None).map(|_| ())
    }

    /// Takes a unit if one is free (Python's `sem.acquire(block=False)`); whether it did.
    ///
    /// # Errors
    ///
    /// As [`acquire`](SemaphoreProxy::acquire).
    pub fn try_acquire(&self) -> Result<bool, ManagerError> {
        self.acquire_within(Some(0))
    }

    /// Waits at most `timeout` for a unit (Python's `sem.acquire(timeout=t)`); whether it
    /// took one.
    ///
    /// # Errors
    ///
    /// As [`acquire`](SemaphoreProxy::acquire).
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        self.acquire_within(Some(timeout_micros(timeout)))
    }

    fn acquire_within(&self, timeout_micros: Option<u64>) -> Result<bool, ManagerError> {
        self.handle.call(&Op::SemaphoreAcquire { timeout_micros })
    }

    /// Gives a unit back, to the first waiter if one waits (Python's `sem.release()`).
    ///
    /// # Errors
    ///
    /// [`ServerError::TooManyReleases`](super::ServerError::TooManyReleases) past a bounded
    /// semaphore's initial value; otherwise the manager gone or shut down.
    pub fn release(&self) -> Result<(), ManagerError> {
        self.handle.call(&Op::SemaphoreRelease)
    }

    /// The units free now (Python's `sem.get_value()`).
    ///
    /// # Errors
    ///
    /// The manager gone or shut down.
    pub fn get_value(&self) -> Result<usize, ManagerError> {
        Ok(self.handle.call::<u64>(&Op::SemaphoreValue)? as usize)
    }
}
