//! The caller's side: [`Pool`], whose chunks go to the task stream and whose results come back
//! on its own reply stream.

use super::blob::{self, INLINE_MAX};
use super::builder::PoolBuilder;
use super::engine::Engine;
use super::entry::{fingerprint, seal, ChunkHead};
use super::error::ClusterError;
use super::imap::IMap;
use super::jobs::Jobs;
use super::keys::unique_id;
use super::{beat, results};
use crate::error::{Error, PoolError};
use crate::pool::remote::{Cell, Collect, Gather, Sink, Spare};
use crate::pool::{default_chunksize, next_chunk, paced_window, AsyncResult, Callbacks};
use crate::sys::transfer::portable;
use crate::task::registry;
use crate::task::{Call, IntoCall, MapTask, TakesArgs, Task, TaskRef};
use crate::util::lock;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The pool is running.
pub(crate) const RUNNING: u8 = 0;
/// `close` was called.
pub(crate) const CLOSED: u8 = 1;
/// `terminate` was called (or the pool dropped).
pub(crate) const TERMINATED: u8 = 2;

/// What the caller's threads share.
pub(crate) struct Inner {
    pub(crate) engine: Engine,
    /// This caller's id: its reply stream and heartbeat are named after it.
    pub(crate) id: String,
    pub(crate) reply: String,
    submit: Mutex<redis::Connection>,
    pub(crate) jobs: Mutex<Jobs>,
    next_job: AtomicU64,
    pub(crate) phase: AtomicU8,
    pub(crate) spare: Spare,
    pub(crate) deadline: Duration,
    /// The epoch marker Redis had at connect.
    pub(crate) epoch: Mutex<String>,
    /// The worker processes of the live nodes, as the heartbeat thread last counted them.
    pub(crate) live_processes: AtomicUsize,
    /// How many times a lost node's chunk is queued again ([`Lost::Retry`](super::Lost::Retry)).
    retries: u32,
}

impl Inner {
    /// Sends chunk `index` of `job` (`count` calls of `T`, packed in `bytes`), or fails it in
    /// `sink` if it did not pack or could not be sent.
    pub(crate) fn send_chunk<T: Task>(
        &self,
        job: u64,
        index: u64,
        count: u32,
        bytes: Result<Vec<u8>, Error>,
        sink: &Arc<dyn Sink>,
    ) {
        let part = crate::pool::remote::Part::whole(index as usize, count);
        let fail = |e: Error| {
            let failure = crate::pool::remote::ChunkFailure::Unsent(Arc::new(e));
            sink.deliver(part, 0, Err(failure));
        };
        let args = match bytes {
            Ok(args) => args,
            Err(e) => return fail(e),
        };
        let Ok(entry) = registry::lookup(T::NAME) else {
            return fail(Error::UnknownTask {
                name: T::NAME.to_owned(),
            });
        };
        let head = ChunkHead {
            caller: self.id.clone(),
            job,
            index,
            task: T::NAME.to_owned(),
            count,
            fingerprint: fingerprint(entry),
            offset: 0,
            attempt: 0,
            retries: self.retries,
            pieces: None,
        };
        lock(&self.jobs).add_chunk(job, index, count);
        let sent = self.add_entry(head, &args);
        self.spare.give(args);
        match sent {
            Ok(id) => lock(&self.jobs).sent(job, index, id),
            Err(e) => {
                let error: Error = e.into();
                // The chunk is answered here, once, unless a results pass failed it already.
                let failed = lock(&self.jobs).accept_failure(job, index, &error);
                if let Some(delivery) = failed {
                    delivery.deliver();
                }
            }
        }
    }

    /// Adds the chunk of `head` and `args` to the task stream (its arguments in pieces if they
    /// are large); returns its entry id.
    fn add_entry(&self, mut head: ChunkHead, args: &[u8]) -> Result<String, ClusterError> {
        let mut con = lock(&self.submit);
        let mut inline = args;
        if args.len() > INLINE_MAX {
            let name = format!("{}:{}:{}", self.id, head.job, head.index);
            head.pieces = Some(blob::store(&self.engine, &mut con, &name, args)?);
            inline = &[];
        }
        let signed = seal(&self.engine.signer, &head, args);
        let id = redis::cmd("XADD")
            .arg(self.engine.keys.tasks())
            .arg("*")
            .arg("m")
            .arg(signed.head)
            .arg("a")
            .arg(inline)
            .arg("h")
            .arg(signed.tag)
            .query::<String>(&mut *con)?;
        Ok(id)
    }

