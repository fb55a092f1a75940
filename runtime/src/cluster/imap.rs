//! The cluster pool's lazy maps (Python's `imap` and `imap_unordered`): chunks are sent as the
//! iterator is consumed, at most a window of them in flight, so the input may be endless.

use super::pool::{Inner, Pool, RUNNING};
use crate::error::{Error, PoolError};
use crate::pool::next_chunk;
use crate::pool::remote::{decode_outcomes, ChunkOutcome, Part, Sink};
use crate::sys::transfer::portable;
use crate::task::{MapTask, Task};
use crate::util::lock;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};

/// Chunks in flight per worker process of the cluster.
const WINDOW_PER_PROCESS: usize = 8;

type Values<R> = VecDeque<Result<R, Error>>;

/// Finished chunks, and the first parts of unfinished ones.
struct Arrived<R> {
    chunks: BTreeMap<usize, Values<R>>,
    order: VecDeque<usize>,
    partial: BTreeMap<usize, Values<R>>,
}

/// The sink of a lazy map of task `T`.
struct Stream<T: Task> {
    arrived: Mutex<Arrived<T::Output>>,
    ready: Condvar,
    chunksize: usize,
}

impl<T: Task> Sink for Stream<T> {
    fn deliver(&self, part: Part, pid: i32, outcome: ChunkOutcome) {
        let mut values = VecDeque::with_capacity(part.count as usize);
        let first_item = part.index * self.chunksize + part.first as usize;
        decode_outcomes::<T>(part.count, pid, first_item, outcome, |one| {
            values.push_back(one)
        });
        let mut arrived = lock(&self.arrived);
        if let Some(mut before) = arrived.partial.remove(&part.index) {
            before.extend(values);
            values = before;
        }
        if part.last {
            arrived.chunks.insert(part.index, values);
            arrived.order.push_back(part.index);
            drop(arrived);
            self.ready.notify_all();
        } else {
            arrived.partial.insert(part.index, values);
        }
    }
}

/// The iterator of [`Pool::imap`] and [`Pool::imap_unordered`]: each item is one call's result.
pub struct IMap<T: Task, I, M> {
    task: M,
    inner: Arc<Inner>,
    input: Option<I>,
    job: u64,
    chunksize: usize,
    window: usize,
    ordered: bool,
    sent: usize,
    consumed: usize,
    stream: Arc<Stream<T>>,
    /// Why there is no input (a zero chunksize, a pool not running), handed out once.
    error: Option<Error>,
}

impl<T: Task, I: Iterator<Item = M::Item>, M: MapTask<Task = T>> IMap<T, I, M> {
    pub(crate) fn new(pool: &Pool, task: M, input: I, chunksize: usize, ordered: bool) -> Self {
        let inner = pool.inner.clone();
        let size = chunksize.clamp(1, u32::MAX as usize);
        let stream = Arc::new(Stream {
            arrived: Mutex::new(Arrived {
                chunks: BTreeMap::new(),
                order: VecDeque::new(),
                partial: BTreeMap::new(),
            }),
            ready: Condvar::new(),
            chunksize: size,
        });
        let error = if chunksize == 0 {
            Some(PoolError::ZeroChunksize.into())
        } else if inner.phase.load(Ordering::Acquire) != RUNNING {
            Some(PoolError::NotRunning.into())
        } else {
            None
        };
        let job = inner.open_job(stream.clone());
        IMap {
            task,
            window: WINDOW_PER_PROCESS * inner.processes(),
            inner,
            input: error.is_none().then_some(input),
            job,
            chunksize: size,
            ordered,
            sent: 0,
            consumed: 0,
            stream,
            error,
        }
    }

    /// How many chunks are sent and not yet handed out in full.
    pub fn in_flight(&self) -> usize {
        self.sent - self.consumed
    }

    fn fill(&mut self) {
        while self.sent - self.consumed < self.window {
            let Some(input) = self.input.as_mut() else {
                break;
            };
            let task = &self.task;
            let mut args = input.map(|item| task.args_for(item));
            let spare = &self.inner.spare;
            let next = portable(|| next_chunk::<T>(&mut args, self.chunksize, spare));
            let Some((count, bytes)) = next else {
                self.input = None;
                break;
            };
            let sink: Arc<dyn Sink> = self.stream.clone();
            self.inner
                .send_chunk::<T>(self.job, self.sent as u64, count, bytes, &sink);
            self.sent += 1;
        }
        if self.input.is_none() {
            lock(&self.inner.jobs).seal(self.job);
        }
    }

    fn take_ready(&mut self) -> Option<Result<T::Output, Error>> {
        let mut arrived = lock(&self.stream.arrived);
        loop {
            let index = if self.ordered {
                self.consumed
            } else {
                *arrived.order.front()?
            };
            let chunk = arrived.chunks.get_mut(&index)?;
            if let Some(item) = chunk.pop_front() {
                return Some(item);
            }
            arrived.chunks.remove(&index);
            if !self.ordered {
                arrived.order.pop_front();
            }
            self.consumed += 1;
        }
    }
}

impl<T: Task, I: Iterator<Item = M::Item>, M: MapTask<Task = T>> Iterator for IMap<T, I, M> {
    type Item = Result<T::Output, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.fill();
            if let Some(item) = self.take_ready() {
                return Some(item);
            }
            if self.input.is_none() && self.consumed == self.sent {
                return self.error.take().map(Err);
            }
            let arrived = lock(&self.stream.arrived);
            let waiting = if self.ordered {
                !arrived.chunks.contains_key(&self.consumed)
            } else {
                arrived.order.is_empty()
            };
            if waiting {
                drop(self.stream.ready.wait(arrived));
            }
        }
    }
}

impl<T: Task, I, M> Drop for IMap<T, I, M> {
    fn drop(&mut self) {
        lock(&self.inner.jobs).seal(self.job);
    }
}

impl<T: Task, I, M> std::fmt::Debug for IMap<T, I, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("cluster::IMap")
            .field("task", &T::NAME)
            .field("ordered", &self.ordered)
            .field("in_flight", &(self.sent - self.consumed))
            .finish()
    }
}
