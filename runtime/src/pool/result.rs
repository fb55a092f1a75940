//! Results that arrive later: [`AsyncResult`] (Python's `AsyncResult` / `MapResult`), the
//! success and error [`Callbacks`], and the sinks that turn a chunk's encoded outcomes into them.
//!
//! The pool's result thread hands each part of a chunk's results to its job's [`Sink`], in order
//! within the chunk. A sink decodes the outcomes, and when its job is complete it runs the
//! callback (exactly one of the two, once, on the result thread, as Python does) and then wakes
//! whoever waits in `get`.

use super::channel::ResultFrame;
use crate::error::Error;
use crate::error::PoolError;
use crate::sys::backoff::{watch, Patience};
use crate::task::Task;
use crate::util::lock;
use crate::wire;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Why a whole chunk failed without running to its end.
#[derive(Debug, Clone)]
pub(crate) enum ChunkFailure {
    /// The worker holding it ended: killed by a signal (`code < 0`) or exited with `code`.
    Died { pid: i32, code: i32 },
    /// The pool was terminated.
    Terminated,
    /// The chunk was never sent: its arguments could not be encoded, or the pool was not running.
    Unsent(Arc<Error>),
}

impl ChunkFailure {
    pub(crate) fn to_error(&self) -> Error {
        match *self {
            ChunkFailure::Died { pid, code } if code < 0 => Error::Signaled { pid, signal: -code },
            ChunkFailure::Died { pid, code } => Error::Exited { pid, code },
            ChunkFailure::Terminated => PoolError::Terminated.into(),
            ChunkFailure::Unsent(ref error) => match **error {
                Error::Pool(ref pool) => pool.clone().into(),
                Error::Codec(ref codec) => codec.clone().into(),
                ref other => std::io::Error::other(other.to_string()).into(),
            },
        }
    }
}

/// What came back for a part of a chunk: the frame with the encoded outcomes of its calls, or
/// why they failed together.
pub(crate) type ChunkOutcome = Result<ResultFrame, ChunkFailure>;

/// Which calls of a job a delivery answers: `count` calls of chunk `index`, from the chunk's call
/// `first` on; `last` if they end the chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Part {
    pub(crate) index: usize,
    pub(crate) first: u32,
    pub(crate) count: u32,
    pub(crate) last: bool,
}

impl Part {
    /// All `count` calls of chunk `index`.
    pub(crate) fn whole(index: usize, count: u32) -> Part {
        Part {
            index,
            first: 0,
            count,
            last: true,
        }
    }

    /// Where the part after this one starts: (chunk, call).
    fn next(self) -> (usize, u32) {
        if self.last {
            (self.index + 1, 0)
        } else {
            (self.index, self.first + self.count)
        }
    }
}

/// Where the results of one job (a map, an apply, an imap) go.
pub(crate) trait Sink: Send + Sync {
    /// The calls of `part`, run by worker `pid`, finished. The parts of a chunk come in order.
    fn deliver(&self, part: Part, pid: i32, outcome: ChunkOutcome);
}

/// Calls `each` with the outcome of every call of task `T` in a part of a chunk, in order.
pub(crate) fn decode_outcomes<T: Task>(
    count: u32,
    pid: i32,
    outcome: ChunkOutcome,
    mut each: impl FnMut(Result<T::Output, Error>),
) {
    let frame = match outcome {
        Ok(frame) => frame,
        Err(failure) => return (0..count).for_each(|_| each(Err(failure.to_error()))),
    };
    match wire::OutcomeReader::new(frame.outcomes()) {
        Ok(mut reader) => read_outcomes::<T>(&mut reader, count, pid, each),
        Err(e) => (0..count).for_each(|_| each(Err(e.clone().into()))),
    }
}

/// Decodes the outputs of a part of a chunk of task `T` onto the end of `values`, all at once
/// when every call succeeded; returns the first failure if some did (`values` then misses their
/// outputs).
pub(crate) fn decode_values<T: Task>(
    count: u32,
    pid: i32,
    outcome: ChunkOutcome,
    values: &mut Vec<T::Output>,
) -> Result<(), Error> {
    let frame = outcome.map_err(|failure| failure.to_error())?;
    let mut reader = wire::OutcomeReader::new(frame.outcomes())?;
    let all = reader.take_all_values(|input| T::unpack_outputs(input, count as usize, values));
    if let Some(done) = all {
        return done.map_err(Error::from);
    }
    let mut first = Ok(());
    read_outcomes::<T>(&mut reader, count, pid, |one| match one {
        Ok(value) => values.push(value),
        Err(e) => {
            if first.is_ok() {
                first = Err(e);
            }
        }
    });
    first
}

