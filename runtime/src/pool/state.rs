//! The pool's state behind one lock (Python's `Pool` object and its `_handle_workers` and
//! `_handle_tasks`): the life [`Phase`], the queue of chunks, and the workers' [`Slot`]s.
//! Callers add chunks and [`dispatch`](State::dispatch) them straight to the workers with most
//! room; the result thread collects, [`bury`](State::bury)s a dead worker (failing exactly the
//! calls of the chunks it had started and not answered, requeueing the others),
//! [`replenish`](State::replenish)es the workers, and ends them when the pool is closed or
//! terminated.

use super::channel::{self, ToWorker};
use super::chunk::{ChunkFailure, Delivery, Job};
use super::ring::Bell;
use super::slot::{Held, Slot};
use super::spare::Spare;
use super::worker::WorkerConfig;
use crate::error::Error;
use crate::sys;
use crate::util::lock;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The pause before replacing a worker whose initializer failed.
const RESPAWN_PAUSE: Duration = Duration::from_millis(100);
/// How long terminated workers get to end on SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(500);

/// Where the pool is in its life (Python's `RUN`, `CLOSE`, `TERMINATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    Closed,
    Terminating,
}

/// Everything the pool's threads share, behind one lock.
pub(crate) struct State {
    pub(super) phase: Phase,
    queue: VecDeque<Job>,
    pub(super) slots: Vec<Slot>,
    /// Lazy iterators (`imap`) still feeding chunks, which a closed pool must wait for.
    feeders: usize,
    config: WorkerConfig,
    processes: usize,
    /// No new worker before this instant (after an initializer failed).
    respawn_at: Option<Instant>,
}

/// The state, the result thread's doorbell, and the argument buffers to reuse.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) bell: Arc<Bell>,
    pub(crate) spare: Spare,
}

impl Shared {
    /// Starts `processes` workers; if one cannot start, ends those already started.
    pub(crate) fn start(processes: usize, config: WorkerConfig) -> Result<Arc<Shared>, Error> {
        let bell = config.bell.clone();
        let mut slots = Vec::with_capacity(processes);
        for _ in 0..processes {
            match Slot::start(&config) {
                Ok(slot) => slots.push(slot),
                Err(e) => {
                    for slot in &slots {
                        // A worker already gone needs no signal.
                        let _ = slot.handle.terminate();
                    }
                    end_workers(slots);
                    return Err(e);
                }
            }
        }
        Ok(Arc::new(Shared {
            state: Mutex::new(State {
                phase: Phase::Running,
                queue: VecDeque::new(),
                slots,
                feeders: 0,
                config,
                processes,
                respawn_at: None,
            }),
            bell,
            spare: Spare::default(),
        }))
    }

    /// Adds a chunk to the queue and hands what it can to workers with room; a feeder (a lazy
    /// iterator registered while the pool ran) may go on after `close`. A refused chunk comes
    /// back.
    pub(crate) fn submit(&self, job: Job, feeder: bool) -> Result<(), Job> {
        let mut state = lock(&self.state);
        let open = match state.phase {
            Phase::Running => true,
            Phase::Closed => feeder,
            Phase::Terminating => false,
        };
        if !open {
            return Err(job);
        }
        for slot in &mut state.slots {
            slot.reclaim_started(&self.spare);
        }
        state.queue.push_back(job);
        if state.dispatch(false) {
            drop(state);
            self.bell.ring();
        }
        Ok(())
    }

    /// Changes the phase (never back to running) and wakes the result thread to act on it.
    pub(crate) fn set_phase(&self, phase: Phase) {
        let mut state = lock(&self.state);
        if state.phase != Phase::Terminating {
            state.phase = phase;
        }
        drop(state);
        self.bell.ring();
    }

    /// Registers a job that will feed chunks as it goes (a lazy iterator, a paced map), which
    /// may go on after `close`; `None` if the pool is not running.
    pub(crate) fn feeder(self: &Arc<Self>) -> Option<Feeder> {
        let mut state = lock(&self.state);
        let running = state.phase == Phase::Running;
        state.feeders += usize::from(running);
        running.then(|| Feeder(self.clone()))
    }

    /// The phase the pool is in.
    pub(crate) fn phase(&self) -> Phase {
        lock(&self.state).phase
    }
}

impl State {
    /// Moves queued chunks to the workers with most room. Flushes a worker's socket only if
    /// `flush_all`, or if the worker was idle (it needs the wake-up); other bytes wait for the
    /// result thread, which runs anyway when the busy worker answers, so a stream of small tasks
    /// goes out in batches. Returns whether an idle worker's bytes did not fit in its socket, which
    /// the result thread must then be woken to write.
    pub(super) fn dispatch(&mut self, flush_all: bool) -> bool {
        let max_chunks = self.config.max_chunks;
        let idle: Vec<bool> = self.slots.iter().map(|s| s.held.is_empty()).collect();
        while !self.queue.is_empty() {
            let Some(slot) = self
                .slots
                .iter_mut()
                .filter(|s| s.has_room(max_chunks))
                .min_by_key(|s| s.held.len())
            else {
                break;
            };
            if let Some(job) = self.queue.pop_front() {
                slot.send(job);
            }
        }
        let mut pending = false;
        for (slot, was_idle) in self.slots.iter_mut().zip(idle) {
            if flush_all || was_idle {
                slot.flush();
            }
            pending |= was_idle && slot.unwritten();
        }
        pending
    }

