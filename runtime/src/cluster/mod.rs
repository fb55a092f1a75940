//! Past one machine: a pool whose workers run on other machines, through Redis Streams (what
//! Python users reach for in Ray's `ray.util.multiprocessing.Pool`, Dask's `Client.map`, or
//! Celery and RQ on Redis). [`Pool`] has the local pool's methods and result types; a worker
//! machine runs the same binary in worker mode ([`Worker`], [`serve_if_worker`]) and feeds a
//! local [`crate::Pool`] of processes. Chunks are stream entries read in a consumer group, so
//! Redis knows which node holds which chunk; a node whose heartbeat expires has its chunks
//! claimed and their unanswered calls failed with [`ClusterError::WorkerLost`], and a fenced
//! script refuses its late results. Every entry is signed with an HMAC key.
//!
//! ```no_run
//! use multiproc::prelude::*;
//! use multiproc::cluster;
//!
//! #[process_task]
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! fn main() -> multiproc::Result<()> {
//!     cluster::serve_if_worker()?;
//!     let pool = cluster::Pool::builder("redis://127.0.0.1:6379").key_from_env("KEY").build()?;
//!     let squares = pool.map(task!(square), 0..1000)?;
//!     assert_eq!(squares[999], 998_001);
//!     Ok(())
//! }
//! ```

mod auth;
mod beat;
mod blob;
mod builder;
mod engine;
mod entry;
mod error;
mod imap;
mod jobs;
mod keys;
mod map;
mod node;
mod pool;
mod results;
mod worker;

pub use builder::{Lost, PoolBuilder};
pub use error::ClusterError;
pub use imap::IMap;
pub use map::Map;
pub use pool::Pool;
pub use worker::{serve_if_worker, Worker, WorkerBuilder};
