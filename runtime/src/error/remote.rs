//! An [`Error`] crossing a process boundary, so that a task returning `multiproc::Result<T>`
//! sends its error to the caller like any other value (Python pickles the exception a task
//! raised and raises it again in the caller).
//!
//! A variant that holds only plain data (a panic, an exit code, a pool rule, an OS error's
//! number) arrives as itself. The others hold values of this process (a lock's guard, an
//! `io::Error` with a payload, a codec's error): they arrive as [`RemoteError`], which keeps
//! the variant's name, the message and the message of each cause.

use super::{Error, PoolError, TaskFailure};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An error from another process that arrived as text: which error it was, its message, and its
/// causes (Python's `RemoteTraceback`, the text of an exception raised in a pool's worker).
///
/// A task that returns `multiproc::Result<T>` sends its error to the caller; variants of
/// [`Error`] that hold only plain data arrive as themselves, the others as
/// [`Error::Remote`] holding this.
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
/// use multiproc::{Error, SharedMemory};
///
/// #[process_task]
/// fn open_segment(name: String) -> multiproc::Result<usize> {
///     Ok(SharedMemory::attach(&name)?.size())
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let child = Process::new(task!(open_segment, "no-such-segment".to_string())).start()?;
/// match child.join()? {
///     Err(Error::Remote(e)) => {
///         assert_eq!(e.kind(), Some("Shm"));
///         assert!(e.to_string().contains("no-such-segment"), "{e}");
///     }
///     other => panic!("expected the child's error, got {other:?}"),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteError {
    kind: Option<String>,
    message: String,
    source: Option<Box<RemoteError>>,
}

impl RemoteError {
    /// The error `error`, named `kind`, and its causes, as text.
    fn of(kind: Option<String>, error: &dyn std::error::Error) -> Self {
        RemoteError {
            kind,
            message: error.to_string(),
            source: error.source().map(|cause| Box::new(Self::of(None, cause))),
        }
    }

    /// Which variant of [`Error`] it was, e.g. `"Queue"` or `"Shm"`; `None` for a cause.
    pub fn kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }

    /// The message, as the error displayed it in its own process.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RemoteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|cause| cause as _)
    }
}

/// How an [`Error`] travels.
#[derive(Serialize, Deserialize)]
enum Repr {
    /// An [`Error::Io`] that holds an OS error's number and nothing else.
    Os(i32),
    Panicked {
        pid: i32,
        message: String,
        location: Option<String>,
        backtrace: Option<String>,
        task: Option<String>,
        item: Option<usize>,
    },
    InputPanicked {
        item: usize,
        message: String,
        location: Option<String>,
        backtrace: Option<String>,
    },
    Exited {
        pid: i32,
        code: i32,
    },
    Signaled {
        pid: i32,
        signal: i32,
    },
    Task {
        pid: i32,
        failure: TaskFailure,
        task: Option<String>,
        item: Option<usize>,
    },
    UnknownTask {
        name: String,
    },
    DaemonicParent,
    StillRunning {
        pid: i32,
    },
    Pool(PoolError),
    Remote(RemoteError),
}

impl From<&Error> for Repr {
    fn from(error: &Error) -> Self {
        match error.clone_plain() {
            Some(plain) => plain,
            None => Repr::Remote(match error {
                Error::Remote(remote) => remote.clone(),
                other => RemoteError::of(Some(variant_name(other).to_owned()), other),
            }),
        }
    }
}

impl From<Repr> for Error {
    fn from(repr: Repr) -> Self {
        match repr {
            Repr::Os(code) => Error::Io(std::io::Error::from_raw_os_error(code)),
            Repr::Panicked {
                pid,
                message,
                location,
                backtrace,
                task,
                item,
            } => Error::Panicked {
                pid,
                message,
                location,
                backtrace,
                task,
                item,
            },
            Repr::InputPanicked {
                item,
                message,
                location,
                backtrace,
            } => Error::InputPanicked {
                item,
                message,
                location,
                backtrace,
            },
            Repr::Exited { pid, code } => Error::Exited { pid, code },
            Repr::Signaled { pid, signal } => Error::Signaled { pid, signal },
            Repr::Task {
                pid,
                failure,
                task,
                item,
            } => Error::Task {
                pid,
                failure,
                task,
                item,
            },
            Repr::UnknownTask { name } => Error::UnknownTask { name },
            Repr::DaemonicParent => Error::DaemonicParent,
            Repr::StillRunning { pid } => Error::StillRunning { pid },
            Repr::Pool(pool) => Error::Pool(pool),
            Repr::Remote(remote) => Error::Remote(remote),
        }
    }
}