/// Calls `each` with the outcome of each of the `count` calls that `reader` holds, in order; a
/// value that does not decode fails it and every call after it.
fn read_outcomes<T: Task>(
    reader: &mut wire::OutcomeReader<'_>,
    count: u32,
    pid: i32,
    mut each: impl FnMut(Result<T::Output, Error>),
) {
    for done in 0..count {
        match reader.next_outcome(T::unpack_output) {
            Ok(one) => each(one.map_err(|failure| Error::from_task_failure(pid, failure))),
            Err(e) => {
                (done..count).for_each(|_| each(Err(e.clone().into())));
                return;
            }
        }
    }
}

type OnSuccess<R> = Box<dyn FnOnce(&R) + Send>;
type OnError = Box<dyn FnOnce(&Error) + Send>;

/// Python's `callback` and `error_callback`: exactly one of them runs, once, when the result is
/// ready, on the pool's result thread and before `get` returns. Keep them short: they hold up
/// the delivery of other results, and a callback that waits for another result of the same pool
/// waits for ever (as in Python), since that result would be delivered by its own thread.
/// Submitting work or calling `terminate` from a callback is fine.
pub struct Callbacks<R> {
    on_success: Option<OnSuccess<R>>,
    on_error: Option<OnError>,
}

impl<R> Callbacks<R> {
    /// No callbacks yet.
    pub fn new() -> Self {
        Callbacks {
            on_success: None,
            on_error: None,
        }
    }

    /// Runs `f` with the value when the task succeeds (Python's `callback=`).
    pub fn on_success(mut self, f: impl FnOnce(&R) + Send + 'static) -> Self {
        self.on_success = Some(Box::new(f));
        self
    }

    /// Runs `f` with the error when the task fails (Python's `error_callback=`).
    pub fn on_error(mut self, f: impl FnOnce(&Error) + Send + 'static) -> Self {
        self.on_error = Some(Box::new(f));
        self
    }

    fn run(self, outcome: &Result<R, Error>) {
        // A panicking callback must not take the pool's result thread down with it.
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match outcome {
            Ok(value) => self.on_success.map(|f| f(value)),
            Err(error) => self.on_error.map(|f| f(error)),
        }));
        if ran.is_err() {
            eprintln!("multiproc: a pool callback panicked; the result is still delivered");
        }
    }
}

impl<R> Default for Callbacks<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> fmt::Debug for Callbacks<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks")
            .field("on_success", &self.on_success.is_some())
            .field("on_error", &self.on_error.is_some())
            .finish()
    }
}

struct CellState<R> {
    outcome: Option<Result<R, Error>>,
    /// `Some(successful)` once ready.
    success: Option<bool>,
    callbacks: Option<Callbacks<R>>,
}

/// The shared slot behind an [`AsyncResult`].
pub(crate) struct Cell<R> {
    state: Mutex<CellState<R>>,
    ready: Condvar,
    /// Set once the outcome is in, for waiters that watch before they sleep.
    done: AtomicBool,
}

impl<R> Cell<R> {
    pub(crate) fn new(callbacks: Callbacks<R>) -> Arc<Self> {
        Arc::new(Cell {
            state: Mutex::new(CellState {
                outcome: None,
                success: None,
                callbacks: Some(callbacks),
            }),
            ready: Condvar::new(),
            done: AtomicBool::new(false),
        })
    }

    /// Runs the callback, then makes the outcome available and wakes the waiters.
    pub(crate) fn complete(&self, outcome: Result<R, Error>) {
        let callbacks = lock(&self.state).callbacks.take();
        if let Some(callbacks) = callbacks {
            callbacks.run(&outcome);
        }
        let mut state = lock(&self.state);
        state.success = Some(outcome.is_ok());
        state.outcome = Some(outcome);
        self.done.store(true, Ordering::Release);
        self.ready.notify_all();
    }
}

