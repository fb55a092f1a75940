//! The server's objects that a request can wait on: a lock, an event and a queue. A request
//! that cannot be answered yet is parked with its deadline; the server answers it when the
//! object changes, when the deadline passes (the server enforces every timeout, so a client
//! never needs to cancel), when the manager shuts down, or never, if its client hangs up.

use super::protocol::{Bytes, Reply};
use super::table::ok;
use super::ServerError;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// Which connection sent a request, and from which process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caller {
    pub(crate) id: u64,
    pub(crate) pid: i32,
}

/// Answers for parked requests, to be sent to their connections.
pub(crate) type Outbox = Vec<(u64, Reply)>;

/// Requests parked on one object, first come first served.
#[derive(Default)]
pub(crate) struct Waiters(VecDeque<(Caller, Option<Instant>)>);

impl Waiters {
    pub(crate) fn park(&mut self, caller: Caller, deadline: Option<Instant>) {
        self.0.push_back((caller, deadline));
    }

    pub(crate) fn next(&mut self) -> Option<Caller> {
        self.0.pop_front().map(|(caller, _)| caller)
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.0.iter().filter_map(|(_, deadline)| *deadline).min()
    }

    /// Answers `timed_out` to every request whose deadline has passed.
    pub(crate) fn expire(&mut self, now: Instant, timed_out: &Reply, out: &mut Outbox) {
        self.0.retain(|(caller, deadline)| {
            let expired = deadline.is_some_and(|d| d <= now);
            if expired {
                out.push((caller.id, timed_out.clone()));
            }
            !expired
        });
    }

