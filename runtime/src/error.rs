//! Errors: what went wrong, said precisely enough to act on.
//!
//! [`Error`] is the crate's error type; every fallible operation returns it, so `?` works across
//! the whole API and `main` can return [`Result`](crate::Result). A failure inside a child
//! process (a panic, an exit code, a signal) is reported to the caller as a variant that names the
//! process and the cause, never swallowed and never a panic in the caller.

mod manager;
mod remote;

pub use manager::{ManagerError, ServerError};
pub use remote::RemoteError;

use crate::queue::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, QueueError, TaskDoneError, TryGetError,
    TryPutError,
};
use crate::sync::{OwnerDied, SyncError, TryLockError};
use crate::wire::at;
use std::io;

/// # Examples
///
/// A type the codec cannot express fails at the call that encodes or decodes it (see
/// `docs/PITFALLS.md`):
///
/// ```
/// use multiproc::error::CodecError;
/// use multiproc::{ConnectionError, Pipe};
///
/// # fn main() -> multiproc::Result<()> {
/// let (mut a, mut b) = Pipe::<serde_json::Value>::duplex()?;
/// a.send(&serde_json::json!({ "any": "value" }))?;
/// assert!(matches!(b.recv(), Err(ConnectionError::Decode(CodecError::Decode(_)))));
/// # Ok(())
/// # }
/// ```
pub use crate::wire::CodecError;
/// # Examples
///
/// A failure inside a child arrives as [`Error::Task`] holding it, or, for a panic, as
/// [`Error::Panicked`]:
///
/// ```
/// use multiproc::error::TaskFailure;
///
/// let failure = TaskFailure::Panicked {
///     message: "boom".to_string(),
///     location: Some("src/main.rs:4:5".to_string()),
///     backtrace: None,
/// };
/// assert_eq!(failure.to_string(), "the task panicked at src/main.rs:4:5: boom");
/// ```
pub use crate::wire::TaskFailure;
/// # Examples
///
/// The message a value's own `Deserialize` gave, with the type and the place it failed:
///
/// ```
/// use multiproc::error::CodecError;
/// use multiproc::{ConnectionError, Pipe};
///
/// # fn main() -> multiproc::Result<()> {
/// let (mut a, mut b) = Pipe::<(u32, std::num::NonZeroU32)>::duplex()?;
/// a.send_bytes(&[7, 0])?;
/// let Err(ConnectionError::Decode(CodecError::Decode(e))) = b.recv() else { panic!() };
/// assert_eq!(e.path(), ".1");
/// assert!(e.reason().contains("expected a nonzero u32"), "{e}");
/// assert_eq!(e.type_name(), std::any::type_name::<(u32, std::num::NonZeroU32)>());
/// # Ok(())
/// # }
/// ```
pub use crate::wire::WireError;