/// A result that will be ready later (Python's `AsyncResult`, and `MapResult` for `map_async`).
///
/// The task keeps running whatever the caller does with this handle; dropping it only means
/// nobody reads the result.
pub struct AsyncResult<R> {
    cell: Arc<Cell<R>>,
}

impl<R> AsyncResult<R> {
    pub(crate) fn new(cell: Arc<Cell<R>>) -> Self {
        AsyncResult { cell }
    }

    /// Waits until ready, or until `deadline`; returns the locked state and whether it is ready.
    fn wait_until(
        &self,
        deadline: Option<Instant>,
    ) -> (std::sync::MutexGuard<'_, CellState<R>>, bool) {
        // A quick task answers within microseconds: watching a little first spares the caller a
        // sleep and the result thread a wake-up call.
        watch(Patience::CALLER, None, || {
            self.cell.done.load(Ordering::Acquire)
        });
        let mut state = lock(&self.cell.state);
        while state.success.is_none() {
            let now = Instant::now();
            state = match deadline {
                None => self
                    .cell
                    .ready
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                Some(d) if d <= now => return (state, false),
                Some(d) => {
                    self.cell
                        .ready
                        .wait_timeout(state, d - now)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0
                }
            };
        }
        (state, true)
    }

    /// Waits for the result and returns it (Python's `get()`): the task's value, or its error
    /// ([`Error::Panicked`] with the panic message, [`Error::Signaled`] naming the worker that was
    /// killed while it held the task, ...).
    pub fn get(self) -> Result<R, Error> {
        let (mut state, _) = self.wait_until(None);
        state.outcome.take().unwrap_or(Err(PoolError::Taken.into()))
    }

    /// Waits at most `timeout` for the result (Python's `get(timeout)`). If it is not ready then,
    /// the error is [`PoolError::Timeout`]; the task goes on, and a later call may succeed. The
    /// value is handed out once; a call after that is [`PoolError::Taken`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<R, Error> {
        let (mut state, ready) = self.wait_until(crate::util::deadline(timeout));
        if !ready {
            return Err(PoolError::Timeout.into());
        }
        state.outcome.take().unwrap_or(Err(PoolError::Taken.into()))
    }

    /// Waits until the result is ready (Python's `wait()`).
    pub fn wait(&self) {
        drop(self.wait_until(None));
    }

    /// Waits at most `timeout` (Python's `wait(timeout)`); returns whether the result is ready.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(crate::util::deadline(timeout)).1
    }

    /// Whether the result is ready (Python's `ready()`).
    pub fn ready(&self) -> bool {
        lock(&self.cell.state).success.is_some()
    }

    /// Whether the task succeeded (Python's `successful()`); [`PoolError::NotReady`] before it
    /// is ready.
    pub fn successful(&self) -> Result<bool, Error> {
        lock(&self.cell.state)
            .success
            .ok_or_else(|| PoolError::NotReady.into())
    }
}

impl<R> fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.ready())
            .finish()
    }
}

/// Gathers the chunks of a map (or the single chunk of an apply) and completes its cell when the
/// last one is in, with the values in input order or the first failure that arrived (Python's
/// `MapResult`). How many chunks there are is known once the submitter has sealed it.
///
/// Chunks mostly finish in order, so each part of one is decoded straight onto the end of the
/// result, which is allocated once; only a part that arrives before an earlier one (another
/// worker's chunk ahead of it is not in yet) waits on the side. The memory a part is decoded
/// into is mapped in first, in one system call, where it is fresh and spans a few pages: the
/// kernel then maps the pages in a loop rather than one fault at a time.
pub(crate) struct Gather<T: Task, Out> {
    parts: Mutex<Parts<T::Output>>,
    /// Signalled at a delivery while a submitter that paces its chunks waits for one.
    progress: Condvar,
    /// Set while a delivery (on the result thread) waits for `parts`: a submitter touching the
    /// vector's pages then leaves the lock to it.
    delivering: AtomicBool,
    cell: Arc<Cell<Out>>,
    finish: fn(Vec<T::Output>) -> Result<Out, Error>,
}

/// The most values a gather makes room for before the first arrives.
const PREALLOCATE: usize = 1 << 24;

