//! [`PoolBuilder`]: where the cluster pool's Redis is, its name, its key, and what happens to
//! a lost node's calls ([`Lost`]); `build` connects and refuses what is unsafe.

use super::engine::Engine;
use super::pool::Pool;
use crate::error::Error;
use std::time::Duration;

/// How long the caller waits for a lost Redis to come back before failing its calls.
const ENGINE_DEADLINE: Duration = Duration::from_secs(30);

/// What happens to the unanswered calls of a worker node that is lost (its heartbeat expired).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lost {
    /// They fail with [`ClusterError::WorkerLost`](super::ClusterError::WorkerLost) naming the
    /// node, as a local pool fails the calls of a worker that died (the default).
    #[default]
    Fail,
    /// They run again on another node, up to this many times per chunk, then fail. A call the
    /// lost node was running may then run twice (at-least-once): only for idempotent tasks. The
    /// caller still gets one answer per call.
    Retry(u32),
}

/// Builds a cluster [`Pool`] (Ray's `Pool(ray_address=..)`): where Redis is, the pool's name,
/// and the HMAC key. Its `Debug` form leaves the key and the URL's password out.
#[derive(Clone)]
pub struct PoolBuilder {
    url: String,
    name: String,
    key: Option<Vec<u8>>,
    insecure_loopback: bool,
    deadline: Duration,
    lost: Lost,
}

impl PoolBuilder {
    pub(crate) fn new(url: &str) -> Self {
        PoolBuilder {
            url: url.to_owned(),
            name: "default".to_owned(),
            key: None,
            insecure_loopback: false,
            deadline: ENGINE_DEADLINE,
            lost: Lost::Fail,
        }
    }

    /// What happens to the calls of a worker node that is lost: [`Lost::Fail`] (the default)
    /// or [`Lost::Retry`].
    pub fn on_worker_lost(mut self, lost: Lost) -> Self {
        self.lost = lost;
        self
    }

    /// The pool's name: its keys in Redis are `mp:{name}:*`, and the worker nodes serving it
    /// use the same name. Default `default`.
    pub fn pool(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// The key that signs every chunk and result (Python's `authkey`); the worker nodes need the
    /// same key.
    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The key, from environment variable `var` (unset: no key).
    pub fn key_from_env(mut self, var: &str) -> Self {
        self.key = std::env::var_os(var).map(|v| v.into_encoded_bytes());
        self
    }

    /// Runs without a key, which only a Redis on loopback allows: anyone who can write to that
    /// Redis can then run the registered tasks.
    pub fn insecure_loopback(mut self) -> Self {
        self.insecure_loopback = true;
        self
    }

    /// How long a lost Redis may take to come back before the calls in flight fail with
    /// [`ClusterError::EngineLost`](super::ClusterError::EngineLost) (default 30 s).
    pub fn engine_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Connects and starts the result and heartbeat threads.
    ///
    /// # Errors
    ///
    /// [`ClusterError::BadUrl`](super::ClusterError::BadUrl);
    /// [`ClusterError::NoKey`](super::ClusterError::NoKey) (no key, and not
    /// [`insecure_loopback`](PoolBuilder::insecure_loopback) on loopback);
    /// [`ClusterError::Evicting`](super::ClusterError::Evicting);
    /// [`ClusterError::Engine`](super::ClusterError::Engine) if Redis cannot be reached.
    pub fn build(self) -> Result<Pool, Error> {
        let (engine, con) =
            Engine::connect(&self.url, &self.name, self.key, self.insecure_loopback)?;
        let retries = match self.lost {
            Lost::Fail => 0,
            Lost::Retry(n) => n,
        };
        Pool::start(engine, con, self.deadline, retries)
    }
}

impl std::fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("pool", &self.name)
            .field("key", &self.key.as_ref().map(|_| "<hidden>"))
            .field("insecure_loopback", &self.insecure_loopback)
            .field("lost", &self.lost)
            .finish_non_exhaustive()
    }
}
