//! The errors of a pool's own rules (Python raises `ValueError`, `TimeoutError` and friends for
//! these); failures of tasks and workers use the crate's process errors.

/// A pool rule that was broken, or a result that is not there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
