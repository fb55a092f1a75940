//! Processes: start a task in a child process, wait for it, and get its result (Python's
//! `multiprocessing.Process`).
//!
//! [`Process`] is the builder (`Process(target=.., args=.., name=.., daemon=..)`), and
//! [`Process::start`] gives a [`ProcessHandle`], whose `join` returns what the task returned.
//! A panic in the task, an exit code or a signal becomes an [`Error`] that names the process.

mod boot;
pub(crate) mod children;
pub(crate) mod current;
mod fork;
mod forkserver;
mod handle;
mod method;
mod spawn;

pub use current::{cpu_count, current_process, parent_process, CurrentProcess, ParentProcess};
pub use handle::{CloseError, ProcessHandle};
pub use method::{
    get_all_start_methods, get_context, get_start_method, set_start_method, set_start_method_force,
    Context, StartError, StartMethod,
};

use crate::error::Error;
use crate::task::{Call, FnTarget, TakesArgs, Target, Task, TaskRef};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A process to start: its target, and optionally a name and the daemon flag (Python's
/// `multiprocessing.Process` before `start()`).
///
/// The target is a task bound to its arguments (`task!(f, ..)`), a task given its arguments
/// with [`args`](Process::args), a [`Run`](crate::Run) value, or a closure
/// ([`fork`](Process::fork)). Nothing happens until [`start`](Process::start), which returns
/// the [`ProcessHandle`].
///
/// # Examples
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
    /// The method a [`Context`] chose; `None`: the process's own.
    method: Option<StartMethod>,
}

impl<C> Process<C> {
    /// A process that will run `target` (Python's `Process(target=f, args=..)`): a [`Call`]
    /// (`task!(f, ..)`), a [`TaskRef`] (`task!(f)`, then [`args`](Process::args)), or a value
    /// whose type has `#[process_task] impl Run`.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::prelude::*;
    ///
    /// #[process_task]
    /// fn double(x: i32) -> i32 {
    ///     x * 2
    /// }
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let p = Process::new(task!(double, 21)).start()?;
    /// assert_eq!(p.join()?, 42);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(target: C) -> Self {
        Process {
            target,
            name: None,
            daemon: None,
            method: None,
        }
    }

    /// The process, to be started by `method` whatever this process's own (a [`Context`]'s).
    pub(crate) fn with_method(mut self, method: StartMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Names the process (Python's `name=`); by default `Process-N` for the N-th child this
    /// process starts. The child sees it as [`current_process().name()`](current_process).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::prelude::*;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let p = Process::from_fn(|| current_process().name().to_string()).name("reporter").start()?;
    /// assert_eq!(p.name(), "reporter");
    /// assert_eq!(p.join()?, "reporter");
    /// # Ok(())
    /// # }
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Makes the process daemonic or not (Python's `daemon=`); by default, the flag of the
    /// process that starts it. A daemonic process is terminated when its parent exits normally
    /// and killed when its parent dies any other way, and cannot start children of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::prelude::*;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// // A daemonic process may not start children (Python's rule).
    /// let p = Process::from_fn(|| {
    ///     matches!(Process::fork(|| ()), Err(multiproc::Error::DaemonicParent))
    /// })
    /// .daemon(true)
    /// .start()?;
    /// assert!(p.daemon());
    /// assert!(p.join()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = Some(daemon);
        self
    }
}

impl<T: Task> Process<TaskRef<T>> {
    /// Binds the task's positional arguments, a tuple (Python's `args=(..)`). Parameters with a
    /// `#[default]` may be left off the end. A tuple of the wrong types or length does not
    /// compile.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::prelude::*;
    ///
    /// #[process_task]
    /// fn greet(greeting: String, #[default(1)] times: usize) -> String {
    ///     greeting.repeat(times)
    /// }
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let twice = Process::new(task!(greet)).args(("hi ".to_string(), 2)).start()?;
    /// let once = Process::new(task!(greet)).args(("hi ".to_string(),)).start()?;
    /// assert_eq!(twice.join()?, "hi hi ");
    /// assert_eq!(once.join()?, "hi ");
    /// # Ok(())
    /// # }
    /// ```
    pub fn args<A>(self, args: A) -> Process<Call<T>>
    where
        T: TakesArgs<A>,
    {
        Process {
            target: self.target.bind(args),
            name: self.name,
            daemon: self.daemon,
            method: self.method,
        }
    }
}

impl<F, R> Process<FnTarget<F>>
where
    F: FnOnce() -> R + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    /// A process that runs a closure, to be named or made daemonic before
    /// [`start`](Process::start) (Python's `Process(target=lambda: ..)`, which only the fork
    /// start method accepts). Only fork can run a closure, since the child must inherit it in
    /// memory; its result must be a serde type, as it travels back to the parent.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::prelude::*;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let words = vec!["a", "bb", "ccc"];
    /// let p = Process::from_fn(move || words.iter().map(|w| w.len()).sum::<usize>())
    ///     .name("counter")
    ///     .start()?;
    /// assert_eq!(p.join()?, 6);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_fn(body: F) -> Self {
        Process::new(FnTarget(body))
    }

    /// Forks a process that runs a closure (as `std::thread::spawn` starts a thread); the same
    /// as `Process::from_fn(body).start()`. A closure can only be forked, since the child must
    /// inherit it in memory: under a start method chosen on purpose to be another (with
    /// [`set_start_method`] or a [`Context`]), it is refused with
    /// [`StartError::ClosureNeedsFork`]; the default, and `MULTIPROC_START_METHOD`, still fork
    /// it.
    ///
    /// The child works on its own copy of the captured values: what it changes in them the
    /// parent never sees, unless they live in shared memory ([`Value`](crate::Value) and its
    /// kin) or travel back as the result.
    ///
    /// # Errors
    ///
    /// As [`start`](Process::start).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::prelude::*;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let mut count = 1;
    /// let p = Process::fork(move || {
    ///     count += 1; // the child's copy
    ///     count
    /// })?;
    /// assert_eq!(p.join()?, 2);
    /// assert_eq!(count, 1); // the parent's is untouched
    /// # Ok(())
    /// # }
    /// ```
    pub fn fork(body: F) -> Result<ProcessHandle<R>, Error> {
        Process::from_fn(body).start()
    }
}

