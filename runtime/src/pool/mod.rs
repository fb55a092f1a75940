//! A pool of worker processes (Python's `multiprocessing.Pool`): `map`, `starmap`, `apply`,
//! their `_async` forms, `imap` and `imap_unordered`, with `close`, `terminate` and `join`.
//!
//! Workers are long-lived daemonic children that run tasks by their registered name, started
//! by the pool's start method ([`PoolBuilder::start_method`], Python's `ctx.Pool`). Work
//! travels in chunks: the arguments of many calls packed into one frame down a worker's task
//! socket, and their outcomes back through a ring in shared memory, so that a busy pool makes no
//! system call per task. A worker that dies (killed, say) fails exactly the chunks it had
//! started, with an error that names its pid and signal; the rest of its work goes to the other
//! workers and a new worker takes its place, where CPython's pool hangs.
//!
//! ```no_run
//! use multiproc::prelude::*;
//!
//! #[process_task]
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! # fn main() -> multiproc::Result<()> {
//! let pool = Pool::new(4)?;
//! assert_eq!(pool.map(task!(square), 0..4)?, vec![0, 1, 4, 9]);
//! assert_eq!(pool.apply(task!(square, 7))?, 49);
//! pool.close();
//! pool.join()?;
//! # Ok(())
//! # }
//! ```

mod async_result;
mod builder;
mod channel;
mod chunk;
mod gather;
mod handler;
mod imap;
#[cfg(feature = "cluster")]
pub(crate) mod remote;
mod ring;
mod slot;
mod spare;
mod state;
mod worker;

pub use crate::error::PoolError;
pub use async_result::{AsyncResult, Callbacks};
pub use builder::PoolBuilder;
pub use imap::IMap;

use crate::error::Error;
use crate::task::registry;
use crate::task::{Call, IntoCall, MapTask, TakesArgs, Task, TaskRef};
use async_result::Cell;
use chunk::{ChunkFailure, Job, Part, Sink};
use gather::{Collect, Gather};
use spare::Spare;
use state::{Phase, Shared};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, ThreadId};

/// A pool of worker processes (Python's `multiprocessing.Pool`).
///
/// Dropping a pool terminates it (Python's `with Pool() as p:`), in bounded time; call
/// [`close`](Pool::close) and [`join`](Pool::join) first to let queued work finish.
pub struct Pool {
    shared: Arc<Shared>,
    handler: Mutex<Option<JoinHandle<()>>>,
    handler_id: ThreadId,
    processes: usize,
}

/// How a job's chunks are packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Packing {
    /// All of them before the submitting call returns, as an `_async` call must: its input may
    /// borrow from the caller.
    AllAtOnce,
    /// Only a window ahead of the results, by a caller that waits for them anyway (`map`,
    /// `starmap`). The packed arguments in memory stay bounded however long the input, and later
    /// chunks are packed into the buffers of started ones, as CPython's task pipe paces its
    /// feeder.
    Paced,
}

/// Packed arguments a paced job keeps ahead of its results, when that is more than two chunks
/// per worker: small chunks then still travel in batches.
const PACED_BYTES: usize = 512 << 10;

/// How many chunks a paced job keeps in flight, given the packed size of its first: enough for
/// every worker to have its next chunk waiting behind the one it runs.
pub(crate) fn paced_window(chunk_bytes: usize, processes: usize) -> usize {
    (2 * processes).max(PACED_BYTES / chunk_bytes.max(1))
}

/// The default chunksize: Python's `ceil(len / (4 × workers))`.
pub(crate) fn default_chunksize(len: usize, processes: usize) -> usize {
    len.div_ceil(4 * processes).max(1)
}

