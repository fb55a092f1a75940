//! The pool's parent side: its workers' slots, the queue of chunks, dispatch, and the result
//! thread (Python's `_handle_workers`, `_handle_tasks` and `_handle_results` in one loop).
//!
//! Callers add chunks under the state lock and hand them straight to a worker with room for
//! them; the result thread reads the workers' result rings, passes each part of a chunk's
//! results to its sink (outside the lock, so a callback may call back into the pool), refills
//! the workers, and watches their pidfds. A worker that dies fails exactly the calls of the
//! chunks it had started that it had not answered (its ring says which chunks), gives the other
//! chunks back to the queue, and is replaced.

use super::channel::{self, FrameBytes, ResultFrame, ToWorker};
use super::result::{ChunkFailure, ChunkOutcome, Part, Sink};
use super::ring::{Bell, Ring};
use super::spare::Spare;
use super::worker::{self, WorkerConfig};
use crate::error::Error;
use crate::process::ProcessHandle;
use crate::sys;
use crate::sys::backoff::{watch, Patience};
use crate::util::lock;
use crate::wire;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Chunks a worker may hold when its chunks run long: the one it runs and the next, so a long
/// task never waits behind another while a worker is free, and a dying worker holds little.
const SLOW_DEPTH: usize = 2;
/// Chunks a worker may hold when its chunks are quick: deep enough that a stream of small tasks
/// travels in batches.
const FAST_DEPTH: usize = 64;
/// A chunk quicker than this (microseconds) marks its worker as quick.
const FAST_MICROS: u32 = 200;
/// The pause before replacing a worker whose initializer failed.
const RESPAWN_PAUSE: Duration = Duration::from_millis(100);
/// How long terminated workers get to end on SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(500);

/// A chunk of one job: `count` calls of `task` with their arguments packed in `args`.
pub(crate) struct Job {
    pub(crate) task: &'static str,
    pub(crate) count: u32,
    pub(crate) args: Vec<u8>,
    pub(crate) sink: Arc<dyn Sink>,
    /// The chunk's place in its job.
    pub(crate) index: usize,
}

/// A finished (or failed) part of a chunk on its way to its sink.
struct Delivery {
    sink: Arc<dyn Sink>,
    part: Part,
    /// The chunk's argument buffer, which goes back with its last part.
    args: Option<Vec<u8>>,
    pid: i32,
    outcome: ChunkOutcome,
}

impl Delivery {
    /// The calls of `job` from its call `first` on, which end it.
    fn rest(job: Job, first: u32, pid: i32, outcome: ChunkOutcome) -> Delivery {
        let part = Part {
            index: job.index,
            first,
            count: job.count.saturating_sub(first),
            last: true,
        };
        Delivery {
            sink: job.sink,
            part,
            args: Some(job.args),
            pid,
            outcome,
        }
    }

    /// Gives the chunk's argument buffer (if this ends it) back to `spare`, then the outcome to
    /// the job's sink (which may wake a paced submitter that packs its next chunk into that
    /// buffer).
    fn deliver(self, spare: &Spare) {
        if let Some(args) = self.args {
            spare.give(args);
        }
        self.sink.deliver(self.part, self.pid, self.outcome);
    }
}

/// A chunk given to a worker and not yet answered in full.
struct Held {
    seq: u64,
    /// The start of its frame: the length, then the [`ToWorker::Run`] message; the job's
    /// arguments follow it down the task socket.
    head: Vec<u8>,
    job: Job,
    /// How many of its calls the parts delivered so far answered.
    answered: u32,
}

impl Held {
    /// The parts of the frame, in order.
    fn parts(&self) -> [&[u8]; 2] {
        [&self.head, &self.job.args]
    }
}

/// Byte ranges handed to one `sendmsg` at most.
const WRITE_SLICES: usize = 64;

/// One worker, as the parent sees it.
struct Slot {
    handle: ProcessHandle<()>,
    /// The parent's end of the worker's task channel.
    tasks: OwnedFd,
    ring: Arc<Ring>,
    /// The result frame being read from the ring.
    frame: Vec<u8>,
    /// Chunks given to the worker and not yet answered, oldest first.
    held: VecDeque<Held>,
    /// How many of `held` are sent down the task socket in full, and how many bytes of the next:
    /// the rest waits for room in the socket. Written straight from the jobs, without a copy.
    written: usize,
    partial: usize,
    /// Chunks sent so far (the next sequence number).
    sent: u64,
    fast: bool,
    stopping: bool,
}

impl Slot {
    fn start(config: &WorkerConfig) -> Result<Slot, Error> {
        let (worker_end, tasks) = sys::task_channel()?;
        let ring = Arc::new(Ring::new()?);
        let handle = worker::start(config, worker_end, ring.clone())?;
        Ok(Slot {
            handle,
            tasks,
            ring,
            frame: Vec::new(),
            held: VecDeque::new(),
            written: 0,
            partial: 0,
            sent: 0,
            fast: false,
            stopping: false,
        })
    }

