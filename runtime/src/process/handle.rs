//! The handle of a started process: wait for it, read its result, signal it.

use super::children::{self, ChildCore};
use crate::connection::Waitable;
use crate::error::{Error, TaskFailure};
use crate::sys::ExitStatus;
use crate::wire;
use serde::de::DeserializeOwned;
use std::fmt;
use std::marker::PhantomData;
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A started process whose task returns `R` (Python's `Process` after `start()`).
///
/// Dropping the handle without joining is allowed: the child keeps running (unless daemonic and
/// this process exits) and is reaped in the background, so no zombie is left.
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
///
/// # fn main() -> multiproc::Result<()> {
/// let p = Process::from_fn(|| 1 + 1).name("adder").start()?;
/// assert_eq!(p.name(), "adder");
/// assert!(!p.daemon());
/// assert_eq!(p.join()?, 2);
/// assert_eq!(p.exitcode(), Some(0));
/// assert!(!p.is_alive());
/// # Ok(())
/// # }
/// ```
pub struct ProcessHandle<R> {
    core: Arc<ChildCore>,
    output: PhantomData<fn() -> R>,
}

impl<R> ProcessHandle<R> {
    pub(crate) fn new(core: Arc<ChildCore>) -> Self {
        ProcessHandle {
            core,
            output: PhantomData,
        }
    }

    /// The process id (Python's `pid`).
    pub fn pid(&self) -> i32 {
        self.core.pid()
    }

    /// The process name (Python's `name`).
    pub fn name(&self) -> &str {
        self.core.name()
    }

    /// Whether the process is daemonic (Python's `daemon`).
    pub fn daemon(&self) -> bool {
        self.core.daemon()
    }

    /// Python's `exitcode`: `None` while the process runs; then `0` if the task returned, `1` if
    /// it panicked, `N` if it called `exit(N)`, `-N` if signal `N` killed it.
    pub fn exitcode(&self) -> Option<i32> {
        self.core
            .wait(Some(Instant::now()))
            .ok()
            .flatten()
            .map(ExitStatus::code)
    }

    /// Whether the process still runs (Python's `is_alive()`).
    pub fn is_alive(&self) -> bool {
        self.exitcode().is_none()
    }

    /// Asks the process to end with `SIGTERM` (Python's `terminate()`); its exit code becomes
    /// `-15`. Nothing happens if it has already ended.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the signal could not be sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::prelude::*;
    /// use std::time::Duration;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let p = Process::fork(|| std::thread::sleep(Duration::from_secs(60)))?;
    /// assert!(p.is_alive());
    /// p.terminate()?;
    /// let _ = p.join();
    /// assert!(!p.is_alive());
    /// assert_eq!(p.exitcode(), Some(-15));
    /// # Ok(())
    /// # }
    /// ```
    pub fn terminate(&self) -> Result<(), Error> {
        Ok(self.core.signal(libc::SIGTERM)?)
    }

    /// Ends the process with `SIGKILL` (Python's `kill()`); its exit code becomes `-9`. Nothing
    /// happens if it has already ended.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the signal could not be sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::prelude::*;
    /// use std::time::Duration;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let p = Process::fork(|| std::thread::sleep(Duration::from_secs(60)))?;
    /// p.kill()?;
    /// assert!(matches!(p.join(), Err(multiproc::Error::Signaled { signal: 9, .. })));
    /// assert_eq!(p.exitcode(), Some(-9));
    /// # Ok(())
    /// # }
    /// ```
    pub fn kill(&self) -> Result<(), Error> {
        Ok(self.core.signal(libc::SIGKILL)?)
    }

    /// A descriptor that becomes readable when the process ends (Python's `sentinel`), for
    /// `poll` or `multiproc::wait`.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::prelude::*;
    /// use std::time::Duration;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let p = Process::fork(|| ())?;
    /// let ready = wait(&[p.sentinel()], Some(Duration::from_secs(10)))?;
    /// assert_eq!(ready, [0]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn sentinel(&self) -> BorrowedFd<'_> {
        self.core.sentinel()
    }

    /// Releases the process's resources (Python's `close()`). It is an error while the process
    /// still runs, and the handle comes back in the error; once closed, the handle is gone, so
    /// no use after close can compile.
    ///
    /// # Errors
    ///
    /// [`CloseError`], holding the handle, while the process still runs.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::prelude::*;
    /// use std::time::Duration;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let p = Process::fork(|| std::thread::sleep(Duration::from_secs(60)))?;
    /// let p = p.close().unwrap_err().into_handle(); // still running: refused
    /// p.kill()?;
    /// let _ = p.join();
    /// assert!(p.close().is_ok());
    /// # Ok(())
    /// # }
    /// ```
    pub fn close(self) -> Result<(), CloseError<R>> {
        match self.core.try_reap() {
            Ok(Some(_)) => Ok(()),
            _ => Err(CloseError { handle: self }),
        }
    }
}