impl Error {
    /// This error as it travels, if it holds only plain data.
    fn clone_plain(&self) -> Option<Repr> {
        Some(match self {
            Error::Io(io) if io.get_ref().is_none() => Repr::Os(io.raw_os_error()?),
            Error::Panicked {
                pid,
                message,
                location,
                backtrace,
                task,
                item,
            } => Repr::Panicked {
                pid: *pid,
                message: message.clone(),
                location: location.clone(),
                backtrace: backtrace.clone(),
                task: task.clone(),
                item: *item,
            },
            Error::InputPanicked {
                item,
                message,
                location,
                backtrace,
            } => Repr::InputPanicked {
                item: *item,
                message: message.clone(),
                location: location.clone(),
                backtrace: backtrace.clone(),
            },
            Error::Exited { pid, code } => Repr::Exited {
                pid: *pid,
                code: *code,
            },
            Error::Signaled { pid, signal } => Repr::Signaled {
                pid: *pid,
                signal: *signal,
            },
            Error::Task {
                pid,
                failure,
                task,
                item,
            } => Repr::Task {
                pid: *pid,
                failure: failure.clone(),
                task: task.clone(),
                item: *item,
            },
            Error::UnknownTask { name } => Repr::UnknownTask { name: name.clone() },
            Error::DaemonicParent => Repr::DaemonicParent,
            Error::StillRunning { pid } => Repr::StillRunning { pid: *pid },
            Error::Pool(pool) => Repr::Pool(pool.clone()),
            _ => return None,
        })
    }
}

/// The name of `error`'s variant, which a [`RemoteError`] keeps as its kind.
fn variant_name(error: &Error) -> &'static str {
    match error {
        Error::Io(_) => "Io",
        Error::Panicked { .. } => "Panicked",
        Error::InputPanicked { .. } => "InputPanicked",
        Error::Exited { .. } => "Exited",
        Error::Signaled { .. } => "Signaled",
        Error::Task { .. } => "Task",
        Error::Codec(_) => "Codec",
        Error::Start(_) => "Start",
        Error::DuplicateTask { .. } => "DuplicateTask",
        Error::UnknownTask { .. } => "UnknownTask",
        Error::DaemonicParent => "DaemonicParent",
        Error::StillRunning { .. } => "StillRunning",
        Error::Pool(_) => "Pool",
        Error::Shm(_) => "Shm",
        Error::Sync(_) => "Sync",
        Error::Connection(_) => "Connection",
        Error::Queue(_) => "Queue",
        Error::Manager(_) => "Manager",
        Error::Remote(_) => "Remote",
        #[cfg(feature = "cluster")]
        Error::Cluster(_) => "Cluster",
    }
}

/// Sends the error to another process: as itself if it holds only plain data, otherwise as a
/// [`RemoteError`] (Python pickles the exception a task raised).
impl Serialize for Error {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Repr::from(self).serialize(serializer)
    }
}

/// Receives an error that another process sent.
impl<'de> Deserialize<'de> for Error {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Repr::deserialize(deserializer).map(Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire;

    /// `error` after a trip through the wire format.
    fn round_trip(error: &Error) -> Error {
        wire::decode(&wire::encode(error).unwrap()).unwrap()
    }

    #[test]
    fn plain_variants_arrive_as_themselves() {
        let panicked = Error::Panicked {
            pid: 7,
            message: "boom".into(),
            location: Some("src/lib.rs:1:2".into()),
            backtrace: Some("   0: f".into()),
            task: Some("crate::f".into()),
            item: Some(3),
        };
        let failed = Error::Task {
            pid: 8,
            failure: TaskFailure::Encode("no".into()),
            task: None,
            item: Some(4),
        };
        let input = Error::InputPanicked {
            item: 5,
            message: "no more".into(),
            location: Some("src/main.rs:9:1".into()),
            backtrace: None,
        };
        let plain = [
            panicked,
            failed,
            input,
            Error::Exited { pid: 1, code: 3 },
            Error::Signaled { pid: 2, signal: 9 },
            Error::UnknownTask { name: "x".into() },
            Error::DaemonicParent,
            Error::StillRunning { pid: 5 },
            Error::Pool(PoolError::Timeout),
            Error::Io(std::io::Error::from_raw_os_error(libc::ENOENT)),
        ];
        for error in &plain {
            let back = round_trip(error);
            assert_eq!(format!("{back:?}"), format!("{error:?}"));
            assert_eq!(back.to_string(), error.to_string());
        }
    }

    #[test]
    fn other_variants_arrive_as_text_with_their_causes() {
        let io = std::io::Error::other("the disk is on fire");
        let error = Error::Shm(crate::shm::ShmError::Io(io));
        let back = round_trip(&error);
        let Error::Remote(remote) = &back else {
            panic!("expected a remote error, got {back:?}");
        };
        assert_eq!(remote.kind(), Some("Shm"));
        assert_eq!(back.to_string(), error.to_string());
        let causes = |e: &dyn std::error::Error| {
            std::iter::successors(e.source(), |e| e.source())
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(causes(&back), causes(&error));
        assert_eq!(round_trip(&back).to_string(), error.to_string());
        let unplain = Error::Io(std::io::Error::other("not an OS error"));
        assert!(matches!(round_trip(&unplain), Error::Remote(r) if r.kind() == Some("Io")));
    }
}
