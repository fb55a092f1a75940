//! The options of a [`Pool`] before it starts (the keyword arguments of Python's `Pool(...)`),
//! and the start method its workers use (Python's `ctx.Pool`).

use super::worker::{EncodedCall, WorkerConfig};
use super::{handler, ring, Pool, PoolError};
use crate::error::Error;
use crate::process::Context;
use crate::task::registry;
use crate::task::{Call, IntoCall, Task};
use crate::{wire, StartMethod};
use std::sync::{Arc, Mutex};

/// Options for a [`Pool`] (the keyword arguments of Python's `Pool(...)`).
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
/// use multiproc::{get_context, StartMethod};
///
/// #[process_task]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// // Python's `get_context("spawn").Pool(2, maxtasksperchild=10)`.
/// let pool = get_context(StartMethod::Spawn)?.pool().processes(2).maxtasksperchild(10).build()?;
/// assert_eq!(pool.map(task!(square), 1..=3)?, vec![1, 4, 9]);
/// # Ok(())
/// # }
/// ```
#[must_use = "a PoolBuilder does nothing until `build` is called"]
pub struct PoolBuilder {
    processes: Option<usize>,
    initializer: Option<Result<EncodedCall, Error>>,
    max_tasks_per_child: Option<u64>,
    method: Option<StartMethod>,
}

impl PoolBuilder {
    pub(super) fn new() -> Self {
        PoolBuilder {
            processes: None,
            initializer: None,
            max_tasks_per_child: None,
            method: None,
        }
    }

    /// The number of workers (Python's `processes`); by default [`cpu_count`](crate::cpu_count).
    pub fn processes(mut self, processes: usize) -> Self {
        self.processes = Some(processes);
        self
    }

    /// A task each worker runs once as it starts (Python's `initializer` and `initargs`):
    /// a bound call, or `task!(f)` for a task without parameters.
    /// If it panics, the worker exits with code 1 and the tasks waiting for it fail with
    /// [`Error::Exited`]; a new worker is tried after a short pause.
    pub fn initializer(mut self, call: impl IntoCall) -> Self {
        self.initializer = Some(encode_call(call.into_call()));
        self
    }

    /// How many chunks a worker runs before it exits and a fresh one replaces it (Python's
    /// `maxtasksperchild`; as in Python, each chunk of a map counts as one task).
    pub fn maxtasksperchild(mut self, tasks: u64) -> Self {
        self.max_tasks_per_child = Some(tasks);
        self
    }

    /// How the workers start, the first ones and their replacements alike (Python's
    /// `get_context(m).Pool(..)`, which [`Context::pool`] gives too); by default as this
    /// process starts its children ([`get_start_method`](crate::get_start_method)). A worker
    /// started by [`StartMethod::Spawn`] runs only what it is sent by name: the initializer and
    /// the tasks, never the parent's memory.
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Starts the workers.
    ///
    /// Errors: [`PoolError::NoProcesses`] for zero processes or zero `maxtasksperchild`; the
    /// initializer's [`Error::UnknownTask`] or encoding error; [`Error::DaemonicParent`] in a
    /// daemonic process (a pool worker, say); [`Error::Start`] if the start method cannot be
    /// used here; [`Error::Io`] if the system refuses.
    pub fn build(self) -> Result<Pool, Error> {
        let processes = self.processes.unwrap_or_else(crate::cpu_count);
        if processes == 0 || self.max_tasks_per_child == Some(0) {
            return Err(PoolError::NoProcesses.into());
        }
        // The hook that records where a panic happened, for the input panics that a lazy map
        // catches here: a fork installs it on the way, a spawn does not.
        crate::task::panic::prepare_fork();
        let config = WorkerConfig {
            initializer: self.initializer.transpose()?,
            max_chunks: self.max_tasks_per_child,
            bell: Arc::new(ring::Bell::new()?),
            method: self.method,
        };
        let shared = super::state::Shared::start(processes, config)?;
        let for_thread = shared.clone();
        // The result thread starts the replacement workers, and forked ones run on a copy of its
        // stack: it gets a main thread's, where the first workers are usually forked, so that a
        // task that runs in a first worker does not overflow the stack of a renewed one.
        let own = crate::sys::threads::OwnThread::count();
        let handler = std::thread::Builder::new()
            .name("multiproc-pool".to_owned())
            .stack_size(crate::sys::main_stack_size())
            .spawn(move || {
                let _own = own;
                handler::run(for_thread)
            })?;
        Ok(Pool {
            shared,
            handler_id: handler.thread().id(),
            handler: Mutex::new(Some(handler)),
            processes,
        })
    }
}

impl Context {
    /// A pool whose workers start by this context's method (Python's `ctx.Pool(..)`): set its
    /// other options on the builder, then [`build`](PoolBuilder::build) it.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::prelude::*;
    /// use multiproc::{get_context, StartMethod};
    ///
    /// #[process_task]
    /// fn pid() -> u32 {
    ///     std::process::id()
    /// }
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let pool = get_context(StartMethod::Spawn)?.pool().processes(1).build()?;
    /// assert_ne!(pool.apply(task!(pid))?, std::process::id());
    /// # Ok(())
    /// # }
    /// ```
    pub fn pool(&self) -> PoolBuilder {
        Pool::builder().start_method(self.start_method())
    }
}

/// A call looked up and encoded for a worker to run (the pool's initializer).
fn encode_call<T: Task>(call: Call<T>) -> Result<EncodedCall, Error> {
    let entry = registry::lookup(T::NAME)?;
    Ok(EncodedCall {
        entry,
        args: wire::encode(call.args())?,
    })
}
