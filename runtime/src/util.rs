//! Small helpers every layer uses (Python's `multiprocessing.util` has their like): a lock that
//! ignores poisoning, and the one way a timeout becomes a deadline.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Locks `mutex`, ignoring poisoning: nothing in this crate panics while holding a lock, and a
/// caller's panic elsewhere must not make children or results unreachable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The instant `timeout` from now, or `None` (no limit) when that lies past what an `Instant`
/// can hold: every timed operation goes through here, so `Duration::MAX` means "wait for ever"
/// everywhere rather than an overflow panic in one place and a wait in another.
pub(crate) fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_timeout_is_no_deadline_and_a_small_one_is_soon() {
        assert_eq!(deadline(Duration::MAX), None);
        let soon = deadline(Duration::from_secs(1)).unwrap();
        assert!(soon > Instant::now() && soon <= Instant::now() + Duration::from_secs(1));
    }
}