impl<R: DeserializeOwned> ProcessHandle<R> {
    /// Waits for the process to end and returns what its task returned (Python's `join()`).
    ///
    /// The end of the child happens before `join` returns: every write the child made to shared
    /// memory ([`Value`](crate::Value), [`Array`](crate::Array),
    /// [`SharedMemory`](crate::SharedMemory)) is visible to the caller once `join` returns, as
    /// `std::thread::JoinHandle::join` promises for a thread. It may be called again: each call
    /// returns the result anew (Python's `join` may be called again too).
    ///
    /// # Errors
    ///
    /// - [`Error::Panicked`] with the panic message and location (and backtrace, under
    ///   `RUST_BACKTRACE`) if the task panicked.
    /// - [`Error::Exited`] if the process exited with a code (and no result).
    /// - [`Error::Signaled`] if a signal killed it.
    /// - [`Error::Task`] if the result could not be encoded in the child;
    ///   [`Error::Codec`] if it could not be decoded here.
    /// - [`Error::Io`] if waiting for the process failed.
    ///
    /// A task that returns a `Result` gives its own error as `Ok(Err(e))`: a serde error type of
    /// its own as it was, a `multiproc::Error` as itself or as [`Error::Remote`].
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::prelude::*;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let ok = Process::fork(|| 6 * 7)?;
    /// assert_eq!(ok.join()?, 42);
    /// assert_eq!(ok.join()?, 42); // again
    ///
    /// let failed = Process::fork(|| -> u32 { panic!("boom") })?;
    /// assert!(matches!(failed.join(), Err(multiproc::Error::Panicked { message, .. }) if message == "boom"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn join(&self) -> Result<R, Error> {
        let status = self
            .core
            .wait(None)?
            .ok_or(Error::StillRunning { pid: self.pid() })?;
        self.outcome(status)
    }

    /// Waits at most `timeout` (Python's `join(timeout)`): `Ok(None)` if the process still runs
    /// then, otherwise what [`join`](ProcessHandle::join) returns, with the same happens-before
    /// guarantee. A zero timeout polls.
    ///
    /// # Errors
    ///
    /// As [`join`](ProcessHandle::join), once the process has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::prelude::*;
    /// use std::time::Duration;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let p = Process::fork(|| std::thread::sleep(Duration::from_secs(60)))?;
    /// assert_eq!(p.join_timeout(Duration::from_millis(10))?, None); // still running
    /// p.kill()?;
    /// assert!(matches!(
    ///     p.join_timeout(Duration::from_secs(10)),
    ///     Err(multiproc::Error::Signaled { signal: 9, .. })
    /// ));
    /// # Ok(())
    /// # }
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<Option<R>, Error> {
        match self.core.wait(crate::util::deadline(timeout))? {
            None => Ok(None),
            Some(status) => self.outcome(status).map(Some),
        }
    }

    /// The task's result, from what the child wrote and how it ended.
    fn outcome(&self, status: ExitStatus) -> Result<R, Error> {
        let pid = self.pid();
        let sent = self.core.with_result(|bytes| {
            wire::complete_frame(bytes).map(wire::decode::<Result<R, TaskFailure>>)
        });
        match (sent, status) {
            (Some(result), _) => result?.map_err(|failure| Error::from_task_failure(pid, failure)),
            // A body that ends with `exit(0)` has no result to send; for a `()` task that is
            // still a success, and an empty message decodes as `()`.
            (None, ExitStatus::Exited(0)) => {
                wire::decode(&[]).map_err(|_| Error::Exited { pid, code: 0 })
            }
            (None, ExitStatus::Exited(code)) => Err(Error::Exited { pid, code }),
            (None, ExitStatus::Signaled(signal)) => Err(Error::Signaled { pid, signal }),
        }
    }
}

impl<R> Drop for ProcessHandle<R> {
    fn drop(&mut self) {
        self.core.discard_result();
        if !matches!(self.core.try_reap(), Ok(Some(_))) {
            children::reap_in_background(self.core.clone());
        }
    }
}

impl<R> fmt::Debug for ProcessHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessHandle")
            .field("pid", &self.pid())
            .field("name", &self.name())
            .field("daemon", &self.daemon())
            .finish()
    }
}

/// The error of [`ProcessHandle::close`] on a process that still runs; it gives the handle back
/// (Python's `ValueError: Cannot close a process while it is still running`). `?` turns it into
/// [`Error::StillRunning`](crate::Error::StillRunning), dropping the handle.
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
/// use std::time::Duration;
///
/// fn close_now(p: ProcessHandle<()>) -> multiproc::Result<()> {
///     p.close()?;
///     Ok(())
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let p = Process::fork(|| std::thread::sleep(Duration::from_millis(300)))?;
/// let pid = p.pid();
/// let err = close_now(p).unwrap_err();
/// assert!(matches!(err, multiproc::Error::StillRunning { pid: p } if p == pid));
/// # Ok(())
/// # }
/// ```
pub struct CloseError<R> {
    handle: ProcessHandle<R>,
}

impl<R> CloseError<R> {
    /// The handle, still usable.
    pub fn into_handle(self) -> ProcessHandle<R> {
        self.handle
    }
}

impl<R> fmt::Debug for CloseError<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloseError")
            .field("pid", &self.handle.pid())
            .finish()
    }
}

impl<R> fmt::Display for CloseError<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot close process {}: it is still running",
            self.handle.pid()
        )
    }
}

impl<R> std::error::Error for CloseError<R> {}

impl<R> Waitable for ProcessHandle<R> {
    /// Ready when the process has ended (Python's `sentinel` in `connection.wait`).
    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.sentinel())
    }
}
