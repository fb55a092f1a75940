//! The manager's errors, defined below [`Error`](super::Error) so that it can hold them; the
//! `managers` module re-exports them.

use crate::wire::CodecError;
use serde::{Deserialize, Serialize};
use std::io;

/// Why a call through a manager's proxy failed (Python raises `EOFError`,
/// `BrokenPipeError`, `RemoteError` and friends for these).
///
/// # Examples
///
/// ```
/// use multiproc::managers::{Manager, ManagerError};
///
/// # fn main() -> multiproc::Result<()> {
/// let manager = Manager::start()?;
/// let d = manager.dict::<String, i64>()?;
/// manager.shutdown()?;
/// assert!(matches!(d.len(), Err(ManagerError::ShutDown)));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// The manager's server process is gone: it exited or was killed, or it was shut down by
    /// another process. Every later call on any proxy of that manager fails the same way at
    /// once; nothing reconnects.
    #[error("the manager (process {pid}) is gone: it exited or was killed")]
    Gone {
        /// The server's process id.
        pid: i32,
    },
    /// The manager was shut down by this process (Python's use of a proxy after
    /// `manager.shutdown()`).
    #[error("the manager was shut down")]
    ShutDown,
    /// The server refused the request (Python's `RemoteError`); the manager keeps serving.
    #[error("the manager refused the request: {0}")]
    Server(ServerError),
    /// The lock was acquired, but its previous holder's connection ended while it held it:
    /// its process died, or the thread that took it ended. The lock is now the caller's; what
    /// it protected may be half-updated (the crate's [`OwnerDied`](crate::sync::OwnerDied)).
    #[error("the holder of the manager's lock (process {pid}) died; the lock is now yours")]
    OwnerDied {
        /// The dead holder's process id.
        pid: i32,
    },
    /// `update_with` gave up: other processes changed the value between each of its reads and
    /// writes, every time.
    #[error(
        "update_with gave up after {attempts} attempts: other processes kept changing the value"
    )]
    Contended {
        /// How many times the closure ran.
        attempts: u32,
    },
    /// A key or value could not be encoded, or a stored value did not decode as the proxy's
    /// type.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The handshake of a TCP connection failed (Python's `AuthenticationError`): the server
    /// refused this side's authkey, did not prove it knows it, or broke the handshake; or an
    /// authkey is empty or longer than 32 bytes. The server serves on.
    #[error("authentication failed: {reason}")]
    Authentication {
        /// What failed.
        reason: String,
    },
    /// A manager's address could not be reached over TCP, or listened on.
    #[error("cannot reach the manager at {addr}: {source}")]
    Unreachable {
        /// The address.
        addr: std::net::SocketAddr,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// A manager may listen on an address other hosts reach only with an authkey.
    #[error("refusing to listen on {addr}, which is not a loopback address, without an authkey")]
    InsecureAddress {
        /// The address asked for.
        addr: std::net::SocketAddr,
    },
    /// `lookup` of a name the manager has not published, or published as another proxy type
    /// (Python's `KeyError` on an unregistered typeid).
    #[error("the manager publishes no {asked} named {name:?}")]
    NotPublished {
        /// The name looked up.
        name: String,
        /// The proxy type asked for.
        asked: String,
    },
    /// A system call failed while reaching the server.
    #[error("cannot reach the manager (process {pid}): {source}")]
    Io {
        /// The server's process id.
        pid: i32,
        /// What failed.
        #[source]
        source: io::Error,
    },
}

