//! `Barrier`: a fixed number of parties wait until all have arrived (Python's
//! `multiprocessing.Barrier`).
//!
//! The state is a phase word (generation << 1 | broken bit), which waiters sleep on, so that
//! both a trip (next generation) and a break wake them without a lost wake-up; and an arrival
//! count, changed under a small owner-word lock (a process killed inside it breaks the barrier
//! instead of deadlocking it).

use super::raw::{self, Acquired};
use super::SyncError;
use crate::shm::Shared;
use crate::sys::{futex, owner};
use crate::task::{registry, Task, TaskRef};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const BROKEN: u32 = 1;

#[repr(C)]
struct State {
    /// Guards `count` and the phase's changes.
    lock: AtomicU64,
    /// generation << 1 | BROKEN.
    phase: AtomicU32,
    /// Parties waiting in the current generation.
    count: AtomicU32,
    /// One more than the last generation whose waiters a `reset` broke (0: none).
    reset_of: AtomicU32,
}

// SAFETY: atomics only, valid when zero (free, generation 0, not broken, nobody waiting).
unsafe impl crate::shm::SharedState for State {}

/// A barrier for `parties` processes or threads (Python's `multiprocessing.Barrier(parties,
/// action, timeout)`).
///
/// [`wait`](Barrier::wait) returns a distinct index in `0..parties` to each party of a round.
/// A wait that times out, an [`abort`](Barrier::abort), or a [`reset`](Barrier::reset) while
/// parties wait breaks the barrier: every waiter gets [`SyncError::BrokenBarrier`], and so does
/// every later wait until `reset`.
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
/// use std::time::Duration;
///
/// #[process_task]
/// fn meet(barrier: Barrier) -> u32 {
///     barrier.wait().expect("wait")
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let barrier = Barrier::new(2)?.timeout(Duration::from_secs(10));
/// let child = Process::new(task!(meet, barrier.clone())).start()?;
/// let mine = barrier.wait()?;
/// let theirs = child.join()?;
/// assert_eq!(mine + theirs, 1); // indices 0 and 1, one each
///
/// barrier.abort();
/// assert!(barrier.broken());
/// assert_eq!(barrier.wait(), Err(multiproc::sync::SyncError::BrokenBarrier));
/// barrier.reset();
/// assert!(!barrier.broken());
/// # Ok(())
/// # }
/// ```
///
/// # Dead processes
///
/// The barrier counts arrivals, not processes, as CPython's does, and neither notices a party
/// that dies:
///
/// - A party that dies *while waiting* stays counted for its round: when the others arrive, the
///   round trips without it, and they go on as if it had been there.
/// - A party that dies *before arriving* never arrives: the round cannot fill, and the others
///   wait until their timeout (or the barrier's default one, see
///   [`timeout`](Barrier::timeout)) breaks the barrier, or for ever without one. Give the
///   barrier a timeout where a party may die; after the break, [`reset`](Barrier::reset) starts
///   afresh with no one counted.
/// - A process killed while it changes the count breaks the barrier rather than deadlock it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Barrier {
    state: Shared<State>,
    parties: u32,
    timeout: Option<Duration>,
    /// The task run by the last party to arrive, before the others go on.
    action: Option<String>,
}

impl Barrier {
    /// A barrier for `parties` (at least 1) with no action and no default timeout (Python's
    /// `Barrier(parties)`).
    ///
    /// # Errors
    ///
    /// [`SyncError::NoParties`] for zero parties; [`SyncError::SharedMemory`] if its shared
    /// memory cannot be made.
    pub fn new(parties: u32) -> Result<Barrier, SyncError> {
        if parties == 0 {
            return Err(SyncError::NoParties);
        }
        Ok(Barrier {
            state: Shared::new().map_err(|e| SyncError::SharedMemory(e.to_string()))?,
            parties,
            timeout: None,
            action: None,
        })
    }

    /// Runs the task `action` (a `#[process_task]` without parameters) in the last party to
    /// arrive, before any party goes on (Python's `action=`); if it panics, the barrier breaks.
    pub fn action<T: Task>(mut self, action: TaskRef<T>) -> Self {
        self.action = Some(action.name().to_owned());
        self
    }

    /// The timeout of [`wait`](Barrier::wait) (Python's `timeout=`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The number of parties (Python's `parties`).
    pub fn parties(&self) -> u32 {
        self.parties
    }