/// Takes the next chunk of up to `size` arguments of `T` from `args` and packs them one after
/// another, into a buffer from `spare`: its count and bytes (or why they do not pack), or `None`
/// when `args` is exhausted.
pub(crate) fn next_chunk<T: Task>(
    args: &mut impl Iterator<Item = T::Args>,
    size: usize,
    spare: &Spare,
) -> Option<(u32, Result<Vec<u8>, Error>)> {
    let mut bytes = Ok(spare.take());
    let mut count = 0u32;
    let mut chunk = args.take(size);
    while let Some(arg) = chunk.next() {
        count += 1;
        let Ok(out) = &mut bytes else { continue };
        match T::pack_args(&arg, out) {
            Err(e) => bytes = Err(e),
            Ok(()) if count == 1 => reserve_like_first(out, chunk.size_hint().0),
            Ok(()) => {}
        }
    }
    match bytes {
        Ok(buffer) if count == 0 => {
            spare.give(buffer);
            None
        }
        bytes => Some((count, bytes.map_err(Error::from))),
    }
}

/// The output of the task a call to [`Pool::apply`] runs.
type Output<C> = <<C as IntoCall>::Task as Task>::Output;

/// The output of the task a [`Pool::map`] runs.
type MapOutput<M> = <<M as MapTask>::Task as Task>::Output;

/// Makes room in `out`, which holds one task's packed arguments, for `more` like them, as far as
/// the input tells how many follow: the arguments of one task pack to similar sizes, so a chunk's
/// buffer grows once rather than by doubling, each step a fresh allocation, page faults and a
/// copy. Only a hint: room too large to allocate (a huge first item) is not made, and the buffer
/// grows as the items come.
fn reserve_like_first(out: &mut Vec<u8>, more: usize) {
    // Room that cannot be made now is made as the items come.
    let _ = out.try_reserve(out.len().saturating_mul(more));
}

/// Sends chunk `index` of a job (`count` calls of `task`, packed in `bytes`) to the pool, or
/// fails it in its sink if it does not encode or the pool does not take it.
fn send_chunk(
    shared: &Shared,
    task: &'static str,
    sink: Arc<dyn Sink>,
    index: usize,
    count: u32,
    bytes: Result<Vec<u8>, Error>,
    feeder: bool,
) {
    let args = match bytes {
        Ok(args) => args,
        Err(e) => return unsent(&*sink, index, count, e),
    };
    let job = Job {
        task,
        count,
        args,
        sink,
        index,
    };
    if let Err(job) = shared.submit(job, feeder) {
        unsent(&*job.sink, index, count, PoolError::NotRunning.into());
    }
}

/// Ends a job's chunk without sending it.
fn unsent(sink: &dyn Sink, index: usize, count: u32, error: Error) {
    let failure = ChunkFailure::Unsent(Arc::new(error));
    sink.deliver(Part::whole(index, count), 0, Err(failure));
}

impl Pool {
    /// A pool of `processes` workers (Python's `Pool(processes)`); zero is
    /// [`PoolError::NoProcesses`].
    pub fn new(processes: usize) -> Result<Pool, Error> {
        Pool::builder().processes(processes).build()
    }

