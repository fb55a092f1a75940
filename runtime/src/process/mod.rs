//! Processes: start a task in a child process, wait for it, and get its result (Python's
//! `multiprocessing.Process`).
//!
//! [`Process`] is the builder (`Process(target=.., args=.., name=.., daemon=..)`), and
//! [`Process::start`] gives a [`ProcessHandle`], whose `join` returns what the task returned.
//! A panic in the task, an exit code or a signal becomes an [`Error`] that names the process.

pub(crate) mod children;
pub(crate) mod current;
mod fork;
mod handle;

pub use current::{cpu_count, current_process, parent_process, CurrentProcess, ParentProcess};
pub use handle::{CloseError, ProcessHandle};

use crate::error::Error;
use crate::task::{Call, FnTarget, TakesArgs, Target, Task, TaskRef};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A process to start: its target, and optionally a name and the daemon flag (Python's
/// `multiprocessing.Process` before `start()`).
///
/// ```
/// use multiproc::prelude::*;
///
/// #[process_task]
/// fn greet(name: String) -> String {
///     format!("hello {name}")
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let p = Process::new(task!(greet)).args(("bob".to_string(),)).name("greeter").start()?;
/// assert_eq!(p.join()?, "hello bob");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a Process does nothing until it is started"]
pub struct Process<C> {
    target: C,
    name: Option<String>,
    daemon: Option<bool>,
}

impl<C> Process<C> {
    /// A process that will run `target`: a [`Call`] (`task!(f, ..)`), a [`TaskRef`] (`task!(f)`,
    /// then [`args`](Process::args)), or a value whose type has `#[process_task] impl Run`.
    pub fn new(target: C) -> Self {
        Process {
            target,
            name: None,
            daemon: None,
        }
    }

    /// Names the process (Python's `name=`); by default `Process-N`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Makes the process daemonic or not (Python's `daemon=`); by default, the flag of the
    /// process that starts it. A daemonic process is terminated when its parent exits normally
    /// and killed when its parent dies any other way, and cannot start children of its own.
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = Some(daemon);
        self
    }
}

impl<T: Task> Process<TaskRef<T>> {
    /// Binds the task's positional arguments, a tuple (Python's `args=(..)`). Parameters with a
    /// `#[default]` may be left off the end.
    pub fn args<A>(self, args: A) -> Process<Call<T>>
    where
        T: TakesArgs<A>,
    {
        Process {
            target: self.target.bind(args),
            name: self.name,
            daemon: self.daemon,
        }
    }
}

impl<F, R> Process<FnTarget<F>>
where
    F: FnOnce() -> R + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    /// A process that runs a closure. Only the fork start method can run a closure, since the
    /// child must inherit it in memory.
    pub fn from_fn(body: F) -> Self {
        Process::new(FnTarget(body))
    }

    /// Starts a process that runs a closure (as `std::thread::spawn` starts a thread).
    pub fn spawn(body: F) -> Result<ProcessHandle<R>, Error> {
        Process::from_fn(body).start()
    }
}

impl<C: Target> Process<C> {
    /// Starts the process (Python's `start()`).
    ///
    /// Errors: [`Error::DaemonicParent`] in a daemonic process; [`Error::DuplicateTask`] or
    /// [`Error::UnknownTask`] if the task's name is not registered exactly once;
    /// [`Error::Io`] if the system refuses a process or a pipe.
    pub fn start(self) -> Result<ProcessHandle<C::Output>, Error> {
        fork::start_fork(self.target, self.name, self.daemon).map(ProcessHandle::new)
    }
}

/// A child process that this process started and has not yet reaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveChild {
    pid: i32,
    name: String,
    daemon: bool,
}

impl ActiveChild {
    /// The process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The process name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it is daemonic.
    pub fn daemon(&self) -> bool {
        self.daemon
    }
}

/// The children of this process that still run (Python's `active_children()`); as in Python,
/// it reaps those that have finished.
pub fn active_children() -> Vec<ActiveChild> {
    children::active()
        .iter()
        .map(|c| ActiveChild {
            pid: c.pid(),
            name: c.name().to_owned(),
            daemon: c.daemon(),
        })
        .collect()
}

/// Ends this process with exit code `code` (Python's `sys.exit(code)` in a child).
///
/// In a child process it joins the child's own children, flushes stdout and stderr, and leaves
/// with `_exit`, so the parent's `exitcode()` is `code`. In the main process it is
/// `std::process::exit`.
pub fn exit(code: i32) -> ! {
    if current::is_child() {
        fork::exit_child(code)
    } else {
        std::process::exit(code)
    }
}
