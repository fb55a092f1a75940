//! The server's condition variable (Python's `manager.Condition()`): a lock, and the waits
//! parked until a notify. A wait releases the lock and sleeps; a notify, or the wait's
//! deadline, moves it to the lock's queue, and it is answered once it holds the lock again,
//! with whether it was notified: `(bool, Option<i32>)`, the second the pid of a lock holder
//! that died meanwhile.

use super::protocol::Reply;
use super::table::ok;
use super::waiting::{Caller, Lock, Outbox, Waiters};
use super::ServerError;
use std::time::Instant;

#[derive(Default)]
pub(crate) struct Condition {
    pub(crate) lock: Lock,
    /// The waits not yet notified.
    pub(crate) sleepers: Waiters,
}

impl Condition {
    pub(crate) fn wait(
        &mut self,
        caller: Caller,
        deadline: Option<Instant>,
        out: &mut Outbox,
    ) -> Option<Reply> {
        if !self.lock.is_held_by(caller) {
            return Some(Err(ServerError::NotHeld));
        }
        self.lock.release_all(out);
        self.sleepers.park(caller, deadline);
        None
    }

    /// Moves up to `n` sleepers to the lock (Python's `notify(n)`); the caller must hold it.
    pub(crate) fn notify(&mut self, caller: Caller, n: u64, out: &mut Outbox) -> Reply {
        if !self.lock.is_held_by(caller) {
            return Err(ServerError::NotHeld);
        }
        for _ in 0..n {
            let Some(sleeper) = self.sleepers.next() else {
                break;
            };
            self.lock.reacquire(sleeper, true, out);
        }
        ok(&())
    }

    /// Waits whose deadline passed take the lock back, not notified; plain acquires of the
    /// lock time out as a lock's do.
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Outbox) {
        for sleeper in self.sleepers.take_expired(now) {
            self.lock.reacquire(sleeper, false, out);
        }
        self.lock.waiters.expire(now, &ok(&Lock::TIMED_OUT), out);
    }

    pub(crate) fn forget(&mut self, client: u64, out: &mut Outbox) {
        self.sleepers.forget(client);
        self.lock.forget(client, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const A: Caller = Caller { id: 1, pid: 100 };
    const B: Caller = Caller { id: 2, pid: 200 };

    #[test]
    fn a_notified_wait_is_answered_once_it_holds_the_lock_again() {
        let now = Instant::now();
        let (mut cond, mut out) = (Condition::default(), Outbox::new());
        assert_eq!(
            cond.wait(A, None, &mut out),
            Some(Err(ServerError::NotHeld))
        );
        assert!(cond.lock.acquire(A, None, now).is_some());
        assert_eq!(cond.wait(A, None, &mut out), None, "asleep, the lock free");
        assert!(cond.lock.acquire(B, None, now).is_some());
        assert_eq!(cond.notify(B, 1, &mut out), ok(&()));
        assert!(out.is_empty(), "B still holds the lock");
        assert_eq!(cond.lock.release(B, &mut out), ok(&()));
        assert_eq!(out, [(A.id, ok(&(true, None::<i32>)))]);
        assert!(cond.lock.is_held_by(A));
    }

    #[test]
    fn a_wait_that_times_out_takes_the_lock_back_unnotified() {
        let now = Instant::now();
        let (mut cond, mut out) = (Condition::default(), Outbox::new());
        cond.lock.acquire(A, None, now);
        let soon = now + Duration::from_millis(5);
        assert_eq!(cond.wait(A, Some(soon), &mut out), None);
        assert_eq!(cond.sleepers.next_deadline(), Some(soon));
        cond.expire(soon, &mut out);
        assert_eq!(out, [(A.id, ok(&(false, None::<i32>)))]);
        assert_eq!(cond.notify(B, 1, &mut out), Err(ServerError::NotHeld));
    }
}