impl<C: Target> Process<C> {
    /// Starts the process (Python's `start()`) by the start method of its [`Context`], or this
    /// process's ([`get_start_method`]): a child that runs the target and sends its result
    /// back. Returns its handle at once.
    ///
    /// # Errors
    ///
    /// - [`Error::DaemonicParent`] when called in a daemonic process.
    /// - [`Error::Start`]: a closure under a method chosen to be another than fork; spawn not
    ///   available in this program (a shared library); a start from a constructor while this
    ///   process boots as a spawned child; a bad `MULTIPROC_START_METHOD`.
    /// - [`Error::DuplicateTask`] if two tasks are registered under the target's name (two
    ///   functions of one name in one module path); [`Error::UnknownTask`] if none is.
    /// - [`Error::Io`] if the system refuses a process (`fork`), a pipe or a pidfd.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::prelude::*;
    ///
    /// #[process_task]
    /// fn hello() -> String {
    ///     "hello".to_string()
    /// }
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let handle = Process::new(task!(hello)).start()?;
    /// assert!(handle.pid() > 0);
    /// assert_eq!(handle.join()?, "hello");
    /// # Ok(())
    /// # }
    /// ```
    pub fn start(self) -> Result<ProcessHandle<C::Output>, Error> {
        boot::check_not_bootstrapping()?;
        let (method, explicit) = match self.method {
            Some(method) => (method, true),
            None => method::chosen()?,
        };
        // A closure can only be forked; it is refused only where fork was ruled out on
        // purpose, so that a suite run under another default still runs its closures.
        let forked =
            method == StartMethod::Fork || (!explicit && self.target.task_name().is_none());
        let core = match method {
            _ if forked => {
                if !explicit {
                    fork::warn_if_threaded();
                }
                fork::start_fork(self.target, self.name, self.daemon)
            }
            StartMethod::Forkserver => {
                forkserver::start_forkserver(self.target, self.name, self.daemon)
            }
            _ => spawn::start_spawn(self.target, self.name, self.daemon),
        };
        core.map(ProcessHandle::new)
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
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
/// use std::time::Duration;
///
/// # fn main() -> multiproc::Result<()> {
/// let p = Process::fork(|| std::thread::sleep(Duration::from_secs(60)))?;
/// assert!(active_children().iter().any(|c| c.pid() == p.pid()));
/// p.kill()?;
/// let _ = p.join();
/// assert!(!active_children().iter().any(|c| c.pid() == p.pid()));
/// # Ok(())
/// # }
/// ```
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
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
///
/// #[process_task]
/// fn quit(code: i32) {
///     multiproc::exit(code)
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let p = Process::new(task!(quit, 3)).start()?;
/// assert!(matches!(p.join(), Err(multiproc::Error::Exited { code: 3, .. })));
/// assert_eq!(p.exitcode(), Some(3));
/// # Ok(())
/// # }
/// ```
pub fn exit(code: i32) -> ! {
    if current::is_child() {
        fork::exit_child(code)
    } else {
        std::process::exit(code)
    }
}
