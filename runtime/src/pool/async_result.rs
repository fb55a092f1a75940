//! Results that arrive later: [`AsyncResult`] (Python's `ApplyResult`, and `MapResult` for
//! `map_async`) and the success and error [`Callbacks`]. A job's sink completes the result's
//! [`Cell`] once: it runs the callback (exactly one of the two, once, on the result thread, as
//! Python does) and then wakes whoever waits in `get`.

use crate::error::Error;
use crate::error::PoolError;
use crate::sys::backoff::{watch, Patience};
use crate::util::lock;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

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
    /// ([`Error::Panicked`] with the panic message and location, and for a map the item,
    /// [`Error::Signaled`] naming the worker that was killed while it held the task, ...).
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
