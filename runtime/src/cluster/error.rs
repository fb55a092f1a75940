//! The cluster pool's own errors: a refusal at build (no key off loopback, an evicting Redis),
//! the engine lost, a worker node lost or refusing a chunk.

use serde::{Deserialize, Serialize};

/// Why a cluster pool refused, or lost its engine or a worker node; it converts into
/// [`Error::Cluster`](crate::Error::Cluster). Python's pool has no equivalent: Ray raises
/// `RayError` for a dead actor, Dask `KilledWorker`.
///
/// # Examples
///
/// ```
/// use multiproc::cluster::ClusterError;
///
/// let lost = ClusterError::WorkerLost { node: "host-b:4242".to_string() };
/// assert!(lost.to_string().contains("host-b:4242"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ClusterError {
    /// The Redis URL could not be read.
    #[error("the Redis URL is not valid: {0}")]
    BadUrl(String),
    /// The Redis server is not on this machine's loopback and no HMAC key was given: anyone who
    /// can write to that Redis could then run tasks (Python's managers refuse without an
    /// `authkey` likewise).
    #[error(
        "the Redis at `{host}` is not on loopback: give the pool an HMAC key (`key`), or use \
         `insecure_loopback` with a Redis on 127.0.0.1"
    )]
    NoKey {
        /// The host named in the URL.
        host: String,
    },
    /// Redis's `maxmemory-policy` may evict keys, and so silently drop queued tasks.
    #[error("Redis's maxmemory-policy is `{policy}`, which could evict queued tasks; set it to `noeviction`")]
    Evicting {
        /// The policy Redis reported.
        policy: String,
    },
    /// Redis refused a command, or the connection failed.
    #[error("Redis: {0}")]
    Engine(String),
    /// The connection to Redis was lost and did not come back in time, or Redis came back
    /// without the pool's queued work (a restart without persistence): the calls not answered
    /// by then fail with this.
    #[error("the Redis engine was lost: {0}")]
    EngineLost(String),
    /// The worker node that held the call stopped sending heartbeats before answering it.
    #[error("worker node `{node}` was lost before it answered the call")]
    WorkerLost {
        /// The node (`host:pid:nonce`).
        node: String,
    },
    /// The worker node runs another build: the task's name, argument or result types, crate
    /// version or target differ, so it refused to decode the chunk.
    #[error("worker node `{node}` refused task `{task}`: {reason}")]
    TaskMismatch {
        /// The node that refused.
        node: String,
        /// The task's registered name.
        task: String,
        /// What differs.
        reason: String,
    },
    /// The task is not on the worker node's allow-list.
    #[error("worker node `{node}` does not run task `{task}`: it is not on its allow-list")]
    NotAllowed {
        /// The node that refused.
        node: String,
        /// The task's registered name.
        task: String,
    },
}

impl From<redis::RedisError> for ClusterError {
    fn from(e: redis::RedisError) -> Self {
        ClusterError::Engine(e.to_string())
    }
}

impl From<redis::RedisError> for crate::Error {
    fn from(e: redis::RedisError) -> Self {
        ClusterError::from(e).into()
    }
}
