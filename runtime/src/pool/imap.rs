//! Lazy maps (Python's `imap` and `imap_unordered`): an iterator that feeds the pool as it is
//! consumed, keeping a bounded number of chunks in flight, so an endless input works and a slow
//! consumer does not make the pool read ahead without limit (CPython reads all input first).
//! A panic in the input iterator's `next` ends the input: it is caught, and handed out as the
//! last item, after the results of the items before it.

use super::chunk::{decode_outcomes, ChunkOutcome, Part, Sink};
use super::state::{Feeder, Shared};
use super::{next_chunk, send_chunk, Pool, PoolError};
use crate::error::Error;
use crate::task::{catch_panic, MapTask, Task, TaskRef};
use crate::util::lock;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex};

/// Chunks in flight (sent and not yet handed out) per worker.
const WINDOW_PER_WORKER: usize = 8;

/// Finished chunks waiting to be handed out.
struct Arrived<R> {
    chunks: BTreeMap<usize, VecDeque<Result<R, Error>>>,
    /// Chunk indices in the order they finished.
    order: VecDeque<usize>,
    /// The first parts of chunks not finished yet.
    partial: BTreeMap<usize, VecDeque<Result<R, Error>>>,
}

/// The sink of a lazy map of task `T`, which the cluster pool's lazy maps use too: chunks are
/// handed out whole, in input order or as they finish.
pub(crate) struct Stream<T: Task> {
    arrived: Mutex<Arrived<T::Output>>,
    ready: Condvar,
    /// The calls in each chunk but the last, which number a failure's item.
    chunksize: usize,
}

impl<T: Task> Stream<T> {
    /// A stream of chunks of `chunksize` calls (the last may have fewer).
    pub(crate) fn new(chunksize: usize) -> Arc<Self> {
        Arc::new(Stream {
            arrived: Mutex::new(Arrived {
                chunks: BTreeMap::new(),
                order: VecDeque::new(),
                partial: BTreeMap::new(),
            }),
            ready: Condvar::new(),
            chunksize,
        })
    }

    /// The next result if one is ready, in input order if `ordered`; counts in `consumed` the
    /// chunks handed out in full.
    pub(crate) fn take_ready(
        &self,
        consumed: &mut usize,
        ordered: bool,
    ) -> Option<Result<T::Output, Error>> {
        let mut arrived = lock(&self.arrived);
        loop {
            let index = if ordered {
                *consumed
            } else {
                *arrived.order.front()?
            };
            let chunk = arrived.chunks.get_mut(&index)?;
            if let Some(item) = chunk.pop_front() {
                return Some(item);
            }
            arrived.chunks.remove(&index);
            if !ordered {
                arrived.order.pop_front();
            }
            *consumed += 1;
        }
    }

    /// Waits for a chunk to hand out, if one of the `sent` is still out.
    pub(crate) fn wait(&self, consumed: usize, sent: usize, ordered: bool) {
        let arrived = lock(&self.arrived);
        let waiting = if ordered {
            !arrived.chunks.contains_key(&consumed)
        } else {
            arrived.order.is_empty()
        };
        if waiting && consumed < sent {
            drop(self.ready.wait(arrived));
        }
    }
}

impl<T: Task> Sink for Stream<T> {
    fn deliver(&self, part: Part, pid: i32, outcome: ChunkOutcome) {
        let mut values = VecDeque::with_capacity(part.count as usize);
        let first_item = part.index * self.chunksize + part.first as usize;
        decode_outcomes::<T>(part.count, pid, first_item, outcome, |one| {
            values.push_back(one)
        });
        let mut arrived = lock(&self.arrived);
        let values = match arrived.partial.remove(&part.index) {
            Some(mut before) => {
                before.extend(values);
                before
            }
            None => values,
        };
        if !part.last {
            arrived.partial.insert(part.index, values);
            return;
        }
        arrived.chunks.insert(part.index, values);
        arrived.order.push_back(part.index);
        drop(arrived);
        self.ready.notify_all();
    }
}

/// The input of a lazy map, read under a guard: it ends at its first `None`, or at a panic in
/// its `next`, which becomes the error that ends the map.
struct Input<I> {
    /// `None` once ended; a panicked iterator is dropped, never read again.
    items: Option<I>,
    /// The items read so far.
    read: usize,
    /// The error handed out once every item read is: a panic of the input, or why there is
    /// no input (a zero chunksize, a pool not running).
    error: Option<Error>,
}