/// What a manager's server refused, and why; it arrives in [`ManagerError::Server`].
///
/// # Examples
///
/// ```
/// use multiproc::managers::{Manager, ManagerError, ServerError};
///
/// # fn main() -> multiproc::Result<()> {
/// let manager = Manager::start()?;
/// let l = manager.list::<i64>()?;
/// let err = l.set(3, 1).unwrap_err();
/// assert!(matches!(
///     err,
///     ManagerError::Server(ServerError::IndexOutOfRange { index: 3, len: 0 })
/// ));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// No object of that number lives in the manager (a forged proxy).
    #[error("the manager holds no object {obj}")]
    NoSuchObject {
        /// The object's number.
        obj: u64,
    },
    /// The object is not of the kind the operation works on (a forged proxy).
    #[error("object {obj} is a {kind}, which has no operation `{op}`")]
    WrongKind {
        /// The object's number.
        obj: u64,
        /// What the object is: `dict`, `list`, `queue`.., or a served type's registered name.
        kind: String,
        /// The operation asked for.
        op: String,
    },
    /// No type of that name is registered with `#[manager_object]` in the server's program
    /// (Python's `KeyError` for an unknown typeid); only a forged request gets it, since the
    /// server is the same program as its proxies.
    #[error("no type `{name}` is registered with #[manager_object]")]
    NoSuchType {
        /// The type's registered name, its module path and name.
        name: String,
    },
    /// The served object has no constructor or exposed method of that name (Python's
    /// "method 'x' of 'Counter' object is not exposed"); only `pub` methods that take `&self`
    /// or `&mut self` are.
    #[error("a `{kind}` has no exposed method `{method}`")]
    NoSuchMethod {
        /// The object's type, by its registered name.
        kind: String,
        /// The method asked for.
        method: String,
    },
    /// A method (or constructor) of a served object panicked (Python's `RemoteError` with the
    /// remote traceback). The manager serves on, and the object stays as the method left it.
    #[error(
        "`{method}` panicked in the manager{}: {message}",
        crate::wire::at(location)
    )]
    Panicked {
        /// The method.
        method: String,
        /// The panic message.
        message: String,
        /// Where it panicked, as `file:line:column`, when the server's panic hook saw it.
        location: Option<String>,
    },
    /// A list index past the end (Python's `IndexError`).
    #[error("list index {index} out of range for a list of {len}")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The list's length.
        len: u64,
    },
    /// `fetch_add` on a stored value that is not of the number type asked for.
    #[error("the stored value is not a number of that type: {reason}")]
    NotANumber {
        /// What the decoder said.
        reason: String,
    },
    /// Release of a lock that is not held (Python: "release unlocked lock").
    #[error("release of an unlocked lock")]
    NotLocked,
    /// Release of a reentrant lock by a process or thread that does not hold it (Python:
    /// "cannot release un-acquired lock").
    #[error("cannot release a reentrant lock this connection does not hold")]
    NotOwner,
    /// A condition's `wait` or `notify` by a process or thread that does not hold its lock
    /// (Python: "cannot wait on un-acquired lock").
    #[error("the condition's lock is not held by this connection")]
    NotHeld,
    /// A bounded semaphore released past its initial value (Python: "Semaphore released too
    /// many times").
    #[error("a bounded semaphore released too many times")]
    TooManyReleases,
    /// `task_done` called more times than items were put (Python: "task_done() called too
    /// many times").
    #[error("task_done() called too many times")]
    TaskDoneTooManyTimes,
    /// The barrier is broken: a party timed out or hung up, or it was aborted (Python's
    /// `BrokenBarrierError`); it stays so until `reset`.
    #[error("the barrier is broken")]
    BrokenBarrier,
    /// The manager is shutting down: a parked request (a wait, a blocking get) is answered so;
    /// a proxy reports it as [`ManagerError::ShutDown`].
    #[error("the manager is shutting down")]
    ShuttingDown,
    /// The request did not decode: garbage, or a request of another build of the program.
    #[error("malformed request: {reason}")]
    Malformed {
        /// What the decoder said.
        reason: String,
    },
    /// The request's frame announced more bytes than the server accepts; the server closed the
    /// connection.
    #[error("a request of {len} bytes is longer than the manager's maximum of {max} bytes")]
    TooLarge {
        /// The length announced.
        len: u64,
        /// The maximum.
        max: u64,
    },
}

impl From<ServerError> for ManagerError {
    fn from(e: ServerError) -> Self {
        match e {
            ServerError::ShuttingDown => ManagerError::ShutDown,
            other => ManagerError::Server(other),
        }
    }
}

impl ManagerError {
    /// A failure to reach the server `pid`: the connection's end or reset is the server gone;
    /// anything else is an [`Io`](ManagerError::Io) error.
    pub(crate) fn from_io(pid: i32, source: io::Error) -> Self {
        use io::ErrorKind::*;
        match source.kind() {
            UnexpectedEof | ConnectionReset | ConnectionRefused | ConnectionAborted
            | BrokenPipe | NotFound => ManagerError::Gone { pid },
            _ => ManagerError::Io { pid, source },
        }
    }
}