struct Parts<R> {
    /// The values of the calls before `next`, in order.
    values: Vec<R>,
    /// The chunk and call whose values come next.
    next: (usize, u32),
    /// The index in `values`' capacity up to which the pages have been mapped in, by a waiting
    /// submitter or a delivery.
    touched: usize,
    /// Parts that arrived before their turn, by where they start.
    early: BTreeMap<(usize, u32), (Part, Vec<R>)>,
    /// Emptied buffers of parts that were set aside, kept for the next early parts: with two
    /// workers, every other chunk's parts arrive before their turn, and a fresh buffer costs a
    /// page fault per page.
    asides: Vec<Vec<R>>,
    first_error: Option<Error>,
    /// Chunks whose last part is in.
    delivered: usize,
    /// Whether the submitter waits on `progress` (a notification is a system call, so it is
    /// made only then).
    submitter_waits: bool,
    /// The number of chunks, once all are submitted.
    expected: Option<usize>,
    completed: bool,
}

/// The most emptied buffers of early parts a gather keeps for reuse.
const KEPT_ASIDES: usize = 8;

/// Pages of the result vector a waiting submitter maps in per hold of the lock (about 25 µs
/// where a page costs 1.5 to map in).
const TOUCH_PAGES: usize = 16;

impl<R> Parts<R> {
    fn with_capacity(values: usize) -> Self {
        let mut values = Vec::with_capacity(values);
        // Room already mapped in (memory the allocator had used) needs no touching.
        let touched = if crate::sys::mem::is_fresh(values.spare_capacity_mut()) {
            0
        } else {
            values.capacity()
        };
        Parts {
            values,
            next: (0, 0),
            touched,
            early: BTreeMap::new(),
            asides: Vec::new(),
            first_error: None,
            delivered: 0,
            submitter_waits: false,
            expected: None,
            completed: false,
        }
    }

    /// Maps in up to `pages` pages of the values' free room not touched yet, so that each is
    /// ready when a chunk's values are decoded into it; returns whether any was left to touch.
    fn touch_ahead(&mut self, pages: usize) -> bool {
        let size = std::mem::size_of::<R>();
        if size == 0 {
            return false;
        }
        let from = self.touched.saturating_sub(self.values.len());
        let stride = (crate::sys::mem::page_size() / size).max(1);
        self.touch_free(from.saturating_add(pages.saturating_mul(stride)))
    }

    /// Maps in the pages of the values' free room up to its `to`th slot that are not touched yet,
    /// in one system call rather than a page fault each; returns whether any was left to touch.
    fn touch_free(&mut self, to: usize) -> bool {
        let len = self.values.len();
        let from = self.touched.saturating_sub(len);
        let free = self.values.spare_capacity_mut();
        let to = to.min(free.len());
        if from >= to {
            return false;
        }
        crate::sys::mem::prefault(&mut free[from..to]);
        self.touched = len + to;
        true
    }

    /// Moves the parts set aside whose turn has come onto the end of the values.
    fn catch_up(&mut self) {
        while let Some((part, mut values)) = self.early.remove(&self.next) {
            self.values.append(&mut values);
            if self.asides.len() < KEPT_ASIDES {
                self.asides.push(values);
            }
            self.next = part.next();
        }
    }

    /// A buffer with room for `count` values, for a part that arrived before its turn: a kept
    /// one if one is big enough.
    fn take_aside(&mut self, count: usize) -> Vec<R> {
        match self.asides.iter().position(|kept| kept.capacity() >= count) {
            Some(found) => self.asides.swap_remove(found),
            None => {
                let mut fresh = Vec::with_capacity(count);
                crate::sys::mem::prefault_fresh(fresh.spare_capacity_mut());
                fresh
            }
        }
    }
}

impl<T: Task, Out> Gather<T, Out> {
    /// A gather of `len` values in all (room for at most [`PREALLOCATE`] is made at once; beyond
    /// that the vector grows as values arrive).
    pub(crate) fn new(
        cell: Arc<Cell<Out>>,
        len: usize,
        finish: fn(Vec<T::Output>) -> Result<Out, Error>,
    ) -> Arc<Self> {
        Arc::new(Gather {
            parts: Mutex::new(Parts::with_capacity(len.min(PREALLOCATE))),
            progress: Condvar::new(),
            delivering: AtomicBool::new(false),
            cell,
            finish,
        })
    }