impl<I> Input<I> {
    /// Ends the input with `error`.
    fn fail(&mut self, error: Error) {
        self.items = None;
        self.error = Some(error);
    }
}

impl<I: Iterator> Iterator for Input<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let items = self.items.as_mut()?;
        match catch_panic(|| items.next()) {
            Ok(Some(item)) => {
                self.read += 1;
                Some(item)
            }
            Ok(None) => {
                self.items = None;
                None
            }
            Err(panic) => {
                self.fail(Error::from_input_panic(self.read, panic));
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.items
            .as_ref()
            .map_or((0, Some(0)), Iterator::size_hint)
    }
}

/// The iterator of [`Pool::imap`](super::Pool::imap) and
/// [`Pool::imap_unordered`](super::Pool::imap_unordered) (Python's `IMapIterator`): each item
/// is one task's result or error.
///
/// # Errors
///
/// If the input iterator panics as it produces item `k`, the panic is caught and the input is
/// not read again: the results of items `0..k` come first (in input order for `imap`, as they
/// finish for `imap_unordered`; the items of a chunk read in part still run), then one
/// [`Error::InputPanicked`] with `item: k` and the panic's message and location, then `None`
/// (Python yields the results before the iterable's exception, then raises it in their place
/// and ends). The pool stays usable. The panic is the caller's own code's, so the panic hook
/// prints its message on stderr as for any panic.
///
/// `M` is the [`MapTask`] mapped, `T` its task.
pub struct IMap<T: Task, I, M = TaskRef<T>> {
    task: M,
    shared: Arc<Shared>,
    input: Input<I>,
    chunksize: usize,
    window: usize,
    ordered: bool,
    /// Chunks sent, and chunks fully handed out (in order: the index of the next to hand out).
    sent: usize,
    consumed: usize,
    /// This iterator's registration as a feeder of the pool (so `close` waits for it).
    feeder: Option<Feeder>,
    stream: Arc<Stream<T>>,
}

impl<T: Task, I: Iterator<Item = M::Item>, M: MapTask<Task = T>> IMap<T, I, M> {
    pub(crate) fn new(pool: &Pool, task: M, input: I, chunksize: usize, ordered: bool) -> Self {
        let feeder = pool.shared.feeder();
        let running = feeder.is_some();
        let size = chunksize.clamp(1, u32::MAX as usize);
        let mut imap = IMap {
            task,
            shared: pool.shared.clone(),
            input: Input {
                items: Some(input),
                read: 0,
                error: None,
            },
            chunksize: size,
            window: WINDOW_PER_WORKER * pool.processes,
            ordered,
            sent: 0,
            consumed: 0,
            feeder,
            stream: Stream::new(size),
        };
        if chunksize == 0 {
            imap.fail_input(PoolError::ZeroChunksize.into());
        } else if !running {
            imap.fail_input(PoolError::NotRunning.into());
        }
        imap
    }

    /// Ends the input with one failed item carrying `error`.
    fn fail_input(&mut self, error: Error) {
        self.input.fail(error);
        self.feeder = None;
    }

    /// Sends chunks while fewer than the window are in flight; once the input has ended, leaves
    /// the pool free to close.
    fn fill(&mut self) {
        while self.sent - self.consumed < self.window && self.input.items.is_some() {
            let Some((count, bytes)) = next_chunk::<T>(
                &mut (&mut self.input).map(|item| self.task.args_for(item)),
                self.chunksize,
                &self.shared.spare,
            ) else {
                break;
            };
            send_chunk(
                &self.shared,
                T::NAME,
                self.stream.clone(),
                self.sent,
                count,
                bytes,
                true,
            );
            self.sent += 1;
        }
        if self.input.items.is_none() {
            self.feeder = None;
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
            if self.input.items.is_none() && self.consumed == self.sent {
                return self.input.error.take().map(Err);
            }
            self.stream.wait(self.consumed, self.sent, self.ordered);
        }
    }
}

impl<T: Task, I, M> fmt::Debug for IMap<T, I, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IMap")
            .field("task", &T::NAME)
            .field("ordered", &self.ordered)
            .field("in_flight", &(self.sent - self.consumed))
            .finish()
    }
}
