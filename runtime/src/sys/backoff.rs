//! How a thread waits for something due soon before it sleeps: the one policy of every waiter
//! in the crate, with its budgets and their reasons in this file.
//!
//! A waiter looks, and between looks either spins the CPU (`spin_loop`, more pauses each time,
//! up to a cap) or gives it up (`yield_now`); once its [`Patience`] is spent it parks (a futex,
//! a socket, a condition variable: the caller's business). Patience is counted in looks, as
//! crossbeam's `Backoff` and parking_lot's `SpinWait` count theirs, not in wall-clock time: a
//! time bound makes more system calls the faster the machine, and costs a clock read per look.

use std::time::Instant;

/// The most pauses between two spinning looks: each look takes the watched cache line away
/// from the thread that will write it, so looking less often lets that thread run.
const MAX_PAUSES: u32 = 32;

/// How many looks a waiter takes before it parks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Patience {
    /// Looks after spinning: before the `i`-th, `2^i` pauses, at least `min_pauses` and at
    /// most [`MAX_PAUSES`].
    spins: u32,
    /// The fewest pauses between two spinning looks.
    min_pauses: u32,
    /// Looks after those, each after giving the CPU up.
    yields: u32,
}

impl Patience {
    /// A lock word. Its holder keeps it for a few instructions while it runs, so a short spin
    /// (about a hundred pauses) sees the release; a holder that is not running will not release
    /// soon, and yielding would not bring it back sooner than parking does.
    pub(crate) const LOCK: Patience = Patience {
        spins: 7,
        min_pauses: 1,
        yields: 0,
    };

    /// A queue's commit word. A producer and a consumer usually run at once on two CPUs and
    /// items come in bursts, so a getter spins for about as long as a sleep and a wake-up cost
    /// (some 120 looks of 32 pauses) rather than park between items. It looks only every 32
    /// pauses from the first look on: each look takes the word's cache line from the putter,
    /// and a getter that looks less often finds several items at once (looking sooner at
    /// first, as a lock does, cost 40 % of the small-message rate).
    pub(crate) const QUEUE: Patience = Patience {
        spins: 120,
        min_pauses: MAX_PAUSES,
        yields: 0,
    };

    /// A pool's caller waiting for a result (`get`, `wait`). The thread it waits for (the
    /// result thread, a worker) may need this very CPU: a pool has more such threads than a
    /// small machine has CPUs. So it never spins, and gives the CPU up at every look, for about
    /// as long as a wake-up costs (100 yields).
    pub(crate) const CALLER: Patience = Patience {
        spins: 0,
        min_pauses: 0,
        yields: 100,
    };

    /// A pool's result thread watching the workers' rings, and a worker that has answered
    /// watching for its next chunk: as [`CALLER`](Patience::CALLER), over a longer span, since
    /// the next chunk or part is usually a task's run time away, and a sleep and a wake-up on
    /// both sides cost more than the look.
    pub(crate) const POOL: Patience = Patience {
        spins: 0,
        min_pauses: 0,
        yields: 250,
    };
}

/// A waiter's progress through its [`Patience`].
pub(crate) struct Backoff {
    step: u32,
    patience: Patience,
}

impl Backoff {
    pub(crate) fn new(patience: Patience) -> Backoff {
        Backoff { step: 0, patience }
    }

    /// Waits before the next look; `false` once the patience is spent and the caller should
    /// park instead.
    #[inline]
    pub(crate) fn snooze(&mut self) -> bool {
        let Patience {
            spins,
            min_pauses,
            yields,
        } = self.patience;
        if self.step < spins {
            let pauses = (1u32 << self.step.min(5)).clamp(min_pauses, MAX_PAUSES);
            for _ in 0..pauses {
                std::hint::spin_loop();
            }
        } else if self.step < spins + yields {
            std::thread::yield_now();
        } else {
            return false;
        }
        self.step += 1;
        true
    }
}

/// Looks at `ready` with `patience`, and not past `deadline`; whether it held before either ran
/// out.
pub(crate) fn watch(
    patience: Patience,
    deadline: Option<Instant>,
    mut ready: impl FnMut() -> bool,
) -> bool {
    let mut backoff = Backoff::new(patience);
    loop {
        if ready() {
            return true;
        }
        if !backoff.snooze() || deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_watch_ends_as_soon_as_its_condition_holds() {
        let mut looks = 0;
        let held = watch(Patience::POOL, None, || {
            looks += 1;
            looks == 3
        });
        assert!(held);
        assert_eq!(looks, 3);
    }

    #[test]
    fn a_watch_gives_up_after_its_patience_in_looks() {
        for patience in [
            Patience::LOCK,
            Patience::QUEUE,
            Patience::CALLER,
            Patience::POOL,
        ] {
            let mut looks = 0;
            assert!(!watch(patience, None, || {
                looks += 1;
                false
            }));
            assert_eq!(looks, patience.spins + patience.yields + 1, "{patience:?}");
        }
    }

    #[test]
    fn a_watch_gives_up_at_its_deadline() {
        let start = Instant::now();
        let patience = Patience {
            spins: 0,
            min_pauses: 0,
            yields: u32::MAX,
        };
        assert!(!watch(
            patience,
            Some(start + Duration::from_millis(20)),
            || false
        ));
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(20), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
}
