//! The cluster pool's lazy maps (Python's `imap` and `imap_unordered`): chunks are sent as the
//! iterator is consumed, at most a window of them in flight, so the input may be endless.

use super::pool::{Inner, Pool, RUNNING};
use crate::error::{Error, PoolError};
use crate::pool::next_chunk;
use crate::pool::remote::{Sink, Stream};
use crate::sys::transfer::portable;
use crate::task::{MapTask, Task};
use crate::util::lock;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Chunks in flight per worker process of the cluster.
const WINDOW_PER_PROCESS: usize = 8;

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
        let stream = Stream::new(size);
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
}

impl<T: Task, I: Iterator<Item = M::Item>, M: MapTask<Task = T>> Iterator for IMap<T, I, M> {
    type Item = Result<T::Output, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.fill();
            if let Some(item) = self.stream.take_ready(&mut self.consumed, self.ordered) {
                return Some(item);
            }
            if self.input.is_none() && self.consumed == self.sent {
                return self.error.take().map(Err);
            }
            self.stream.wait(self.consumed, self.sent, self.ordered);
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