    pub(super) fn collect(&mut self, done: &mut Vec<Delivery>) {
        for slot in &mut self.slots {
            slot.collect(done);
        }
    }

    /// Removes the dead worker at `index`: fails the chunks it started, requeues the rest.
    pub(super) fn bury(&mut self, index: usize, code: i32, done: &mut Vec<Delivery>) {
        let mut slot = self.slots.swap_remove(index);
        slot.collect(done);
        let started = slot.ring.started();
        let pid = slot.pid();
        // Exiting with a code before starting anything means the initializer failed: then the
        // queued work fails with that exit too, rather than wait for a worker that can never
        // start (CPython starts such workers forever), and replacements come at a slower pace.
        let init_failed = code > 0 && started == 0;
        let mut failed = Vec::new();
        if init_failed {
            self.respawn_at = Some(Instant::now() + RESPAWN_PAUSE);
            failed.extend(self.queue.drain(..).map(|job| (job, 0)));
        }
        for held in slot.held.drain(..).rev() {
            if held.seq < started || init_failed {
                failed.push((held.job, held.answered));
            } else {
                self.queue.push_front(held.job);
            }
        }
        let died = || Err(ChunkFailure::Died { pid, code });
        done.extend(
            failed
                .into_iter()
                .map(|(job, answered)| Delivery::rest(job, answered, pid, died())),
        );
    }

    /// Starts workers until there are as many as asked for; returns whether some are missing.
    pub(super) fn replenish(&mut self) -> bool {
        if self.respawn_at.is_some_and(|at| Instant::now() < at) {
            return self.slots.len() < self.processes;
        }
        while self.phase != Phase::Terminating && self.slots.len() < self.processes {
            match Slot::start(&self.config) {
                Ok(slot) => self.slots.push(slot),
                Err(e) => {
                    eprintln!("multiproc: could not start a pool worker, retrying: {e}");
                    return true;
                }
            }
        }
        false
    }

    /// Closed, and nothing left to do.
    pub(super) fn finished(&self) -> bool {
        self.phase == Phase::Closed
            && self.feeders == 0
            && self.queue.is_empty()
            && self.slots.iter().all(|s| s.held.is_empty())
    }

    /// Whether the result thread has something to do right now.
    pub(super) fn has_work(&self) -> bool {
        self.phase == Phase::Terminating
            || self.finished()
            || self.slots.iter().any(|s| s.ring.has_data())
            || (!self.queue.is_empty()
                && self
                    .slots
                    .iter()
                    .any(|s| s.has_room(self.config.max_chunks)))
    }

    /// The descriptors to sleep on: the bell, each worker's pidfd, and the task sockets
    /// with bytes waiting to be sent.
    pub(super) fn poll_set(&self, bell: &Bell) -> Vec<libc::pollfd> {
        let entry = |fd: i32, events| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        let mut fds = vec![entry(bell.fd().as_raw_fd(), libc::POLLIN)];
        for slot in &self.slots {
            fds.push(entry(slot.handle.sentinel().as_raw_fd(), libc::POLLIN));
        }
        for slot in self.slots.iter().filter(|s| s.unwritten()) {
            fds.push(entry(slot.tasks.as_fd().as_raw_fd(), libc::POLLOUT));
        }
        fds
    }

    /// Fails everything queued or held and signals every worker; returns the slots to end.
    pub(super) fn terminate(&mut self, done: &mut Vec<Delivery>) -> Vec<Slot> {
        let mut slots = std::mem::take(&mut self.slots);
        for slot in &mut slots {
            let _ = slot.handle.terminate();
            let pid = slot.pid();
            for Held { job, answered, .. } in slot.held.drain(..) {
                done.push(Delivery::rest(
                    job,
                    answered,
                    pid,
                    Err(ChunkFailure::Terminated),
                ));
            }
        }
        for job in self.queue.drain(..) {
            done.push(Delivery::rest(job, 0, 0, Err(ChunkFailure::Terminated)));
        }
        slots
    }

    /// Tells every worker to finish; returns the slots to join.
    pub(super) fn stop(&mut self) -> Vec<Slot> {
        let mut slots = std::mem::take(&mut self.slots);
        for slot in &mut slots {
            let mut stop = Vec::new();
            let _ = channel::put_frame_head(&mut stop, &ToWorker::Stop, 0);
            // Nothing is held, so the worker has read everything: the socket has room. A worker
            // gone needs no message.
            let _ = sys::send_vectored(slot.tasks.as_fd(), &[IoSlice::new(&stop)]);
            slot.stopping = true;
        }
        slots
    }
}

/// A job registered with [`Shared::feeder`]: a closed pool waits for it to finish feeding. It is
/// retired when dropped (its input exhausted, or the job given up).
pub(crate) struct Feeder(Arc<Shared>);

impl Drop for Feeder {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.feeders = state.feeders.saturating_sub(1);
        drop(state);
        self.0.bell.ring();
    }
}

/// Waits for terminated workers, killing those that outlive the grace period.
pub(super) fn end_workers(slots: Vec<Slot>) {
    let deadline = Instant::now() + TERM_GRACE;
    for slot in &slots {
        let left = deadline.saturating_duration_since(Instant::now());
        if !matches!(slot.handle.join_timeout(left), Ok(None)) {
            continue;
        }
        let _ = slot.handle.kill();
        let _ = slot.handle.join_timeout(TERM_GRACE);
    }
}

/// Waits for stopped workers to exit.
pub(super) fn join_workers(slots: Vec<Slot>) {
    for slot in &slots {
        let _ = slot.handle.join();
    }
}