    fn pid(&self) -> i32 {
        self.handle.pid()
    }

    /// Whether the worker may take one more chunk.
    fn has_room(&self, max_chunks: Option<u64>) -> bool {
        let depth = if self.fast { FAST_DEPTH } else { SLOW_DEPTH };
        let spent = matches!(max_chunks, Some(max) if self.sent >= max);
        !self.stopping && self.held.len() < depth && !spent
    }

    fn send(&mut self, job: Job) {
        let seq = self.sent;
        let run = ToWorker::Run {
            seq,
            task: job.task,
            count: job.count,
        };
        let mut head = Vec::new();
        // The message holds only numbers and the task name, which always encode.
        let _ = channel::put_frame_head(&mut head, &run, job.args.len());
        self.sent += 1;
        self.held.push_back(Held {
            seq,
            head,
            job,
            answered: 0,
        });
    }

    /// Gives back to `spare` the argument buffers of the chunks the worker has started: it has
    /// read them in full, and a started chunk is never sent again (if the worker dies, its
    /// calls fail). A map's next chunks are then packed into memory already touched, while
    /// the chunks before them still run.
    fn reclaim_started(&mut self, spare: &Spare) {
        let started = self.ring.started();
        // Held chunks go oldest first: only the front few (the one running) can have started.
        let running = self.held.iter_mut().take(self.written);
        for held in running.take_while(|held| held.seq < started) {
            if held.job.args.capacity() > 0 {
                spare.give(std::mem::take(&mut held.job.args));
            }
        }
    }

    /// Whether bytes wait for room in the task socket.
    fn unwritten(&self) -> bool {
        self.written < self.held.len()
    }

