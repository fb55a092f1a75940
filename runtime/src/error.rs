//! Errors: what went wrong, said precisely enough to act on.
//!
//! [`Error`] is the crate's error type; every fallible operation returns it, so `?` works across
//! the whole API and `main` can return [`Result`](crate::Result). A failure inside a child
//! process (a panic, an exit code, a signal) is reported to the caller as a variant that names the
//! process and the cause, never swallowed and never a panic in the caller.

use serde::{Deserialize, Serialize};
use std::io;

/// The crate's error type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    #[error("system call failed: {0}")]
    Io(#[from] io::Error),
    /// The task panicked in the child process; the message is the panic's.
    #[error("the task panicked in process {pid}: {message}")]
    Panicked {
        /// The process in which it panicked.
        pid: i32,
        /// The panic message.
        message: String,
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
    #[error("task in process {pid} failed: {failure}")]
    Task {
        /// The process.
        pid: i32,
        /// What failed.
        failure: TaskFailure,
    },
    /// A value could not be encoded for another process.
    #[error("could not encode a value for another process: {0}")]
    Encode(String),
    /// Bytes from another process could not be decoded as the expected type.
    #[error("could not decode a message from another process: {0}")]
    Decode(String),
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
    Pool(#[from] crate::pool::PoolError),
    /// Shared memory could not be made, mapped or used.
    #[error(transparent)]
    Shm(#[from] crate::shm::ShmError),
    /// A lock, semaphore, condition or barrier refused (see [`SyncError`](crate::sync::SyncError)).
    #[error(transparent)]
    Sync(crate::sync::SyncError),
    /// A pipe operation failed.
    #[error(transparent)]
    Connection(#[from] crate::connection::ConnectionError),
    /// A queue operation failed.
    #[error(transparent)]
    Queue(crate::queue::QueueError),
}

/// What failed inside a child while running a task, as sent back to the parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum TaskFailure {
    /// The task panicked; the panic message.
    #[error("the task panicked: {0}")]
    Panicked(String),
    /// The arguments did not decode as the task's argument type.
    #[error("the task's arguments could not be decoded: {0}")]
    Decode(String),
    /// The result could not be encoded.
    #[error("the task's result could not be encoded: {0}")]
    Encode(String),
}

impl Error {
    /// The error for a failure reported by the child `pid`.
    pub(crate) fn from_task_failure(pid: i32, failure: TaskFailure) -> Self {
        match failure {
            TaskFailure::Panicked(message) => Error::Panicked { pid, message },
            failure => Error::Task { pid, failure },
        }
    }

    /// The codec's own message of an encode or decode error, without this type's prefix; any
    /// other error in full.
    pub(crate) fn codec_message(&self) -> String {
        match self {
            Error::Encode(message) | Error::Decode(message) => message.clone(),
            other => other.to_string(),
        }
    }
}

/// The conventional name of a signal, e.g. `SIGKILL`.
pub(crate) fn signal_name(signal: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str())
        .unwrap_or("unknown signal")
}
