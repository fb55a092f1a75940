//! The owner word under `Lock` and `RLock`: a 64-bit word holding the owner id of its holder
//! (see [`owner`]), 0 when free, with a waiters bit in the low half, which is the futex.
//!
//! Uncontended, acquiring is one compare-and-swap and releasing one swap. A contended acquirer
//! spins briefly ([`Patience::LOCK`]), then sets the waiters bit and sleeps on the futex; it wakes at least every
//! [`CHECK_EVERY`] to ask whether the holder still lives, and takes the lock over from a dead
//! holder, reporting it. A release wakes one sleeper and a spare (the futex layer's hand-off),
//! so a waiter killed as it is woken does not keep the others asleep until their next check.

use crate::sys::backoff::{watch, Patience};
use crate::sys::{futex, owner};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Set in the word while processes or threads may sleep on it.
const WAITERS: u64 = 1 << 31;
/// How often a sleeping acquirer checks that the holder is alive.
pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(100);

/// How an acquire ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// The caller holds the word.
    Yes,
    /// The caller holds the word, taken over from a holder that died; its pid or thread id.
    FromDead(u32),
    /// The deadline passed (or, for a try, the word is held).
    No,
}

/// Takes the word for `me` without waiting.
#[inline]
pub(crate) fn try_acquire(word: &AtomicU64, me: u64) -> bool {
    word.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
}

/// Takes the word for `me`, waiting until `deadline` (`None`: no limit).
#[inline]
pub(crate) fn acquire(word: &AtomicU64, me: u64, deadline: Option<Instant>) -> Acquired {
    if try_acquire(word, me) {
        Acquired::Yes
    } else {
        acquire_slow(word, me, deadline)
    }
}

#[cold]
fn acquire_slow(word: &AtomicU64, me: u64, deadline: Option<Instant>) -> Acquired {
    // A lock held for a few instructions is often free again after a short spin.
    if watch(Patience::LOCK, None, || {
        word.load(Ordering::Relaxed) == 0 && try_acquire(word, me)
    }) {
        return Acquired::Yes;
    }
    loop {
        let held = word.load(Ordering::Relaxed);
        if held == 0 {
            // We were a waiter, so others may be: keep the bit so that release wakes them.
            if word
                .compare_exchange(0, me | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Acquired::Yes;
            }
            continue;
        }
        if held & WAITERS == 0
            && word
                .compare_exchange(held, held | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            continue;
        }
        let held = held | WAITERS;
        let check_at = Instant::now() + CHECK_EVERY;
        let until = deadline.map_or(check_at, |d| d.min(check_at));
        if futex::wait_low_half(word, held as u32, Some(until)) == futex::Wake::Woken {
            continue;
        }
        if let Some(dead) = take_from_dead(word, held, me) {
            return Acquired::FromDead(dead);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Acquired::No;
        }
    }
}

/// If the holder recorded in `held` has died and the word still says so, takes it for `me`.
fn take_from_dead(word: &AtomicU64, held: u64, me: u64) -> Option<u32> {
    if word.load(Ordering::Relaxed) != held || !owner::is_dead(held & !WAITERS) {
        return None;
    }
    word.compare_exchange(held, me | WAITERS, Ordering::Acquire, Ordering::Relaxed)
        .ok()
        .map(|_| owner::os_id(held))
}

/// Frees the word; returns the holder it had (0: it was free), waking a sleeper if any.
#[inline]
pub(crate) fn release(word: &AtomicU64) -> u64 {
    let held = word.swap(0, Ordering::Release);
    if held & WAITERS != 0 {
        futex::wake_low_half(word, 1);
    }
    held & !WAITERS
}

/// Frees the word if `me` holds it (waking a sleeper if any); whether it did. A holder whose
/// hold may have been released under it (Python lets any thread release a `Lock`) ends with
/// this, so as not to free a hold that someone else took since.
pub(crate) fn release_held_by(word: &AtomicU64, me: u64) -> bool {
    let mut held = word.load(Ordering::Relaxed);
    while held & !WAITERS == me {
        match word.compare_exchange_weak(held, 0, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => {
                if held & WAITERS != 0 {
                    futex::wake_low_half(word, 1);
                }
                return true;
            }
            Err(now) => held = now,
        }
    }
    false
}

/// The owner id holding the word, or 0.
#[inline]
pub(crate) fn holder(word: &AtomicU64) -> u64 {
    word.load(Ordering::Relaxed) & !WAITERS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::futex::testing;
    use std::time::Duration;

    #[test]
    fn a_release_taken_by_a_waiter_killed_as_it_wakes_reaches_the_next_one() {
        let block = crate::shm::Block::new(8, 8).unwrap();
        let word = block.atomic_u64(0).unwrap();
        assert_eq!(acquire(word, owner::process(), None), Acquired::Yes);
        let first = {
            let block = block.clone();
            testing::spawn_killed_when_woken(move || {
                // What a contended acquirer does before it sleeps.
                let word = block.atomic_u64(0).unwrap();
                let held = word.fetch_or(WAITERS, Ordering::Relaxed) | WAITERS;
                let give_up = Instant::now() + Duration::from_secs(10);
                futex::wait_low_half(word, held as u32, Some(give_up));
            })
        };
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let next = {
            let block = block.clone();
            std::thread::spawn(move || {
                tid_tx.send(owner::os_id(owner::thread())).unwrap();
                let word = block.atomic_u64(0).unwrap();
                let give_up = Instant::now() + Duration::from_secs(10);
                let took = acquire(word, owner::thread(), Some(give_up));
                (took, Instant::now())
            })
        };
        testing::wait_until_asleep(tid_rx.recv().unwrap() as i32);
        let released_at = Instant::now();
        assert_eq!(release(word), owner::process());
        let (took, at) = next.join().unwrap();
        assert!(
            matches!(
                first.join_timeout(Duration::from_secs(5)),
                Err(crate::Error::Signaled { signal: 9, .. })
            ),
            "the first waiter took the wake-up and was killed"
        );
        assert_eq!(took, Acquired::Yes);
        let latency = at - released_at;
        assert!(
            latency < Duration::from_millis(50),
            "took after {latency:?}"
        );
    }
}