    /// A new job id, its sink registered.
    pub(crate) fn open_job(&self, sink: Arc<dyn Sink>) -> u64 {
        let job = self.next_job.fetch_add(1, Ordering::Relaxed);
        lock(&self.jobs).open(job, sink);
        job
    }

    /// The worker processes of the live nodes, at least 1 (counted once a heartbeat, so that a
    /// call pays no round trip for it).
    pub(crate) fn processes(&self) -> usize {
        self.live_processes.load(Ordering::Relaxed).max(1)
    }
}

/// A pool whose workers run on other machines (Ray's `ray.util.multiprocessing.Pool`), through
/// Redis Streams: the local [`Pool`](crate::Pool)'s methods and result types. Worker nodes run
/// the same binary in worker mode ([`Worker`](super::Worker), [`serve_if_worker`](super::serve_if_worker)).
///
/// Dropping it terminates it: its queued chunks are deleted, and the calls not answered fail.
/// Calls wait in Redis for a node to take them: with no node serving the pool, a `map` waits
/// until one starts (use the `_async` forms and `get_timeout` to bound the wait).
///
/// # Examples
///
/// ```no_run
/// use multiproc::prelude::*;
/// use multiproc::cluster;
///
/// #[process_task]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// fn main() -> multiproc::Result<()> {
///     cluster::serve_if_worker()?; // a worker node stops here
///     let pool = cluster::Pool::builder("redis://127.0.0.1:6379").pool("demo").key("s3cret").build()?;
///     assert_eq!(pool.map(task!(square), 0..4)?, vec![0, 1, 4, 9]);
///     assert_eq!(pool.apply(task!(square, 7))?, 49);
///     pool.close();
///     pool.join()
/// }
/// ```
pub struct Pool {
    pub(crate) inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    results_id: std::thread::ThreadId,
}

type Output<C> = <<C as IntoCall>::Task as Task>::Output;
type MapOutput<M> = <<M as MapTask>::Task as Task>::Output;