    /// Takes out the requests whose deadline has passed, unanswered.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Vec<Caller> {
        let mut expired = Vec::new();
        self.0.retain(|(caller, deadline)| {
            let due = deadline.is_some_and(|d| d <= now);
            if due {
                expired.push(*caller);
            }
            !due
        });
        expired
    }

    /// Drops the requests of a connection that hung up.
    pub(crate) fn forget(&mut self, client: u64) {
        self.0.retain(|(caller, _)| caller.id != client);
    }

    /// Answers every parked request with [`ServerError::ShuttingDown`].
    pub(crate) fn refuse_all(&mut self, out: &mut Outbox) {
        self.answer_all(|_| Err(ServerError::ShuttingDown), out);
    }

    /// Answers every parked request, in arrival order: the `i`-th with `answer(i)`.
    fn answer_all(&mut self, answer: impl Fn(usize) -> Reply, out: &mut Outbox) {
        out.extend(
            self.0
                .drain(..)
                .enumerate()
                .map(|(i, (caller, _))| (caller.id, answer(i))),
        );
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether a request with this deadline may wait at all.
fn may_wait(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_none_or(|d| d > now)
}

/// Python's `manager.Lock()`, held by a connection and released by anyone, and
/// `manager.RLock()`, which its holder may take again and only its holder may release. Its
/// answer to an acquire is `Option<Option<i32>>`: `None` timed out, `Some(None)` acquired,
/// `Some(Some(pid))` acquired from process `pid`, which died holding it.
#[derive(Default)]
pub(crate) struct Lock {
    holder: Option<Caller>,
    /// How many times the holder took a reentrant lock.
    depth: u32,
    reentrant: bool,
    /// A holder that hung up while nobody waited: the next acquirer is told.
    dead_holder: Option<i32>,
    pub(crate) waiters: Waiters,
    /// The waiters that are a condition's waits taking the lock back, and whether each was
    /// notified (else it timed out): their answer is `(bool, Option<i32>)`.
    reacquiring: HashMap<u64, bool>,
}

impl Lock {
    pub(crate) const TIMED_OUT: Option<Option<i32>> = None;

    /// A free reentrant lock (Python's `RLock`).
    pub(crate) fn reentrant() -> Self {
        Lock {
            reentrant: true,
            ..Lock::default()
        }
    }

    pub(crate) fn acquire(
        &mut self,
        caller: Caller,
        deadline: Option<Instant>,
        now: Instant,
    ) -> Option<Reply> {
        if self.holder.is_none() {
            self.holder = Some(caller);
            self.depth = 1;
            return Some(ok(&Some(self.dead_holder.take())));
        }
        if self.reentrant && self.holder == Some(caller) {
            self.depth = self.depth.saturating_add(1);
            return Some(ok(&Some(None::<i32>)));
        }
        if !may_wait(deadline, now) {
            return Some(ok(&Self::TIMED_OUT));
        }
        self.waiters.park(caller, deadline);
        None
    }

    pub(crate) fn release(&mut self, caller: Caller, out: &mut Outbox) -> Reply {
        let Some(holder) = self.holder else {
            return Err(ServerError::NotLocked);
        };
        if self.reentrant {
            if holder != caller {
                return Err(ServerError::NotOwner);
            }
            self.depth -= 1;
            if self.depth > 0 {
                return ok(&());
            }
        }
        self.holder = None;
        self.hand_over(out);
        ok(&())
    }

    pub(crate) fn is_locked(&self) -> bool {
        self.holder.is_some()
    }

    /// Gives the free lock to the first waiter, if any.
    fn hand_over(&mut self, out: &mut Outbox) {
        if let Some(next) = self.waiters.next() {
            self.holder = Some(next);
            self.depth = 1;
            let dead = self.dead_holder.take();
            let answer = match self.reacquiring.remove(&next.id) {
                Some(notified) => ok(&(notified, dead)),
                None => ok(&Some(dead)),
            };
            out.push((next.id, answer));
        }
    }

    pub(crate) fn is_held_by(&self, caller: Caller) -> bool {
        self.holder == Some(caller)
    }

    /// Frees the lock however deeply it was taken (a condition's wait), handing it over.
    pub(crate) fn release_all(&mut self, out: &mut Outbox) {
        self.holder = None;
        self.depth = 0;
        self.hand_over(out);
    }

    /// A condition's wait, `notified` or timed out, takes the lock back: at once if it is free,
    /// else in turn, with no deadline (as Python's `wait` re-acquires before it returns).
    pub(crate) fn reacquire(&mut self, caller: Caller, notified: bool, out: &mut Outbox) {
        if self.holder.is_none() {
            self.holder = Some(caller);
            self.depth = 1;
            out.push((caller.id, ok(&(notified, self.dead_holder.take()))));
        } else {
            self.reacquiring.insert(caller.id, notified);
            self.waiters.park(caller, None);
        }
    }

    /// A connection hung up: its waits are dropped, and a lock it held passes on, reported.
    pub(crate) fn forget(&mut self, client: u64, out: &mut Outbox) {
        self.waiters.forget(client);
        self.reacquiring.remove(&client);
        if let Some(holder) = self.holder.filter(|h| h.id == client) {
            self.holder = None;
            self.dead_holder = Some(holder.pid);
            self.hand_over(out);
        }
    }
}

/// Python's `manager.Semaphore(n)` and `manager.BoundedSemaphore(n)`. An acquire answers
/// `bool`: acquired, or timed out.
pub(crate) struct Semaphore {
    value: u64,
    /// A bounded semaphore's initial value, which a release may not pass.
    bound: Option<u64>,
    pub(crate) waiters: Waiters,
}

impl Semaphore {
    pub(crate) fn new(value: u64, bounded: bool) -> Self {
        Semaphore {
            value,
            bound: bounded.then_some(value),
            waiters: Waiters::default(),
        }
    }

    pub(crate) fn acquire(
        &mut self,
        caller: Caller,
        deadline: Option<Instant>,
        now: Instant,
    ) -> Option<Reply> {
        if self.value > 0 {
            self.value -= 1;
            return Some(ok(&true));
        }
        if !may_wait(deadline, now) {
            return Some(ok(&false));
        }
        self.waiters.park(caller, deadline);
        None
    }

    /// Gives the unit to the first waiter, or keeps it.
    pub(crate) fn release(&mut self, out: &mut Outbox) -> Reply {
        if let Some(waiter) = self.waiters.next() {
            out.push((waiter.id, ok(&true)));
            return ok(&());
        }
        if self.bound.is_some_and(|bound| self.value >= bound) {
            return Err(ServerError::TooManyReleases);
        }
        self.value = self.value.saturating_add(1);
        ok(&())
    }

    pub(crate) fn value(&self) -> u64 {
        self.value
    }
}

/// Python's `manager.Barrier(parties)`. A wait answers the arrival index, `u64`, or
/// [`ServerError::BrokenBarrier`].
pub(crate) struct Barrier {
    parties: u64,
    broken: bool,
    pub(crate) waiters: Waiters,
}

impl Barrier {
    pub(crate) fn new(parties: u64) -> Self {
        Barrier {
            parties,
            broken: false,
            waiters: Waiters::default(),
        }
    }

    /// The last party to arrive releases the others (arrival indexes `0..parties`, the last
    /// its own); a wait that cannot be answered in time breaks the barrier for everyone.
    pub(crate) fn wait(
        &mut self,
        caller: Caller,
        deadline: Option<Instant>,
        now: Instant,
        out: &mut Outbox,
    ) -> Option<Reply> {
        if self.broken {
            return Some(Err(ServerError::BrokenBarrier));
        }
        let index = self.waiters.len() as u64;
        if index + 1 >= self.parties {
            self.waiters.answer_all(|i| ok(&(i as u64)), out);
            return Some(ok(&index));
        }
        if !may_wait(deadline, now) {
            self.abort(out);
            return Some(Err(ServerError::BrokenBarrier));
        }
        self.waiters.park(caller, deadline);
        None
    }

    /// Breaks the barrier (Python's `abort()`): every waiter, and every later wait until a
    /// reset, gets [`ServerError::BrokenBarrier`].
    pub(crate) fn abort(&mut self, out: &mut Outbox) {
        self.broken = true;
        self.waiters
            .answer_all(|_| Err(ServerError::BrokenBarrier), out);
    }

    /// Mends the barrier (Python's `reset()`); the parties waiting get `BrokenBarrier`.
    pub(crate) fn reset(&mut self, out: &mut Outbox) {
        self.abort(out);
        self.broken = false;
    }

    /// A waiter timed out or hung up: the barrier can no longer fill, so it breaks.
    pub(crate) fn lose_waiters(&mut self, before: usize, out: &mut Outbox) {
        if self.waiters.len() < before {
            self.abort(out);
        }
    }

    pub(crate) fn waiting(&self) -> usize {
        self.waiters.len()
    }

    pub(crate) fn state(&self) -> (u64, u64, bool) {
        (self.parties, self.waiters.len() as u64, self.broken)
    }
}

/// Python's `manager.Event()`. A wait answers `bool`: set, or timed out.
#[derive(Default)]
pub(crate) struct Event {
    set: bool,
    pub(crate) waiters: Waiters,
}

impl Event {
    pub(crate) fn wait(
        &mut self,
        caller: Caller,
        deadline: Option<Instant>,
        now: Instant,
    ) -> Option<Reply> {
        if self.set || !may_wait(deadline, now) {
            return Some(ok(&self.set));
        }
        self.waiters.park(caller, deadline);
        None
    }

    pub(crate) fn set(&mut self, value: bool, out: &mut Outbox) {
        self.set = value;
        if value {
            while let Some(waiter) = self.waiters.next() {
                out.push((waiter.id, ok(&true)));
            }
        }
    }

    pub(crate) fn is_set(&self) -> bool {
        self.set
    }
}

/// Python's `manager.Queue()` (a `queue.Queue`, joinable), unbounded. A get answers
/// `Option<Bytes>`: `None` timed out.
#[derive(Default)]
pub(crate) struct Queue {
    items: VecDeque<Bytes>,
    /// Items put and not yet marked done (`task_done`).
    unfinished: u64,
    pub(crate) waiters: Waiters,
    /// The requests waiting in `join` (no deadline: Python's `join` has none).
    pub(crate) joiners: Waiters,
}

impl Queue {
    pub(crate) const TIMED_OUT: Option<Bytes> = None;

    /// Hands the item to the first waiting getter, or keeps it.
    pub(crate) fn put(&mut self, item: Bytes, out: &mut Outbox) {
        self.unfinished = self.unfinished.saturating_add(1);
        match self.waiters.next() {
            Some(getter) => out.push((getter.id, ok(&Some(item)))),
            None => self.items.push_back(item),
        }
    }

    pub(crate) fn get(
        &mut self,
        caller: Caller,
        deadline: Option<Instant>,
        now: Instant,
    ) -> Option<Reply> {
        if let Some(item) = self.items.pop_front() {
            return Some(ok(&Some(item)));
        }
        if !may_wait(deadline, now) {
            return Some(ok(&Self::TIMED_OUT));
        }
        self.waiters.park(caller, deadline);
        None
    }

    /// Marks one item done; the last wakes every `join`.
    pub(crate) fn task_done(&mut self, out: &mut Outbox) -> Reply {
        if self.unfinished == 0 {
            return Err(ServerError::TaskDoneTooManyTimes);
        }
        self.unfinished -= 1;
        if self.unfinished == 0 {
            self.joiners.answer_all(|_| ok(&()), out);
        }
        ok(&())
    }

    /// Waits until every item put is marked done.
    pub(crate) fn join(&mut self, caller: Caller) -> Option<Reply> {
        if self.unfinished == 0 {
            return Some(ok(&()));
        }
        self.joiners.park(caller, None);
        None
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const A: Caller = Caller { id: 1, pid: 100 };
    const B: Caller = Caller { id: 2, pid: 200 };

    #[test]
    fn a_lock_passes_to_its_first_waiter_and_reports_a_holder_that_hung_up() {
        let now = Instant::now();
        let (mut lock, mut out) = (Lock::default(), Outbox::new());
        assert_eq!(lock.acquire(A, None, now), Some(ok(&Some(None::<i32>))));
        assert_eq!(lock.acquire(B, Some(now), now), Some(ok(&Lock::TIMED_OUT)));
        assert_eq!(lock.acquire(B, None, now), None, "parked");
        lock.forget(A.id, &mut out);
        assert_eq!(out, [(B.id, ok(&Some(Some(100))))]);
        assert_eq!(
            lock.release(A, &mut out),
            ok(&()),
            "anyone may release a Lock"
        );
        assert_eq!(lock.release(A, &mut out), Err(ServerError::NotLocked));
    }

    #[test]
    fn a_reentrant_lock_is_taken_again_by_its_holder_and_released_by_it_only() {
        let now = Instant::now();
        let (mut lock, mut out) = (Lock::reentrant(), Outbox::new());
        assert_eq!(lock.acquire(A, None, now), Some(ok(&Some(None::<i32>))));
        assert_eq!(lock.acquire(A, None, now), Some(ok(&Some(None::<i32>))));
        assert_eq!(lock.acquire(B, None, now), None, "parked");
        assert_eq!(lock.release(B, &mut out), Err(ServerError::NotOwner));
        assert_eq!(lock.release(A, &mut out), ok(&()));
        assert!(out.is_empty(), "still held once");
        assert_eq!(lock.release(A, &mut out), ok(&()));
        assert_eq!(out, [(B.id, ok(&Some(None::<i32>)))]);
    }

    #[test]
    fn parked_requests_time_out_at_their_deadline_and_are_refused_at_shutdown() {
        let now = Instant::now();
        let (mut queue, mut out) = (Queue::default(), Outbox::new());
        let soon = now + Duration::from_millis(10);
        assert_eq!(queue.get(A, Some(soon), now), None);
        assert_eq!(queue.get(B, None, now), None);
        assert_eq!(queue.waiters.next_deadline(), Some(soon));
        queue.waiters.expire(soon, &ok(&Queue::TIMED_OUT), &mut out);
        assert_eq!(out, [(A.id, ok(&Queue::TIMED_OUT))]);
        queue.waiters.refuse_all(&mut out);
        assert_eq!(out[1], (B.id, Err(ServerError::ShuttingDown)));
    }

    #[test]
    fn a_semaphore_counts_hands_over_and_keeps_its_bound() {
        let now = Instant::now();
        let (mut sem, mut out) = (Semaphore::new(1, true), Outbox::new());
        assert_eq!(sem.acquire(A, None, now), Some(ok(&true)));
        assert_eq!(sem.acquire(B, Some(now), now), Some(ok(&false)));
        assert_eq!(sem.acquire(B, None, now), None);
        assert_eq!(sem.release(&mut out), ok(&()));
        assert_eq!(out, [(B.id, ok(&true))]);
        assert_eq!(sem.value(), 0);
        assert_eq!(sem.release(&mut out), ok(&()));
        assert_eq!(sem.release(&mut out), Err(ServerError::TooManyReleases));
        assert_eq!(sem.value(), 1);
    }

    #[test]
    fn a_barrier_releases_all_at_the_last_arrival_and_breaks_when_one_times_out() {
        let now = Instant::now();
        let (mut barrier, mut out) = (Barrier::new(3), Outbox::new());
        assert_eq!(barrier.wait(A, None, now, &mut out), None);
        assert_eq!(barrier.wait(B, None, now, &mut out), None);
        let c = Caller { id: 3, pid: 300 };
        assert_eq!(barrier.wait(c, None, now, &mut out), Some(ok(&2u64)));
        assert_eq!(out, [(A.id, ok(&0u64)), (B.id, ok(&1u64))]);
        out.clear();
        let soon = now + Duration::from_millis(5);
        assert_eq!(barrier.wait(A, None, now, &mut out), None);
        assert_eq!(barrier.wait(B, Some(soon), now, &mut out), None);
        let before = barrier.waiting();
        barrier
            .waiters
            .expire(soon, &Err(ServerError::BrokenBarrier), &mut out);
        barrier.lose_waiters(before, &mut out);
        assert_eq!(out.len(), 2, "the one timed out, and the other");
        assert!(out
            .iter()
            .all(|(_, r)| *r == Err(ServerError::BrokenBarrier)));
        assert_eq!(
            barrier.wait(c, None, now, &mut out),
            Some(Err(ServerError::BrokenBarrier))
        );
        barrier.reset(&mut out);
        assert_eq!(barrier.state(), (3, 0, false));
    }

    #[test]
    fn a_put_goes_to_a_waiting_getter_and_a_set_wakes_every_waiter() {
        let now = Instant::now();
        let (mut queue, mut out) = (Queue::default(), Outbox::new());
        assert_eq!(queue.get(A, None, now), None);
        queue.put(vec![7], &mut out);
        assert_eq!(out, [(A.id, ok(&Some(vec![7u8])))]);
        assert_eq!(queue.len(), 0);
        out.clear();
        assert_eq!(queue.join(B), None, "one item not done");
        assert_eq!(queue.task_done(&mut out), ok(&()));
        assert_eq!(out, [(B.id, ok(&()))]);
        assert_eq!(
            queue.task_done(&mut out),
            Err(ServerError::TaskDoneTooManyTimes)
        );
        assert_eq!(queue.join(B), Some(ok(&())));
        let (mut event, mut out) = (Event::default(), Outbox::new());
        assert_eq!(event.wait(A, None, now), None);
        assert_eq!(event.wait(B, None, now), None);
        event.set(true, &mut out);
        assert_eq!(out, [(A.id, ok(&true)), (B.id, ok(&true))]);
        assert_eq!(event.wait(A, Some(now), now), Some(ok(&true)));
    }
}