    /// Waits until at least `chunks` chunks have been delivered.
    ///
    /// Meanwhile the submitter maps in the pages of the result vector's free room, a few per
    /// hold of the lock. A large map's vector is fresh memory: mapping its pages would otherwise
    /// all fall to the result thread as it decodes, the pool's busiest thread, while this one
    /// sleeps.
    pub(crate) fn wait_delivered(&self, chunks: usize) {
        let mut parts = lock(&self.parts);
        while parts.delivered < chunks {
            let touching = !self.delivering.load(Ordering::Relaxed);
            if touching && parts.touch_ahead(TOUCH_PAGES) {
                drop(parts);
                parts = lock(&self.parts);
                continue;
            }
            parts.submitter_waits = true;
            parts = self
                .progress
                .wait(parts)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        parts.submitter_waits = false;
    }

    /// Every chunk is submitted: `chunks` in all (none: the result is ready at once).
    pub(crate) fn seal(&self, chunks: usize) {
        let mut parts = lock(&self.parts);
        parts.expected = Some(chunks);
        self.complete_if_done(parts);
    }

    fn complete_if_done(&self, mut parts: std::sync::MutexGuard<'_, Parts<T::Output>>) {
        if parts.completed || parts.expected != Some(parts.delivered) {
            return;
        }
        parts.completed = true;
        let outcome = match parts.first_error.take() {
            Some(error) => Err(error),
            None => (self.finish)(std::mem::take(&mut parts.values)),
        };
        drop(parts);
        self.cell.complete(outcome);
    }
}

impl<T: Task, Out: Send> Sink for Gather<T, Out> {
    fn deliver(&self, part: Part, pid: i32, outcome: ChunkOutcome) {
        self.delivering.store(true, Ordering::Relaxed);
        let mut parts = lock(&self.parts);
        self.delivering.store(false, Ordering::Relaxed);
        let in_turn = parts.next == (part.index, part.first);
        let mut values = if in_turn {
            parts.touch_free(part.count as usize);
            std::mem::take(&mut parts.values)
        } else {
            parts.take_aside(part.count as usize)
        };
        let error = decode_values::<T>(part.count, pid, outcome, &mut values).err();
        if in_turn {
            parts.values = values;
            parts.next = part.next();
            parts.catch_up();
        } else {
            parts.early.insert((part.index, part.first), (part, values));
        }
        if parts.first_error.is_none() {
            parts.first_error = error;
        }
        if part.last {
            parts.delivered += 1;
            // The submitter waits for whole chunks.
            if parts.submitter_waits {
                self.progress.notify_one();
            }
        }
        self.complete_if_done(parts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emptied_aside_buffer_is_kept_for_the_next_early_part() {
        let mut parts = Parts::<u64>::with_capacity(0);
        let mut aside = parts.take_aside(100);
        aside.extend(0..100);
        let kept = aside.as_ptr();
        parts.early.insert((0, 0), (Part::whole(0, 100), aside));
        parts.catch_up();
        assert_eq!(parts.values, (0..100).collect::<Vec<u64>>());
        assert_eq!(parts.next, (1, 0));
        let again = parts.take_aside(60);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), kept, "the emptied buffer is reused");
        parts.asides.push(again);
        let bigger = parts.take_aside(101);
        assert!(bigger.capacity() >= 101);
        assert_ne!(
            bigger.as_ptr(),
            kept,
            "too small a kept buffer is not taken"
        );
        assert_eq!(parts.asides.len(), 1);
    }

    #[test]
    fn a_waiting_submitter_touches_the_free_room_a_few_pages_at_a_time_to_its_end() {
        let per_page = crate::sys::mem::page_size() / 8;
        let mut parts = Parts::<u64>::with_capacity(10 * per_page);
        // As for fresh memory, whatever the allocator gave.
        parts.touched = 0;
        parts.values.extend(0..per_page as u64 / 2);
        let pages = std::iter::from_fn(|| parts.touch_ahead(3).then_some(())).count();
        // The free room starts half a page in: 10 page strides cover it, 3 at a time.
        assert_eq!(pages, 4);
        assert_eq!(parts.touched, parts.values.capacity());
        assert!(!parts.touch_ahead(3));
        assert_eq!(parts.values.len(), per_page / 2, "touching adds no values");
        assert!(
            !Parts::<()>::with_capacity(1000).touch_ahead(3),
            "no pages to touch"
        );
    }
}
