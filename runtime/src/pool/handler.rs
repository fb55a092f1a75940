//! The result thread (Python's `_handle_workers`, `_handle_tasks` and `_handle_results` in one
//! loop): it collects the workers' published results, buries dead workers and starts their
//! replacements, writes what waits for room in the task sockets, hands each part of a chunk's
//! results to its sink outside the state lock (so a callback may call back into the pool), and
//! sleeps on the bell and the workers' pidfds when there is nothing to do.

use super::ring::Ring;
use super::slot::Slot;
use super::state::{end_workers, join_workers, Phase, Shared};
use crate::sys;
use crate::sys::backoff::{watch, Patience};
use crate::util::lock;
use std::sync::Arc;
use std::time::Duration;

/// The result thread. Returns once the pool is finished or terminated, with every worker ended.
pub(crate) fn run(shared: Arc<Shared>) {
    let mut dead: Vec<i32> = Vec::new();
    // Whether the last pass handed results out: a caller waiting on one task at a time sends
    // the next within microseconds of getting the last.
    let mut delivered = false;
    loop {
        let mut done = Vec::new();
        let mut state = lock(&shared.state);
        state.collect(&mut done);
        for pid in dead.drain(..) {
            let Some(index) = state.slots.iter().position(|s| s.pid() == pid) else {
                continue;
            };
            if let Some(code) = state.slots[index].handle.exitcode() {
                state.bury(index, code, &mut done);
            }
        }
        let short = state.replenish();
        state.dispatch(true);
        if state.phase == Phase::Terminating {
            let slots = state.terminate(&mut done);
            drop(state);
            done.into_iter().for_each(|d| d.deliver(&shared.spare));
            end_workers(slots);
            return;
        }
        if state.finished() {
            let slots = state.stop();
            drop(state);
            done.into_iter().for_each(|d| d.deliver(&shared.spare));
            join_workers(slots);
            return;
        }
        // Results are due within microseconds when a quick worker holds chunks, or is about to
        // be given one by a caller that just got its results.
        let quick = state
            .slots
            .iter()
            .any(|s| s.fast && (delivered || !s.held.is_empty()));
        if quick && done.is_empty() && !state.has_work() {
            let rings: Vec<Arc<Ring>> = state.slots.iter().map(|s| s.ring.clone()).collect();
            drop(state);
            if watch_for_results(&rings) {
                continue;
            }
            state = lock(&shared.state);
        }
        shared.bell.prepare_sleep();
        let mut fds = (!state.has_work() && done.is_empty()).then(|| state.poll_set(&shared.bell));
        let pids: Vec<i32> = state.slots.iter().map(Slot::pid).collect();

        drop(state);
        delivered = !done.is_empty();
        done.into_iter().for_each(|d| d.deliver(&shared.spare));
        let mut rang = false;
        if let Some(fds) = &mut fds {
            sleep(fds, short.then_some(Duration::from_millis(100)));
            rang = fds[0].revents != 0;
            // Entries 1..=pids.len() are the pidfds, in slot order.
            for (fd, pid) in fds[1..].iter().zip(&pids) {
                if fd.revents != 0 {
                    dead.push(*pid);
                }
            }
        }
        shared.bell.woke(rang);
    }
}

/// Watches the rings (when a quick worker holds chunks or has just answered, an answer due
/// within microseconds then costs no wake-up on either side), without the state lock (callers
/// need it to submit); returns whether results arrived.
fn watch_for_results(rings: &[Arc<Ring>]) -> bool {
    watch(Patience::POOL, None, || {
        rings.iter().any(|ring| ring.has_data())
    })
}

/// Sleeps until a descriptor of `fds` is ready or `timeout` passes. A failure reports nothing
/// ready: the loop looks at everything again anyway.
fn sleep(fds: &mut [libc::pollfd], timeout: Option<Duration>) {
    if sys::poll_fds(fds, timeout.and_then(crate::util::deadline)).is_err() {
        fds.iter_mut().for_each(|fd| fd.revents = 0);
    }
}
