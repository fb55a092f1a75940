//! One worker as the parent sees it (a [`Slot`]): its process, the chunks it holds, their bytes
//! on their way down its task socket (many frames per `sendmsg`, straight from the buffers they
//! were packed in), and the result frames it publishes in its ring, collected into deliveries
//! part by part. How deep a worker's pipeline is depends on how quick its chunks are.

use super::channel::{self, FrameBytes, ResultFrame, ToWorker};
use super::chunk::{Delivery, Job};
use super::ring::Ring;
use super::spare::Spare;
use super::worker::{self, WorkerConfig};
use crate::error::Error;
use crate::process::ProcessHandle;
use crate::sys;
use crate::wire;
use crate::wire::frame::PartialFrame;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

/// Chunks a worker may hold when its chunks run long: the one it runs and the next, so a long
/// task never waits behind another while a worker is free, and a dying worker holds little.
const SLOW_DEPTH: usize = 2;
/// Chunks a worker may hold when its chunks are quick: deep enough that a stream of small tasks
/// travels in batches.
const FAST_DEPTH: usize = 64;
/// A chunk quicker than this (microseconds) marks its worker as quick.
const FAST_MICROS: u32 = 200;

/// A chunk given to a worker and not yet answered in full.
pub(super) struct Held {
    pub(super) seq: u64,
    /// The start of its frame: the length, then the [`ToWorker::Run`] message; the job's
    /// arguments follow it down the task socket.
    head: Vec<u8>,
    pub(super) job: Job,
    /// How many of its calls the parts delivered so far answered.
    pub(super) answered: u32,
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
pub(super) struct Slot {
    pub(super) handle: ProcessHandle<()>,
    /// The parent's end of the worker's task channel.
    pub(super) tasks: OwnedFd,
    /// The worker's result ring, of which this slot is the one reader: only
    /// [`next_frame`](Slot::next_frame) reads it, through `&mut self`, and a slot is reached only
    /// through the pool's state, under its lock (other holders of the `Arc` in the parent only
    /// look at its counters; the worker only writes).
    pub(super) ring: Arc<Ring>,
    /// A result frame too big for the ring, being copied out of it.
    frame: PartialFrame,
    /// Chunks given to the worker and not yet answered, oldest first.
    pub(super) held: VecDeque<Held>,
    /// How many of `held` are sent down the task socket in full, and how many bytes of the next:
    /// the rest waits for room in the socket. Written straight from the jobs, without a copy.
    written: usize,
    partial: usize,
    /// Chunks sent so far (the next sequence number).
    sent: u64,
    pub(super) fast: bool,
    pub(super) stopping: bool,
}

impl Slot {
    pub(super) fn start(config: &WorkerConfig) -> Result<Slot, Error> {
        let (worker_end, tasks) = sys::task_channel()?;
        let ring = Arc::new(Ring::new()?);
        let handle = worker::start(config, worker_end, ring.clone())?;
        Ok(Slot {
            handle,
            tasks,
            ring,
            frame: PartialFrame::default(),
            held: VecDeque::new(),
            written: 0,
            partial: 0,
            sent: 0,
            fast: false,
            stopping: false,
        })
    }

    pub(super) fn pid(&self) -> i32 {
        self.handle.pid()
    }

    /// Whether the worker may take one more chunk.
    pub(super) fn has_room(&self, max_chunks: Option<u64>) -> bool {
        let depth = if self.fast { FAST_DEPTH } else { SLOW_DEPTH };
        let spent = matches!(max_chunks, Some(max) if self.sent >= max);
        !self.stopping && self.held.len() < depth && !spent
    }

    pub(super) fn send(&mut self, job: Job) {
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
    pub(super) fn reclaim_started(&mut self, spare: &Spare) {
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
    pub(super) fn unwritten(&self) -> bool {
        self.written < self.held.len()
    }

    /// Writes what is pending without blocking, many frames per system call; a worker gone
    /// leaves it to the death handling.
    pub(super) fn flush(&mut self) {
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
    pub(super) fn collect(&mut self, done: &mut Vec<Delivery>) {
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
                done.push(Delivery::partial(&held.job, header, pid, frame));
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
    ///
    /// A frame taken in place is a span of the ring, which must be dropped in the order taken:
    /// [`collect`](Slot::collect) drops it at once or pushes it onto the deliveries in order,
    /// which the result thread hands out in order, and a [`Sink`](super::chunk::Sink) is done
    /// with a frame when its `deliver` returns.
    fn next_frame(&mut self) -> Option<FrameBytes> {
        if self.frame.is_empty() {
            let mut head = [0; wire::HEADER_LEN];
            // SAFETY: this slot is the ring's one reader (see `ring`).
            if !unsafe { self.ring.peek(&mut head) } {
                return None;
            }
            let len = wire::frame_len(&head)?;
            if len <= Ring::capacity() {
                // SAFETY: this slot is the ring's one reader (see `ring`), and the span is
                // dropped in the order taken (see above).
                return unsafe { self.ring.take(len) }.map(FrameBytes::InRing);
            }
            self.frame.reserve(len);
        }
        while !self.frame.is_complete() {
            let ring = &self.ring;
            // SAFETY: this slot is the ring's one reader (see `ring`).
            let read = |out: &mut Vec<u8>, max| unsafe { ring.read_into(out, max) };
            if self.frame.read_with(usize::MAX, read) == 0 {
                return None;
            }
        }
        Some(FrameBytes::Copied(self.frame.take()))
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