impl Pool {
    /// Starts the pool's threads on a connected engine: `deadline` for a lost Redis, `retries`
    /// of a lost node's chunks.
    pub(crate) fn start(
        engine: Engine,
        mut con: redis::Connection,
        deadline: Duration,
        retries: u32,
    ) -> Result<Pool, Error> {
        let epoch = engine.prepare(&mut con)?;
        let live_processes = AtomicUsize::new(beat::live_processes(&engine, &mut con));
        let id = unique_id();
        let inner = Arc::new(Inner {
            reply: engine.keys.reply(&id),
            engine,
            id,
            submit: Mutex::new(con),
            jobs: Mutex::new(Jobs::default()),
            next_job: AtomicU64::new(0),
            phase: AtomicU8::new(RUNNING),
            spare: Spare::default(),
            deadline,
            epoch: Mutex::new(epoch),
            live_processes,
            retries,
        });
        beat::caller_beat_once(&inner)?;
        let reader = inner.engine.connection()?;
        let results = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("multiproc-cluster-results".into())
                .spawn(move || results::run(inner, reader))?
        };
        let beat = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("multiproc-cluster-heartbeat".into())
                .spawn(move || beat::run_caller(inner))?
        };
        let results_id = results.thread().id();
        Ok(Pool {
            inner,
            threads: Mutex::new(vec![results, beat]),
            results_id,
        })
    }

    /// A builder for a pool on the Redis at `url` (`redis://[user:password@]host:port/db`).
    pub fn builder(url: &str) -> PoolBuilder {
        PoolBuilder::new(url)
    }

    /// The worker processes of the nodes alive (at least 1), which the default chunksize is
    /// computed over; counted again every second.
    pub fn processes(&self) -> usize {
        self.inner.processes()
    }

    /// Sends the `len` arguments `args` of `T` in chunks and completes the result as `collect`
    /// says; `paced` keeps only a window of chunks in flight (for a caller that waits anyway).
    fn submit<T: Task, Out: Send + 'static>(
        &self,
        len: usize,
        mut args: impl Iterator<Item = T::Args>,
        chunksize: Option<usize>,
        callbacks: Callbacks<Out>,
        collect: Collect<T::Output, Out>,
        paced: bool,
    ) -> AsyncResult<Out> {
        let cell = Cell::new(callbacks);
        let processes = self.inner.processes();
        let chunksize = match chunksize {
            Some(0) => return fail_now(cell, PoolError::ZeroChunksize.into()),
            Some(n) => n.min(u32::MAX as usize),
            None => default_chunksize(len, processes),
        };
        if self.inner.phase.load(Ordering::Acquire) != RUNNING {
            return fail_now(cell, PoolError::NotRunning.into());
        }
        let gather = Gather::<T, Out>::new(cell.clone(), len, chunksize, collect);
        let sink: Arc<dyn Sink> = gather.clone();
        let job = self.inner.open_job(sink.clone());
        let mut chunks = 0usize;
        let mut window = usize::MAX;
        loop {
            if chunks >= window {
                gather.wait_delivered(chunks + 1 - window);
            }
            let next = portable(|| next_chunk::<T>(&mut args, chunksize, &self.inner.spare));
            let Some((count, bytes)) = next else { break };
            if chunks == 0 && paced {
                window = paced_window(bytes.as_ref().map_or(0, Vec::len), processes);
            }
            self.inner
                .send_chunk::<T>(job, chunks as u64, count, bytes, &sink);
            chunks += 1;
        }
        lock(&self.inner.jobs).seal(job);
        gather.seal(chunks);
        AsyncResult::new(cell)
    }

    fn submit_items<T: Task, I: Iterator>(
        &self,
        items: I,
        to_args: impl Fn(I::Item) -> T::Args,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<T::Output>>,
        paced: bool,
    ) -> AsyncResult<Vec<T::Output>> {
        let items: Vec<I::Item> = items.collect();
        let len = items.len();
        let args = items.into_iter().map(to_args);
        self.submit::<T, _>(len, args, chunksize, callbacks, Collect::items(), paced)
    }

    /// Runs one call on a worker node and waits for its result (Python's `apply`).
    ///
    /// # Errors
    ///
    /// The task's failure, or [`ClusterError::WorkerLost`] if the node holding it died.
    pub fn apply<C: IntoCall>(&self, call: C) -> Result<Output<C>, Error> {
        self.apply_async(call).get()
    }

    /// Starts one call (Python's `apply_async`).
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
        cb: Callbacks<T::Output>,
    ) -> AsyncResult<T::Output> {
        let args = std::iter::once(call.into_args());
        self.submit::<T, _>(1, args, Some(1), cb, Collect::one(), false)
    }

    /// Calls a one-argument task on every item, in chunks, and returns the results in input
    /// order (Python's `map`); the first failure is returned once every chunk has finished.
    ///
    /// # Errors
    ///
    /// The first call's failure, in input order, as for the local pool's `map`.
    pub fn map<M: MapTask>(
        &self,
        task: M,
        items: impl IntoIterator<Item = M::Item>,
    ) -> Result<Vec<MapOutput<M>>, Error> {
        self.map_with(task, items, None, Callbacks::new(), true)
            .get()
    }

    /// [`map`](Pool::map) with an explicit chunksize.
    ///
    /// # Errors
    ///
    /// As [`map`](Pool::map); a chunksize of 0 is [`PoolError::ZeroChunksize`].
    pub fn map_chunked<M: MapTask>(
        &self,
        task: M,
        items: impl IntoIterator<Item = M::Item>,
        chunksize: usize,
    ) -> Result<Vec<MapOutput<M>>, Error> {
        let callbacks = Callbacks::new();
        self.map_with(task, items, Some(chunksize), callbacks, true)
            .get()
    }

    fn map_with<M: MapTask>(
        &self,
        task: M,
        items: impl IntoIterator<Item = M::Item>,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<MapOutput<M>>>,
        paced: bool,
    ) -> AsyncResult<Vec<MapOutput<M>>> {
        let to_args = |item| task.args_for(item);
        let items = items.into_iter();
        self.submit_items::<M::Task, _>(items, to_args, chunksize, callbacks, paced)
    }

    /// Starts a [`map`](Pool::map) (Python's `map_async`).
    pub fn map_async<M: MapTask>(
        &self,
        task: M,
        items: impl IntoIterator<Item = M::Item>,
    ) -> AsyncResult<Vec<MapOutput<M>>> {
        self.map_with(task, items, None, Callbacks::new(), false)
    }

    /// Starts a [`map`](Pool::map) with a chunksize and callbacks (Python's
    /// `map_async(f, items, chunksize, callback, error_callback)`).
    pub fn map_async_with<M: MapTask>(
        &self,
        task: M,
        items: impl IntoIterator<Item = M::Item>,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<MapOutput<M>>>,
    ) -> AsyncResult<Vec<MapOutput<M>>> {
        self.map_with(task, items, chunksize, callbacks, false)
    }

    /// Calls a task on every tuple of positional arguments and returns the results in input
    /// order (Python's `starmap`).
    ///
    /// # Errors
    ///
    /// As [`map`](Pool::map).
    pub fn starmap<T: TakesArgs<A>, A>(
        &self,
        task: TaskRef<T>,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<T::Output>, Error> {
        self.starmap_async_with(task, items, None, Callbacks::new())
            .get()
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
        _task: TaskRef<T>,
        items: impl IntoIterator<Item = A>,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<T::Output>>,
    ) -> AsyncResult<Vec<T::Output>> {
        let items = items.into_iter();
        self.submit_items::<T, _>(items, T::args_from, chunksize, callbacks, false)
    }

    /// Calls a one-argument task on every item, lazily, yielding results in input order
    /// (Python's `imap`, chunksize 1), with a bounded number of chunks in flight: the input may
    /// be endless.
    pub fn imap<M: MapTask, I: IntoIterator<Item = M::Item>>(
        &self,
        task: M,
        items: I,
    ) -> IMap<M::Task, I::IntoIter, M> {
        IMap::new(self, task, items.into_iter(), 1, true)
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
    pub fn imap_unordered<M: MapTask, I: IntoIterator<Item = M::Item>>(
        &self,
        task: M,
        items: I,
    ) -> IMap<M::Task, I::IntoIter, M> {
        IMap::new(self, task, items.into_iter(), 1, false)
    }

    /// Accepts no more work; [`join`](Pool::join) then waits for the work in flight (Python's
    /// `close`). The worker nodes are shared and go on serving.
    pub fn close(&self) {
        let _ =
            self.inner
                .phase
                .compare_exchange(RUNNING, CLOSED, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Deletes this caller's queued chunks and fails every unanswered call with
    /// [`PoolError::Terminated`] (Python's `terminate`); calls already running on nodes finish
    /// there, their results dropped. Idempotent.
    pub fn terminate(&self) {
        self.inner.phase.store(TERMINATED, Ordering::Release);
        self.join_threads();
    }

    /// Waits for the work in flight to finish (Python's `join`).
    ///
    /// # Errors
    ///
    /// [`PoolError::Running`] unless the pool was closed or terminated first.
    pub fn join(&self) -> Result<(), Error> {
        if self.inner.phase.load(Ordering::Acquire) == RUNNING {
            return Err(PoolError::Running.into());
        }
        self.join_threads();
        Ok(())
    }

    fn join_threads(&self) {
        if std::thread::current().id() == self.results_id {
            return;
        }
        let threads = std::mem::take(&mut *lock(&self.threads));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

fn fail_now<R>(cell: Arc<Cell<R>>, error: Error) -> AsyncResult<R> {
    cell.complete(Err(error));
    AsyncResult::new(cell)
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.terminate();
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("cluster::Pool")
            .field("id", &self.inner.id)
            .field("phase", &self.inner.phase.load(Ordering::Relaxed))
            .finish()
    }
}
