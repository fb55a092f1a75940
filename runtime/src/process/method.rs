//! How children start (Python's `set_start_method`, `get_start_method`,
//! `get_all_start_methods` and `get_context`).
//!
//! `fork` copies the calling process; `spawn` executes this program again and runs the task by
//! name before `main` would start; `forkserver` asks a server, a process started once by spawn,
//! to fork the child from itself. The method is chosen once per process, explicitly or from
//! `MULTIPROC_START_METHOD`, or per [`Context`]; left alone it is forkserver (fork inside a
//! shared library, which cannot execute itself again). A closure always forks.

use super::boot;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

/// How a child process starts (Python's start method names).
///
/// # Examples
///
/// ```
/// use multiproc::StartMethod;
///
/// assert_eq!("spawn".parse::<StartMethod>()?, StartMethod::Spawn);
/// assert_eq!(StartMethod::Fork.to_string(), "fork");
/// # Ok::<(), multiproc::process::StartError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StartMethod {
    /// The child is a copy of the caller (`fork`): the fastest start, and the only one that can
    /// run a closure; but a lock another thread of the caller held at the fork stays held in
    /// the child for ever.
    Fork,
    /// The child executes this program again (`/proc/self/exe`) and runs the task by name
    /// before `main` would start: it inherits no memory, no thread and no lock.
    Spawn,
    /// The child is forked from a fork server (Python's `forkserver`): a process that this one
    /// starts once by spawn, on first use, which ran the program's constructors but never
    /// `main`, and has one thread. Each start costs a fork of that small, clean process, and the
    /// child inherits none of this process's memory, threads or locks. The server ends when this
    /// process ends, however it ends, and is started again if it was killed. The default where
    /// the program can execute itself again, as in Python 3.14 on Linux.
    Forkserver,
}

impl StartMethod {
    /// Every method, in the order of their codes.
    const ALL: [StartMethod; 3] = [
        StartMethod::Fork,
        StartMethod::Spawn,
        StartMethod::Forkserver,
    ];

    /// Python's name for the method: `"fork"`, `"spawn"` or `"forkserver"`.
    pub fn name(self) -> &'static str {
        match self {
            StartMethod::Fork => "fork",
            StartMethod::Spawn => "spawn",
            StartMethod::Forkserver => "forkserver",
        }
    }

    fn code(self) -> u8 {
        match self {
            StartMethod::Fork => 1,
            StartMethod::Spawn => 2,
            StartMethod::Forkserver => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }
}

impl fmt::Display for StartMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StartMethod {
    type Err = StartError;

    fn from_str(s: &str) -> Result<Self, StartError> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| StartError::UnknownMethod(s.to_owned()))
    }
}

/// Why a process could not be started the way it was asked to.
///
/// # Examples
///
/// ```
/// use multiproc::process::StartError;
/// use multiproc::StartMethod;
///
/// let err = "vfork".parse::<StartMethod>().unwrap_err();
/// assert!(matches!(err, StartError::UnknownMethod(_)));
/// assert!(err.to_string().contains("fork, spawn, forkserver"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A start method name that does not exist (Python's `ValueError`).
    #[error("unknown start method `{0}`: expected fork, spawn, forkserver")]
    UnknownMethod(String),
    /// `MULTIPROC_START_METHOD` names no start method.
    #[error(
        "MULTIPROC_START_METHOD={0:?} names no start method: expected fork, spawn, forkserver"
    )]
    BadEnvironment(String),
    /// [`set_start_method`] after the method was fixed (Python's "context has already been
    /// set").
    #[error("the start method is already `{0}`; set_start_method_force changes it")]
    AlreadySet(StartMethod),
    /// A closure given to a process whose start method is not fork: only a forked child has
    /// the closure in its memory.
    #[error(
        "a closure can only run in a forked child, and this process starts children by {0}: \
         make it a #[process_task] and start it with task!(..), or use get_context(StartMethod::Fork)"
    )]
    ClosureNeedsFork(StartMethod),
    /// The start method cannot work in this program.
    #[error("the {method} start method is not available here: {reason}")]
    Unavailable {
        /// The method asked for.
        method: StartMethod,
        /// Why it cannot work.
        reason: &'static str,
    },
    /// A process was started while this one was still starting up as a spawned child
    /// (Python's "An attempt has been made to start a new process before the current process
    /// has finished its bootstrapping phase"): a constructor that runs before the task.
    #[error(
        "a process was started before the current process finished its bootstrapping phase \
         (from a constructor that runs before the task)"
    )]
    Bootstrapping,
}

/// The method chosen for this process; 0 until it is fixed.
static CHOSEN: AtomicU8 = AtomicU8::new(0);

/// Whether the method was chosen on purpose (by a call, not the environment), rather than left
/// at the default: only then is a closure refused.
static EXPLICIT: AtomicU8 = AtomicU8::new(0);

/// The method new children start with, fixed on first use (Python's `get_start_method()`):
/// what [`set_start_method`] or `MULTIPROC_START_METHOD` chose, else the default:
/// [`StartMethod::Forkserver`] where this program can execute itself again (Python 3.14's
/// default on Linux), [`StartMethod::Fork`] where it cannot (inside a shared library).
/// A bad value of `MULTIPROC_START_METHOD` leaves the default here, and is an error when a
/// process starts.
///
/// # Examples
///
/// ```
/// use multiproc::{get_all_start_methods, get_start_method};
///
/// assert!(get_all_start_methods().contains(&get_start_method()));
/// ```
pub fn get_start_method() -> StartMethod {
    chosen().map_or_else(|_| default_method(), |(method, _)| method)
}