    /// Writes what is pending without blocking, many frames per system call; a worker gone
    /// leaves it to the death handling.
    fn flush(&mut self) {
        while self.unwritten() {
            let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
            let mut used = 0;
            // `partial` bytes of the first frame are written: skip them, across its parts.
            let mut skip = self.partial;
            for part in self.held.range(self.written..).flat_map(Held::parts) {
                let Some(rest) = part.get(skip..).filter(|rest| !rest.is_empty()) else {
                    skip -= part.len().min(skip);
                    continue;
                };
                slices[used] = IoSlice::new(rest);
                skip = 0;
                used += 1;
                if used == WRITE_SLICES {
                    break;
                }
            }
            match sys::send_vectored(self.tasks.as_fd(), &slices[..used]) {
                Ok(n) => self.advance(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    }

    /// Moves the written position `n` bytes on.
    fn advance(&mut self, mut n: usize) {
        while n > 0 && self.unwritten() {
            let held = &self.held[self.written];
            let left = held.head.len() + held.job.args.len() - self.partial;
            if n < left {
                self.partial += n;
                return;
            }
            n -= left;
            self.partial = 0;
            self.ring.mark_posted(held.seq);
            self.written += 1;
        }
    }

    /// Takes the worker's published results into `done`, part by part.
    fn collect(&mut self, done: &mut Vec<Delivery>) {
        let pid = self.pid();
        while let Some(frame) = self.next_frame() {
            let Some(frame) = ResultFrame::parse(frame) else {
                continue;
            };
            let header = frame.header();
            let Some(held) = self.held.front_mut() else {
                continue;
            };
            if held.seq != header.seq || held.answered != header.first {
                continue;
            }
            held.answered = header.first.saturating_add(header.count);
            if held.answered < held.job.count {
                let part = Part {
                    index: held.job.index,
                    first: header.first,
                    count: header.count,
                    last: false,
                };
                done.push(Delivery {
                    sink: held.job.sink.clone(),
                    part,
                    args: None,
                    pid,
                    outcome: Ok(frame),
                });
                continue;
            }
            if let Some(Held { job, .. }) = self.held.pop_front() {
                // The worker answers only chunks it has read in full.
                self.written = self.written.saturating_sub(1);
                self.fast = header.micros < FAST_MICROS;
                done.push(Delivery::rest(job, header.first, pid, Ok(frame)));
            }
        }
    }

    /// The next whole frame: taken where it lies in the ring, or, if it is bigger than the
    /// ring, copied out into a vector of its size as it streams in.
    fn next_frame(&mut self) -> Option<FrameBytes> {
        if self.frame.is_empty() {
            let mut head = [0; wire::HEADER_LEN];
            if !self.ring.peek(&mut head) {
                return None;
            }
            let len = wire::frame_len(&head)?;
            if len <= Ring::capacity() {
                return self.ring.take(len).map(FrameBytes::InRing);
            }
            self.frame.reserve_exact(len);
        }
        loop {
            let want = match wire::frame_len(&self.frame) {
                Some(len) if len == self.frame.len() => {
                    return Some(FrameBytes::Copied(std::mem::take(&mut self.frame)))
                }
                Some(len) => len - self.frame.len(),
                None => wire::HEADER_LEN - self.frame.len(),
            };
            if self.ring.read_into(&mut self.frame, want) == 0 {
                return None;
            }
        }
    }
}

/// Where the pool is in its life (Python's `RUN`, `CLOSE`, `TERMINATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    Closed,
    Terminating,
}

/// Everything the pool's threads share, behind one lock.
pub(crate) struct State {
    phase: Phase,
    queue: VecDeque<Job>,
    slots: Vec<Slot>,
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
    fn dispatch(&mut self, flush_all: bool) -> bool {
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

    fn collect(&mut self, done: &mut Vec<Delivery>) {
        for slot in &mut self.slots {
            slot.collect(done);
        }
    }

    /// Removes the dead worker at `index`: fails the chunks it started, requeues the rest.
    fn bury(&mut self, index: usize, code: i32, done: &mut Vec<Delivery>) {
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
    fn replenish(&mut self) -> bool {
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
    fn finished(&self) -> bool {
        self.phase == Phase::Closed
            && self.feeders == 0
            && self.queue.is_empty()
            && self.slots.iter().all(|s| s.held.is_empty())
    }

    /// Whether the result thread has something to do right now.
    fn has_work(&self) -> bool {
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
    fn poll_set(&self, bell: &Bell) -> Vec<libc::pollfd> {
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
            let slots = terminate(&mut state, &mut done);
            drop(state);
            done.into_iter().for_each(|d| d.deliver(&shared.spare));
            end_workers(slots);
            return;
        }
        if state.finished() {
            let slots = stop(&mut state);
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
/// within microseconds then costs no wake-up on either side), without the state lock (callers need it to
/// submit); returns whether results arrived.
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

/// Fails everything queued or held and signals every worker; returns the slots to end.
fn terminate(state: &mut State, done: &mut Vec<Delivery>) -> Vec<Slot> {
    let mut slots = std::mem::take(&mut state.slots);
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
    for job in state.queue.drain(..) {
        done.push(Delivery::rest(job, 0, 0, Err(ChunkFailure::Terminated)));
    }
    slots
}

/// Waits for terminated workers, killing those that outlive the grace period.
fn end_workers(slots: Vec<Slot>) {
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

/// Tells every worker to finish; returns the slots to join.
fn stop(state: &mut State) -> Vec<Slot> {
    let mut slots = std::mem::take(&mut state.slots);
    for slot in &mut slots {
        let mut stop = Vec::new();
        let _ = channel::put_frame_head(&mut stop, &ToWorker::Stop, 0);
        // Nothing is held, so the worker has read everything: the socket has room. A worker gone
        // needs no message.
        let _ = sys::send_vectored(slot.tasks.as_fd(), &[IoSlice::new(&stop)]);
        slot.stopping = true;
    }
    slots
}

/// Waits for stopped workers to exit.
fn join_workers(slots: Vec<Slot>) {
    for slot in &slots {
        let _ = slot.handle.join();
    }
}

#[cfg(test)]
mod tests {
    use crate::util::lock;
    use crate::{process_task, task, Pool};
    use std::time::{Duration, Instant};

    #[process_task]
    fn doze(ms: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(ms));
        ms
    }

    #[test]
    fn a_started_chunks_argument_buffer_is_reused_while_the_chunk_runs() {
        let pool = Pool::new(1).unwrap();
        let long = pool.apply_async(task!(doze, 300));
        let started = || lock(&pool.shared.state).slots[0].ring.started() == 1;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !started() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(started(), "the worker never started the chunk");
        assert_eq!(pool.shared.spare.count(), 0);
        // Submitting the next chunk takes back the running one's buffer.
        let next = pool.apply_async(task!(doze, 0));
        assert_eq!(pool.shared.spare.count(), 1);
        assert!(!long.ready(), "the first chunk still runs");
        assert_eq!((long.get().unwrap(), next.get().unwrap()), (300, 0));
    }

    #[test]
    fn the_ring_says_which_chunks_are_in_the_task_socket() {
        let pool = Pool::new(1).unwrap();
        let ring = lock(&pool.shared.state).slots[0].ring.clone();
        assert_eq!(pool.apply(task!(doze, 0)).unwrap(), 0);
        assert!(!ring.is_posted_after(0), "only chunk 0 was written");
        // A chunk for an idle worker is written as it is submitted.
        assert_eq!(pool.apply(task!(doze, 1)).unwrap(), 1);
        assert!(ring.is_posted_after(0), "chunk 1 was written");
        assert!(!ring.is_posted_after(1), "no chunk 2 was submitted");
    }
}