    /// How many parties wait now (Python's `n_waiting`).
    pub fn n_waiting(&self) -> u32 {
        self.state.count.load(Ordering::Relaxed)
    }

    /// Whether the barrier is broken (Python's `broken`).
    pub fn broken(&self) -> bool {
        self.state.phase.load(Ordering::Acquire) & BROKEN != 0
    }

    /// Waits for all parties, at most the default timeout; this party's index (Python's
    /// `wait()`).
    ///
    /// # Errors
    ///
    /// [`SyncError::BrokenBarrier`] if the barrier is or becomes broken (an abort, a reset, a
    /// timeout of any party, or an action that panicked).
    pub fn wait(&self) -> Result<u32, SyncError> {
        self.wait_until(self.timeout.and_then(crate::util::deadline))
    }

    /// Waits for all parties, at most `timeout` (Python's `wait(timeout)`).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u32, SyncError> {
        self.wait_until(crate::util::deadline(timeout))
    }

    /// Breaks the barrier: every waiter, and every later wait until `reset`, gets
    /// [`SyncError::BrokenBarrier`] (Python's `abort()`).
    pub fn abort(&self) {
        self.with_lock(|| self.break_phase());
    }

    /// Returns the barrier to its empty, unbroken state; parties waiting now get
    /// [`SyncError::BrokenBarrier`] (Python's `reset()`).
    pub fn reset(&self) {
        self.with_lock(|| {
            let generation = self.state.phase.load(Ordering::Relaxed) >> 1;
            self.state
                .reset_of
                .store(generation.wrapping_add(1), Ordering::Relaxed);
            self.state.count.store(0, Ordering::Relaxed);
            self.advance(generation);
        });
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<u32, SyncError> {
        let arrival = self.with_lock(|| {
            let phase = self.state.phase.load(Ordering::Relaxed);
            if phase & BROKEN != 0 {
                return Err(SyncError::BrokenBarrier);
            }
            let index = self.state.count.fetch_add(1, Ordering::Relaxed);
            if index + 1 < self.parties {
                return Ok((index, Some(phase)));
            }
            self.state.count.store(0, Ordering::Relaxed);
            if self.run_action() {
                self.advance(phase >> 1);
                Ok((index, None))
            } else {
                self.break_phase();
                Err(SyncError::BrokenBarrier)
            }
        })?;
        match arrival {
            (index, None) => Ok(index),
            (index, Some(phase)) => self.sleep(phase, deadline).map(|()| index),
        }
    }

    /// Sleeps until the round of `phase` trips (Ok) or breaks.
    fn sleep(&self, phase: u32, deadline: Option<Instant>) -> Result<(), SyncError> {
        loop {
            let now = self.state.phase.load(Ordering::Acquire);
            if now == phase | BROKEN {
                return Err(SyncError::BrokenBarrier);
            }
            if now != phase {
                let reset_of = self.state.reset_of.load(Ordering::Relaxed);
                return if reset_of == (phase >> 1).wrapping_add(1) {
                    Err(SyncError::BrokenBarrier)
                } else {
                    Ok(())
                };
            }
            if futex::wait(&self.state.phase, phase, deadline) == futex::Wake::TimedOut {
                self.with_lock(|| {
                    if self.state.phase.load(Ordering::Relaxed) == phase {
                        self.break_phase();
                    }
                });
            }
        }
    }

    /// Runs the action, if any; whether it succeeded.
    fn run_action(&self) -> bool {
        match &self.action {
            None => true,
            Some(name) => registry::lookup(name).is_ok_and(|entry| entry.invoke(&[]).is_ok()),
        }
    }

    /// Starts generation `generation + 1`, unbroken, and wakes the waiters.
    fn advance(&self, generation: u32) {
        let next = generation.wrapping_add(1) << 1;
        self.state.phase.store(next, Ordering::Release);
        futex::wake_all(&self.state.phase);
    }

    fn break_phase(&self) {
        self.state.phase.fetch_or(BROKEN, Ordering::Release);
        self.state.count.store(0, Ordering::Relaxed);
        futex::wake_all(&self.state.phase);
    }

    /// Runs `f` under the state lock; a holder that died inside it breaks the barrier first.
    fn with_lock<R>(&self, f: impl FnOnce() -> R) -> R {
        let me = owner::process();
        if let Acquired::FromDead(_) = raw::acquire(&self.state.lock, me, None) {
            self.break_phase();
        }
        let result = f();
        raw::release(&self.state.lock);
        result
    }
}
