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

/// A condition variable served by a [`Manager`](super::Manager) (Python's
/// `manager.Condition()`), with a lock of its own and the crate's
/// [`Condition`](crate::Condition)'s method names. `wait` and `notify` need the lock held by this
/// connection (process and thread); a wait releases it while it sleeps, and holds it again when
/// it returns, as in Python.
///
/// # Examples
///
/// ```
/// use multiproc::managers::Manager;
/// use std::time::Duration;
///
/// # fn main() -> multiproc::Result<()> {
/// let manager = Manager::start()?;
/// let cond = manager.condition()?;
/// cond.acquire()?;
/// assert!(!cond.wait_timeout(Duration::from_millis(20))?, "nobody notified");
/// assert!(cond.is_locked()?, "held again after the wait");
/// cond.notify_all()?;
/// cond.release()?;
/// # Ok(())
/// # }
/// ```
pub struct ConditionProxy {
    handle: Handle,
    /// No type: the field the proxies' common traits build with.
    types: PhantomData<()>,
}

proxy_traits!(ConditionProxy);

impl ConditionProxy {
    /// The condition's lock, seen as a [`LockProxy`]: the same object.
    fn lock(&self) -> LockProxy {
        LockProxy::from_handle(self.handle)
    }

    /// Takes the condition's lock (Python's `cond.acquire()`).
    ///
    /// # Errors
    ///
    /// As [`LockProxy::acquire`].
    pub fn acquire(&self) -> Result<(), ManagerError> {
        self.lock().acquire()
    }

    /// Waits at most `timeout` for the condition's lock; whether it took it.
    ///
    /// # Errors
    ///
    /// As [`LockProxy::acquire`].
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        self.lock().acquire_timeout(timeout)
    }

    /// Releases the condition's lock (Python's `cond.release()`).
    ///
    /// # Errors
    ///
    /// As [`LockProxy::release`].
    pub fn release(&self) -> Result<(), ManagerError> {
        self.lock().release()
    }

    /// Whether someone holds the condition's lock.
    ///
    /// # Errors
    ///
    /// The manager gone or shut down.
    pub fn is_locked(&self) -> Result<bool, ManagerError> {
        self.lock().is_locked()
    }

    /// Releases the lock, waits for a notify, and takes the lock back (Python's
    /// `cond.wait()`); `true`.
    ///
    /// # Errors
    ///
    /// [`ServerError::NotHeld`](super::ServerError::NotHeld) if this connection does not hold
    /// the lock; [`ManagerError::OwnerDied`] if the lock came back from a holder that died (it
    /// is held again all the same); otherwise the manager gone or shut down.
    pub fn wait(&self) -> Result<bool, ManagerError> {
        self.wait_within(None)
    }

    /// As [`wait`](ConditionProxy::wait), waiting at most `timeout` for the notify (Python's
    /// `cond.wait(timeout)`); whether it was notified. The lock is held again either way.
    ///
    /// # Errors
    ///
    /// As [`wait`](ConditionProxy::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        self.wait_within(Some(timeout_micros(timeout)))
    }

    fn wait_within(&self, timeout_micros: Option<u64>) -> Result<bool, ManagerError> {
        let (notified, dead): (bool, Option<i32>) =
            self.handle.call(&Op::ConditionWait { timeout_micros })?;
        match dead {
            Some(pid) => Err(ManagerError::OwnerDied { pid }),
            None => Ok(notified),
        }
    }

    /// Wakes up to `n` waits (Python's `cond.notify(n)`); they return once this connection
    /// releases the lock.
    ///
    /// # Errors
    ///
    /// [`ServerError::NotHeld`](super::ServerError::NotHeld) if this connection does not hold
    /// the lock; otherwise the manager gone or shut down.
    pub fn notify(&self, n: usize) -> Result<(), ManagerError> {
        self.handle.call(&Op::ConditionNotify { n: n as u64 })
    }

    /// Wakes every wait (Python's `cond.notify_all()`).
    ///
    /// # Errors
    ///
    /// As [`notify`](ConditionProxy::notify).
    pub fn notify_all(&self) -> Result<(), ManagerError> {
        self.handle.call(&Op::ConditionNotify { n: u64::MAX })
    }
}