/// The crate's error type: each module's errors convert into it, so `?` works across the API.
///
/// A failure in a child is a variant that names the process: [`Panicked`](Error::Panicked)
/// (Python re-raises nothing; its `exitcode` is 1), [`Exited`](Error::Exited) and
/// [`Signaled`](Error::Signaled) (Python's `exitcode` of `N` and `-N`).
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
///
/// fn first_item() -> multiproc::Result<u32> {
///     let q = Queue::new()?; // a ShmError becomes Error::Shm
///     q.put(1)?; // a PutError becomes Error::Queue
///     let p = Process::fork(|| 2u32)?;
///     Ok(q.get()? + p.join()?)
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// assert_eq!(first_item()?, 3);
/// let killed = Process::fork(|| std::thread::sleep(std::time::Duration::from_secs(60)))?;
/// killed.kill()?;
/// let err = killed.join().unwrap_err();
/// assert!(err.to_string().contains("SIGKILL"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    #[error("system call failed: {0}")]
    Io(#[from] io::Error),
    /// The task panicked in the child process (Python re-raises the exception, with the remote
    /// traceback attached).
    ///
    /// Displayed as ``task `NAME` panicked on item N in process PID at FILE:LINE:COL: MESSAGE``,
    /// each part there when known, then the backtrace if the child had one.
    #[error(
        "{} panicked{} in process {pid}{}: {message}{}",
        subject(.task.as_deref()), on_item(*.item), at(.location), trace(.backtrace)
    )]
    Panicked {
        /// The process in which it panicked.
        pid: i32,
        /// The panic message.
        message: String,
        /// Where the task panicked, as `file:line:column` (`None` if the program replaced the
        /// panic hook after its first child started).
        location: Option<String>,
        /// The backtrace of the panic, when `RUST_BACKTRACE` was set as the program started its
        /// first child (`full` for the full form; read once, as std reads it).
        backtrace: Option<String>,
        /// The registered name of the task, when it ran in a pool.
        task: Option<String>,
        /// For a map's task, the index in the input of the item it panicked on.
        item: Option<usize>,
    },
    /// The input iterator of [`Pool::imap`](crate::Pool::imap) or
    /// [`Pool::imap_unordered`](crate::Pool::imap_unordered) panicked in its `next`, in the
    /// caller's process: the lazy map's last item, after the results of the items before it
    /// (Python's pool re-raises the iterable's exception from the iterator's `next` in its
    /// place, and the iteration ends there).
    ///
    /// Displayed as ``the input iterator panicked producing item N at FILE:LINE:COL: MESSAGE``,
    /// the location when known, then the backtrace if `RUST_BACKTRACE` asked for one.
    #[error(
        "the input iterator panicked producing item {item}{}: {message}{}",
        at(.location), trace(.backtrace)
    )]
    InputPanicked {
        /// The index of the item it was producing: the items before it were sent.
        item: usize,
        /// The panic message.
        message: String,
        /// Where it panicked, as `file:line:column` (`None` if the program replaced the panic
        /// hook after its first child started).
        location: Option<String>,
        /// The backtrace of the panic, when `RUST_BACKTRACE` was set as the program started its
        /// first child.
        backtrace: Option<String>,
    },
    /// The child exited with a non-zero code (or with zero, but without a result) before
    /// sending its result.
    #[error("process {pid} exited with code {code} without a result")]
    Exited {
        /// The process.
        pid: i32,
        /// Its exit code.
        code: i32,
    },
    /// The child was killed by a signal.
    #[error("process {pid} was killed by signal {signal} ({})", signal_name(*.signal))]
    Signaled {
        /// The process.
        pid: i32,
        /// The signal number.
        signal: i32,
    },
    /// The task ran but its arguments or result could not cross the process boundary.
    #[error(
        "{} failed{} in process {pid}: {failure}",
        subject(.task.as_deref()), on_item(*.item)
    )]
    Task {
        /// The process.
        pid: i32,
        /// What failed.
        failure: TaskFailure,
        /// The registered name of the task, when it ran in a pool.
        task: Option<String>,
        /// For a map's task, the index in the input of the item it failed on.
        item: Option<usize>,
    },
    /// A value could not be encoded for another process, or bytes from another process could
    /// not be decoded as the expected type.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// Two tasks were registered under one name.
    #[error("two tasks are registered under the name `{name}`; task names must be unique")]
    DuplicateTask {
        /// The name registered twice.
        name: &'static str,
    },
    /// No task is registered under this name (is `#[process_task]` on it?).
    #[error("no task is registered under the name `{name}`")]
    UnknownTask {
        /// The name looked up.
        name: String,
    },
    /// A daemonic process tried to start a child (Python: "daemonic processes are not allowed
    /// to have children").
    #[error("a daemonic process cannot start child processes")]
    DaemonicParent,
    /// The operation needs a process that has finished, and it still runs.
    #[error("process {pid} is still running")]
    StillRunning {
        /// The process.
        pid: i32,
    },
    /// A rule of [`Pool`](crate::Pool) was broken, or a pool result is not there.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// Shared memory could not be made, mapped or used.
    #[error(transparent)]
    Shm(#[from] crate::shm::ShmError),
    /// A lock, semaphore, condition or barrier refused (see [`SyncError`]).
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// A pipe operation failed.
    #[error(transparent)]
    Connection(#[from] crate::connection::ConnectionError),
    /// A queue operation failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A process could not start the way it was asked to (a start method that is not
    /// available, a closure under spawn, a start while still booting).
    #[error(transparent)]
    Start(#[from] crate::process::StartError),
    /// A call through a manager's proxy failed (see
    /// [`managers`](crate::managers)).
    #[error(transparent)]
    Manager(#[from] ManagerError),
    /// An error that another process sent, as text: a task's `multiproc::Result` whose error
    /// holds more than plain data (Python's `RemoteTraceback`). Plain errors (a panic, an exit
    /// code, an OS error's number, a [`PoolError`]) arrive as their own variant.
    #[error(transparent)]
    Remote(RemoteError),
    /// The cluster pool refused, or its engine or a worker node was lost (see
    /// [`cluster::ClusterError`](crate::cluster::ClusterError)).
    #[cfg(feature = "cluster")]
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

/// A pool rule that was broken, or a result that is not there.
///
/// Python raises `ValueError`, `TimeoutError` and friends for these; failures of tasks and
/// workers use the crate's process errors. Defined here, below the pool, so that [`Error`] can
/// hold it; the pool re-exports it.
///
/// # Examples
///
/// ```
/// use multiproc::pool::PoolError;
/// use multiproc::{Error, Pool};
///
/// assert!(matches!(Pool::new(0), Err(Error::Pool(PoolError::NoProcesses))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum PoolError {
    /// `Pool::new(0)` (Python: "Number of processes must be at least 1").
    #[error("a pool needs at least one worker process")]
    NoProcesses,
    /// A chunksize of zero.
    #[error("the chunksize must be at least 1")]
    ZeroChunksize,
    /// A submission after `close` or `terminate` (Python: "Pool not running").
    #[error("the pool is not running: it was closed or terminated")]
    NotRunning,
    /// `join` before `close` or `terminate` (Python's `ValueError` from `join`).
    #[error("join needs a pool that was closed or terminated first")]
    Running,
    /// The pool was terminated before the task finished.
    #[error("the pool was terminated before the task finished")]
    Terminated,
    /// `get_timeout` ran out of time; the task goes on, and a later `get` may succeed
    /// (Python's `multiprocessing.TimeoutError`).
    #[error("the result was not ready within the timeout")]
    Timeout,
    /// `successful` on a result that is not ready (Python's `ValueError`).
    #[error("the result is not ready yet")]
    NotReady,
    /// The result was already taken by an earlier `get_timeout`.
    #[error("the result was already taken")]
    Taken,
}

impl Error {
    /// The error for a failure reported by the child `pid`.
    pub(crate) fn from_task_failure(pid: i32, failure: TaskFailure) -> Self {
        match failure {
            TaskFailure::Panicked {
                message,
                location,
                backtrace,
            } => Error::Panicked {
                pid,
                message,
                location,
                backtrace,
                task: None,
                item: None,
            },
            failure => Error::Task {
                pid,
                failure,
                task: None,
                item: None,
            },
        }
    }

    /// The error for a panic of a lazy map's input iterator while it produced its item `item`.
    pub(crate) fn from_input_panic(item: usize, failure: TaskFailure) -> Self {
        match failure {
            TaskFailure::Panicked {
                message,
                location,
                backtrace,
            } => Error::InputPanicked {
                item,
                message,
                location,
                backtrace,
            },
            // A caught panic is always `Panicked`; any other failure keeps its text.
            other => Error::InputPanicked {
                item,
                message: other.to_string(),
                location: None,
                backtrace: None,
            },
        }
    }

    /// This error, naming the pool task `name` (and the input item, for a map) it came from if
    /// it is the failure of one call.
    pub(crate) fn in_call(mut self, name: &'static str, index: Option<usize>) -> Self {
        if let Error::Panicked { task, item, .. } | Error::Task { task, item, .. } = &mut self {
            *task = Some(name.to_owned());
            *item = index;
        }
        self
    }
}

/// Who failed: ``task `NAME` `` or "the task".
fn subject(task: Option<&str>) -> String {
    task.map_or_else(|| "the task".to_owned(), |name| format!("task `{name}`"))
}

/// ` on item N`, or nothing.
fn on_item(item: Option<usize>) -> String {
    item.map_or(String::new(), |item| format!(" on item {item}"))
}

/// The backtrace on the lines after the message, or nothing.
fn trace(backtrace: &Option<String>) -> String {
    backtrace
        .as_ref()
        .map_or(String::new(), |b| format!("\nstack backtrace:\n{b}"))
}

/// The conventional name of a signal, e.g. `SIGKILL`.
pub(crate) fn signal_name(signal: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str())
        .unwrap_or("unknown signal")
}

/// `?` on [`ProcessHandle::close`](crate::ProcessHandle::close) while the process runs gives
/// [`Error::StillRunning`] (Python's `ValueError: Cannot close a process while it is still
/// running`). The handle inside is dropped: the process goes on, as after dropping any handle;
/// use [`CloseError::into_handle`](crate::process::CloseError::into_handle) to keep it.
impl<R> From<crate::process::CloseError<R>> for Error {
    fn from(e: crate::process::CloseError<R>) -> Self {
        Error::StillRunning {
            pid: e.into_handle().pid(),
        }
    }
}

impl From<crate::task::registry::LookupError> for Error {
    fn from(e: crate::task::registry::LookupError) -> Self {
        use crate::task::registry::LookupError;
        match e {
            LookupError::Duplicate(name) => Error::DuplicateTask { name },
            LookupError::Unknown(name) => Error::UnknownTask { name },
        }
    }
}

/// `?` on a layer's own error (each layer knows only its own) gives the crate's.
macro_rules! layer_errors {
    ($variant:ident: $($ty:ident $(<$g:ident>)?),* $(,)?) => {$(
        impl$(<$g>)? From<$ty$(<$g>)?> for Error {
            fn from(e: $ty$(<$g>)?) -> Self {
                Error::$variant(e.into())
            }
        }
    )*};
}

layer_errors!(Sync: OwnerDied<G>, TryLockError<G>);
layer_errors!(
    Queue: PutError<T>,
    TryPutError<T>,
    PutTimeoutError<T>,
    GetError,
    TryGetError,
    GetTimeoutError,
    TaskDoneError,
);