    /// A builder for the other options: initializer, maxtasksperchild, start method.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::new()
    }

    /// The number of workers the pool keeps.
    pub fn processes(&self) -> usize {
        self.processes
    }

    /// Runs the arguments `args` of task `T` (`len` of them) in chunks of `chunksize` (default:
    /// Python's formula) and completes the result as `collect` says from the outputs, in input
    /// order.
    /// Each chunk goes to the workers as soon as it is packed, and chunks are packed as `packing`
    /// says.
    fn submit<T: Task, Out: Send + 'static>(
        &self,
        len: usize,
        mut args: impl Iterator<Item = T::Args>,
        chunksize: Option<usize>,
        callbacks: Callbacks<Out>,
        collect: Collect<T::Output, Out>,
        packing: Packing,
    ) -> AsyncResult<Out> {
        let cell = Cell::new(callbacks);
        let chunksize = match chunksize {
            Some(0) => Err(PoolError::ZeroChunksize.into()),
            Some(n) => Ok(n),
            None => Ok(default_chunksize(len, self.processes)),
        };
        let checked = chunksize.and_then(|n| Ok(registry::lookup(T::NAME).map(|_| n)?));
        let chunksize = match checked {
            Ok(n) => n.min(u32::MAX as usize),
            Err(e) => {
                cell.complete(Err(e));
                return AsyncResult::new(cell);
            }
        };
        let sink = Gather::<T, Out>::new(cell.clone(), len, chunksize, collect);
        // A paced job goes on after a `close` that comes while it feeds, as CPython's `map` does
        // (its whole input was handed over at the call).
        let feeder = match packing {
            Packing::Paced => self.shared.feeder(),
            Packing::AllAtOnce => None,
        };
        let spare = &self.shared.spare;
        let mut chunks: usize = 0;
        // How many chunks a paced job keeps ahead of its deliveries, once its first is packed.
        let mut window = usize::MAX;
        loop {
            if chunks >= window {
                sink.wait_delivered(chunks + 1 - window);
            }
            let Some((count, bytes)) = next_chunk::<T>(&mut args, chunksize, spare) else {
                break;
            };
            if chunks == 0 && packing == Packing::Paced {
                let packed = bytes.as_ref().map_or(0, Vec::len);
                window = paced_window(packed, self.processes);
            }
            send_chunk(
                &self.shared,
                T::NAME,
                sink.clone(),
                chunks,
                count,
                bytes,
                feeder.is_some(),
            );
            chunks += 1;
        }
        drop(feeder);
        sink.seal(chunks);
        AsyncResult::new(cell)
    }

    /// Submits `items` as arguments of `T`; the length for the default chunksize comes from the
    /// iterator if it knows it exactly, otherwise the items are collected first (as Python does).
    fn submit_items<T: Task, I: Iterator>(
        &self,
        items: I,
        to_args: impl Fn(I::Item) -> T::Args,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<T::Output>>,
        packing: Packing,
    ) -> AsyncResult<Vec<T::Output>> {
        match items.size_hint() {
            (low, Some(high)) if low == high => {
                let args = items.map(to_args);
                let collect = Collect::items();
                self.submit::<T, _>(low, args, chunksize, callbacks, collect, packing)
            }
            _ => {
                let items: Vec<I::Item> = items.collect();
                let len = items.len();
                let args = items.into_iter().map(to_args);
                let collect = Collect::items();
                self.submit::<T, _>(len, args, chunksize, callbacks, collect, packing)
            }
        }
    }

    /// Runs one call in a worker and waits for its result (Python's `apply`): a bound call,
    /// or `task!(f)` for a task without parameters (see [`IntoCall`]).
    pub fn apply<C: IntoCall>(&self, call: C) -> Result<Output<C>, Error> {
        self.apply_async(call).get()
    }

    /// Starts one call in a worker (Python's `apply_async`). A pool that is not running gives a
    /// result whose `get` is [`PoolError::NotRunning`].
    pub fn apply_async<C: IntoCall>(&self, call: C) -> AsyncResult<Output<C>> {
        self.apply_async_with(call, Callbacks::new())
    }

    /// [`apply_async`](Pool::apply_async) with Python's `callback` and `error_callback`.
    pub fn apply_async_with<C: IntoCall>(
        &self,
        call: C,
        callbacks: Callbacks<Output<C>>,
    ) -> AsyncResult<Output<C>> {
        self.apply_call(call.into_call(), callbacks)
    }

    fn apply_call<T: Task>(
        &self,
        call: Call<T>,
        callbacks: Callbacks<T::Output>,
    ) -> AsyncResult<T::Output> {
        let args = std::iter::once(call.into_args());
        let collect = Collect::one();
        self.submit::<T, _>(1, args, Some(1), callbacks, collect, Packing::AllAtOnce)
    }

    /// Calls a one-argument task on every item, in chunks, and returns the results in input
    /// order (Python's `map`). If tasks fail, the first failure is returned, once every chunk
    /// has finished. Empty input gives an empty vector at once.
    ///
    /// The task is a [`MapTask`]: `task!(f)` of a one-parameter task, or a
    /// [`Partial`](crate::Partial) that binds all its parameters but one, `task!(pow, exp = 3)`
    /// (Python's `map(functools.partial(pow, exp=3), items)`); each call gets a copy of the bound
    /// values.
    ///
    /// The input is read as the work goes: the arguments packed for the workers stay a bounded
    /// window ahead of the results (two chunks per worker, or 512 KiB if that is more), where
    /// [`map_async`](Pool::map_async) packs them all before it returns.
    ///
    /// # Panics
    ///
    /// A panic of the input iterator goes on from this call (as Python's `pool.map` raises the
    /// iterable's exception), and from `starmap` and the `_async` forms; the chunks sent before
    /// it run, their results dropped, and the pool stays usable.
    pub fn map<M: MapTask>(
        &self,
        task: M,
        items: impl IntoIterator<Item = M::Item>,
    ) -> Result<Vec<MapOutput<M>>, Error> {
        let packing = Packing::Paced;
        self.map_with(task, items, None, Callbacks::new(), packing)
            .get()
    }

    /// [`map`](Pool::map) with an explicit chunksize (Python's `map(f, items, chunksize)`).
    pub fn map_chunked<M: MapTask>(
        &self,
        task: M,
        items: impl IntoIterator<Item = M::Item>,
        chunksize: usize,
    ) -> Result<Vec<MapOutput<M>>, Error> {
        let packing = Packing::Paced;
        self.map_with(task, items, Some(chunksize), Callbacks::new(), packing)
            .get()
    }

    /// Submits a [`map`](Pool::map) with a chunksize (`None`: Python's default), callbacks, and
    /// its chunks packed as `packing` says.
    fn map_with<M: MapTask>(
        &self,
        task: M,
        items: impl IntoIterator<Item = M::Item>,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<MapOutput<M>>>,
        packing: Packing,
    ) -> AsyncResult<Vec<MapOutput<M>>> {
        let items = items.into_iter();
        let to_args = |item| task.args_for(item);
        self.submit_items::<M::Task, _>(items, to_args, chunksize, callbacks, packing)
    }

    /// Starts a [`map`](Pool::map) (Python's `map_async`).
    pub fn map_async<M: MapTask>(
        &self,
        task: M,
        items: impl IntoIterator<Item = M::Item>,
    ) -> AsyncResult<Vec<MapOutput<M>>> {
        self.map_async_with(task, items, None, Callbacks::new())
    }

    /// Starts a [`map`](Pool::map) with a chunksize (`None`: Python's default) and callbacks
    /// (Python's `map_async(f, items, chunksize, callback, error_callback)`).
    pub fn map_async_with<M: MapTask>(
        &self,
        task: M,
        items: impl IntoIterator<Item = M::Item>,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<MapOutput<M>>>,
    ) -> AsyncResult<Vec<MapOutput<M>>> {
        self.map_with(task, items, chunksize, callbacks, Packing::AllAtOnce)
    }

    /// Calls a task on every tuple of positional arguments, in chunks, and returns the results
    /// in input order (Python's `starmap`); failures and pacing as in [`map`](Pool::map).
    pub fn starmap<T: TakesArgs<A>, A>(
        &self,
        task: TaskRef<T>,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<T::Output>, Error> {
        let packing = Packing::Paced;
        self.starmap_with(task, items, None, Callbacks::new(), packing)
            .get()
    }

    /// [`starmap`](Pool::starmap) with an explicit chunksize.
    pub fn starmap_chunked<T: TakesArgs<A>, A>(
        &self,
        task: TaskRef<T>,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<T::Output>, Error> {
        let packing = Packing::Paced;
        self.starmap_with(task, items, Some(chunksize), Callbacks::new(), packing)
            .get()
    }

    /// Submits a [`starmap`](Pool::starmap), as [`map_with`](Pool::map_with) a map.
    fn starmap_with<T: TakesArgs<A>, A>(
        &self,
        _task: TaskRef<T>,
        items: impl IntoIterator<Item = A>,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<T::Output>>,
        packing: Packing,
    ) -> AsyncResult<Vec<T::Output>> {
        let items = items.into_iter();
        self.submit_items::<T, _>(items, T::args_from, chunksize, callbacks, packing)
    }

    /// Starts a [`starmap`](Pool::starmap) (Python's `starmap_async`).
    pub fn starmap_async<T: TakesArgs<A>, A>(
        &self,
        task: TaskRef<T>,
        items: impl IntoIterator<Item = A>,
    ) -> AsyncResult<Vec<T::Output>> {
        self.starmap_async_with(task, items, None, Callbacks::new())
    }

    /// Starts a [`starmap`](Pool::starmap) with a chunksize and callbacks.
    pub fn starmap_async_with<T: TakesArgs<A>, A>(
        &self,
        task: TaskRef<T>,
        items: impl IntoIterator<Item = A>,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<T::Output>>,
    ) -> AsyncResult<Vec<T::Output>> {
        self.starmap_with(task, items, chunksize, callbacks, Packing::AllAtOnce)
    }

    /// Calls a one-argument task on every item, lazily, yielding results in input order
    /// (Python's `imap`, chunksize 1). Only a bounded number of tasks is in flight, so the
    /// input may be endless: `pool.imap(task!(f), 0..).take(10)`. The task is a [`MapTask`], as
    /// for [`map`](Pool::map).
    ///
    /// # Errors
    ///
    /// Each item is its task's result or failure. A panic of the input iterator at item `k` is
    /// caught: the results of items `0..k` come first, then [`Error::InputPanicked`], then
    /// `None` (see [`IMap`]).
    pub fn imap<M: MapTask, I: IntoIterator<Item = M::Item>>(
        &self,
        task: M,
        items: I,
    ) -> IMap<M::Task, I::IntoIter, M> {
        self.imap_chunked(task, items, 1)
    }

    /// [`imap`](Pool::imap) with a chunksize.
    pub fn imap_chunked<M: MapTask, I: IntoIterator<Item = M::Item>>(
        &self,
        task: M,
        items: I,
        chunksize: usize,
    ) -> IMap<M::Task, I::IntoIter, M> {
        IMap::new(self, task, items.into_iter(), chunksize, true)
    }

    /// Like [`imap`](Pool::imap), but yields results as they finish (Python's
    /// `imap_unordered`).
    ///
    /// # Errors
    ///
    /// As for [`imap`](Pool::imap): after a panic of the input at item `k`, the results of
    /// items `0..k` in the order they finish, then [`Error::InputPanicked`], then `None`.
    pub fn imap_unordered<M: MapTask, I: IntoIterator<Item = M::Item>>(
        &self,
        task: M,
        items: I,
    ) -> IMap<M::Task, I::IntoIter, M> {
        self.imap_unordered_chunked(task, items, 1)
    }

    /// [`imap_unordered`](Pool::imap_unordered) with a chunksize.
    pub fn imap_unordered_chunked<M: MapTask, I: IntoIterator<Item = M::Item>>(
        &self,
        task: M,
        items: I,
        chunksize: usize,
    ) -> IMap<M::Task, I::IntoIter, M> {
        IMap::new(self, task, items.into_iter(), chunksize, false)
    }

    /// Accepts no more work; the workers exit once the queued work is done (Python's `close`).
    pub fn close(&self) {
        self.shared.set_phase(Phase::Closed);
    }

    /// Stops the workers now (SIGTERM, then SIGKILL after a short grace) and fails every
    /// unfinished task with [`PoolError::Terminated`] (Python's `terminate`). Idempotent, takes
    /// bounded time, and may be called from a callback.
    pub fn terminate(&self) {
        self.shared.set_phase(Phase::Terminating);
        self.wait_handler();
    }

    /// Waits for the workers to exit (Python's `join`); [`PoolError::Running`] unless the pool
    /// was closed or terminated first.
    pub fn join(&self) -> Result<(), Error> {
        if self.shared.phase() == Phase::Running {
            return Err(PoolError::Running.into());
        }
        self.wait_handler();
        Ok(())
    }

    /// Waits for the result thread to finish, unless this is that thread (a callback).
    fn wait_handler(&self) {
        if std::thread::current().id() == self.handler_id {
            return;
        }
        let handler = crate::util::lock(&self.handler).take();
        if let Some(handler) = handler {
            let _ = handler.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.terminate();
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("processes", &self.processes)
            .field("phase", &self.shared.phase())
            .finish()
    }
}
