//! A process-private lock that a forked child can always take.
//!
//! A `std::sync::Mutex` held by another thread at the moment of `fork` stays locked forever in
//! the child, which has only the forking thread. This lock records the holding process; a child
//! that finds it held by another process (its parent, before the fork, in memory that is now a
//! private copy) takes it over and starts from `T::default()`, leaking the possibly
//! half-updated value rather than reading it. It suits small process-local tables (the segment
//! table), whose loss only costs work again.

use super::backoff::{Backoff, Patience};
use super::owner;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, Ordering};

/// A spin-then-yield lock around a `T`, safe to take in a forked child.
pub(crate) struct ForkSafeLock<T> {
    holder: AtomicU32,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through `with`, which holds the lock (one holder at a time).
unsafe impl<T: Send> Sync for ForkSafeLock<T> {}

impl<T: Default> ForkSafeLock<T> {
    pub(crate) const fn new(value: T) -> Self {
        ForkSafeLock {
            holder: AtomicU32::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// Runs `f` on the value under the lock. `f` must be short: waiters spin, then yield, and
    /// never park (a release wakes nobody, so that it costs one store).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let me = owner::pid();
        let mut backoff = Backoff::new(Patience::LOCK);
        loop {
            match self
                .holder
                .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(holder) if holder != me => {
                    // Held by the parent at fork time: its holder thread does not exist here.
                    if self
                        .holder
                        .compare_exchange(holder, me, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        // SAFETY: we hold the lock now; the old value may be half-updated, so
                        // it is leaked, never read or dropped.
                        std::mem::forget(std::mem::take(unsafe { &mut *self.value.get() }));
                        break;
                    }
                }
                Err(_) => {
                    if !backoff.snooze() {
                        std::thread::yield_now();
                    }
                }
            }
        }
        // SAFETY: we hold the lock, so no other reference to the value exists until we release.
        let result = f(unsafe { &mut *self.value.get() });
        self.holder.store(0, Ordering::Release);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    static TABLE: ForkSafeLock<Vec<u32>> = ForkSafeLock::new(Vec::new());

    #[test]
    fn a_child_forked_while_another_thread_holds_the_lock_can_take_it() {
        let (held, wait_held) = mpsc::channel();
        let holder = std::thread::spawn(move || {
            TABLE.with(|table| {
                table.push(1);
                let _ = held.send(());
                std::thread::sleep(Duration::from_millis(500));
            })
        });
        wait_held.recv().unwrap();
        let child = crate::Process::fork(|| TABLE.with(|table| table.len())).unwrap();
        let seen = child.join_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(
            seen,
            Some(0),
            "the child starts from an empty table, without waiting"
        );
        holder.join().unwrap();
        assert_eq!(
            TABLE.with(|table| table.len()),
            1,
            "the parent keeps its table"
        );
    }
}
