//! Watching for something due within microseconds before sleeping on it. On a virtual machine a
//! wake-up costs several microseconds, more than the task it waits for, and the pool's caller,
//! result thread and workers wait on one another in turn. So each watches first, for a bounded
//! time, and gives up its CPU at every look: a pool can have more such threads than the machine
//! has CPUs (a caller, the result thread and a worker on two), and a thread that only spins
//! would hold a CPU that the thread it waits for needs.

use std::time::{Duration, Instant};

/// Looks at `ready` until it holds or `span` has passed, yielding the CPU between looks;
/// returns whether it held.
pub(crate) fn watch(span: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + span;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_ends_as_soon_as_its_condition_holds() {
        let mut looks = 0;
        let held = watch(Duration::from_secs(10), || {
            looks += 1;
            looks == 3
        });
        assert!(held);
        assert_eq!(looks, 3);
    }

    #[test]
    fn a_watch_gives_up_once_its_span_has_passed() {
        let start = Instant::now();
        assert!(!watch(Duration::from_millis(20), || false));
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(20), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
}
