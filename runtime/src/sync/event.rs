//! `Event`: a flag that processes wait on (Python's `multiprocessing.Event`).

use crate::shm::{Shared, ShmError};
use crate::sys::futex;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The flag (the futex) and how many may sleep on it.
#[repr(C)]
struct State {
    flag: AtomicU32,
    sleepers: AtomicU32,
}

// SAFETY: two atomics, valid when zero (the flag clear).
unsafe impl crate::shm::SharedState for State {}

/// A flag shared between processes, initially clear (Python's `multiprocessing.Event()`).
///
/// # Examples
///
/// ```
/// use multiproc::sync::Event;
/// use std::time::Duration;
/// # fn main() -> multiproc::Result<()> {
/// let ready = Event::new()?;
/// assert!(!ready.wait_timeout(Duration::from_millis(10)));
/// ready.set();
/// assert!(ready.is_set() && ready.wait());
/// ready.clear();
/// assert!(!ready.is_set());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Event {
    state: Shared<State>,
}

impl Event {
    /// A new, clear event (Python's `Event()`).
    ///
    /// # Errors
    ///
    /// A [`ShmError`] if its shared memory cannot be made.
    pub fn new() -> Result<Event, ShmError> {
        Ok(Event {
            state: Shared::new()?,
        })
    }

    /// Whether the flag is set (Python's `is_set()`).
    pub fn is_set(&self) -> bool {
        self.state.flag.load(Ordering::Acquire) != 0
    }

    /// Sets the flag and wakes every waiter (Python's `set()`).
    pub fn set(&self) {
        self.state.flag.store(1, Ordering::SeqCst);
        if self.state.sleepers.load(Ordering::SeqCst) > 0 {
            futex::wake_all(&self.state.flag);
        }
    }

    /// Clears the flag (Python's `clear()`).
    pub fn clear(&self) {
        self.state.flag.store(0, Ordering::Release);
    }

    /// Waits until the flag is set; returns `true` (Python's `wait()`).
    pub fn wait(&self) -> bool {
        self.wait_until(None)
    }

    /// Waits at most `timeout`; whether the flag is set (Python's `wait(timeout)`).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(crate::util::deadline(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.is_set() {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            self.state.sleepers.fetch_add(1, Ordering::SeqCst);
            futex::wait(&self.state.flag, 0, deadline);
            self.state.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