/// The method children start with when none was chosen: a fork server, clean of the caller's
/// threads and locks, where the program can execute itself again; fork otherwise.
fn default_method() -> StartMethod {
    if boot::spawn_unavailable().is_none() {
        StartMethod::Forkserver
    } else {
        StartMethod::Fork
    }
}

/// The method and whether it was chosen on purpose, or the environment's bad value.
pub(crate) fn chosen() -> Result<(StartMethod, bool), StartError> {
    if let Some(method) = StartMethod::from_code(CHOSEN.load(Ordering::Acquire)) {
        return Ok((method, EXPLICIT.load(Ordering::Acquire) == 1));
    }
    let (method, explicit) = match std::env::var("MULTIPROC_START_METHOD") {
        // The environment sets the default, not a rule: a closure still forks, so that a whole
        // suite can run its tasks under each method.
        Ok(name) => (
            name.parse()
                .map_err(|_| StartError::BadEnvironment(name.clone()))?,
            false,
        ),
        Err(_) => (default_method(), false),
    };
    // The first to fix it wins, as two threads may get here at once.
    match CHOSEN.compare_exchange(0, method.code(), Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            EXPLICIT.store(u8::from(explicit), Ordering::Release);
            Ok((method, explicit))
        }
        Err(_) => chosen(),
    }
}

/// Chooses how this process starts its children (Python's `set_start_method(m)`).
///
/// # Errors
///
/// [`StartError::AlreadySet`] if the method was already chosen or used, as Python's
/// `RuntimeError`; [`set_start_method_force`] changes it anyway.
///
/// # Examples
///
/// ```
/// use multiproc::{get_start_method, set_start_method, StartMethod};
///
/// set_start_method(StartMethod::Spawn)?;
/// assert_eq!(get_start_method(), StartMethod::Spawn);
/// assert!(set_start_method(StartMethod::Fork).is_err());
/// # Ok::<(), multiproc::process::StartError>(())
/// ```
pub fn set_start_method(method: StartMethod) -> Result<(), StartError> {
    match CHOSEN.compare_exchange(0, method.code(), Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            EXPLICIT.store(1, Ordering::Release);
            Ok(())
        }
        Err(code) => Err(StartError::AlreadySet(
            StartMethod::from_code(code).unwrap_or(StartMethod::Fork),
        )),
    }
}

/// In a spawned child: takes the parent's method as its own default.
pub(super) fn inherit(method: StartMethod, explicit: bool) {
    CHOSEN.store(method.code(), Ordering::Release);
    EXPLICIT.store(u8::from(explicit), Ordering::Release);
}

/// Chooses how this process starts its children, even if the method was set before (Python's
/// `set_start_method(m, force=True)`).
pub fn set_start_method_force(method: StartMethod) {
    CHOSEN.store(method.code(), Ordering::Release);
    EXPLICIT.store(1, Ordering::Release);
}

/// The start methods this program can use, the default first (Python's
/// `get_all_start_methods()`). Spawn and forkserver are there when the program is an executable
/// that has this crate's start-up hook linked in; fork is always there.
///
/// # Examples
///
/// ```
/// use multiproc::{get_all_start_methods, StartMethod};
///
/// // An executable: the fork server is the default.
/// assert_eq!(get_all_start_methods()[0], StartMethod::Forkserver);
/// assert!(get_all_start_methods().contains(&StartMethod::Fork));
/// ```
pub fn get_all_start_methods() -> Vec<StartMethod> {
    if boot::spawn_unavailable().is_none() {
        vec![
            StartMethod::Forkserver,
            StartMethod::Fork,
            StartMethod::Spawn,
        ]
    } else {
        vec![StartMethod::Fork]
    }
}

/// The way to start children of one start method, whatever the process's own (Python's
/// `multiprocessing.get_context(m)`).
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
/// use multiproc::StartMethod;
///
/// #[process_task]
/// fn add(a: u32, b: u32) -> u32 {
///     a + b
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let ctx = multiproc::get_context(StartMethod::Spawn)?;
/// assert_eq!(ctx.start_method(), StartMethod::Spawn);
/// let p = ctx.process(task!(add, 2, 3)).start()?;
/// assert_eq!(p.join()?, 5);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    method: StartMethod,
}

impl Context {
    /// The context's start method (Python's `ctx.get_start_method()`).
    pub fn start_method(&self) -> StartMethod {
        self.method
    }

    /// A process that starts by this context's method (Python's `ctx.Process(target=..)`).
    pub fn process<C>(&self, target: C) -> super::Process<C> {
        super::Process::new(target).with_method(self.method)
    }

    /// A process that runs a closure by this context's method (Python's
    /// `ctx.Process(target=lambda: ..)`): only a fork context can start it; another refuses it
    /// at [`start`](super::Process::start) with [`StartError::ClosureNeedsFork`].
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{get_context, StartMethod};
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let p = get_context(StartMethod::Fork)?.from_fn(|| 6 * 7).start()?;
    /// assert_eq!(p.join()?, 42);
    /// assert!(get_context(StartMethod::Spawn)?.from_fn(|| 1).start().is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_fn<F, R>(&self, body: F) -> super::Process<crate::task::FnTarget<F>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    {
        super::Process::from_fn(body).with_method(self.method)
    }
}

/// The context of `method` (Python's `get_context(m)`).
///
/// # Errors
///
/// [`StartError::Unavailable`] if this program cannot start children that way.
pub fn get_context(method: StartMethod) -> Result<Context, StartError> {
    if method != StartMethod::Fork {
        if let Some(reason) = boot::spawn_unavailable() {
            return Err(StartError::Unavailable { method, reason });
        }
    }
    Ok(Context { method })
}
