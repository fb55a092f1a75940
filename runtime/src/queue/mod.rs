//! Queues between processes: [`Queue`], [`JoinableQueue`] and [`SimpleQueue`] (Python's
//! `multiprocessing.Queue`, `JoinableQueue` and `SimpleQueue`), for any serde type.
//!
//! All three are a ring of encoded items in shared memory with futex wake-ups (the `ring` module),
//! built on the crate's futex layer and shared blocks. A `put` encodes the item and copies it
//! into shared memory before it returns: there is no feeder thread, so an encode error comes
//! back at the call, and a process may put and exit at once without losing anything or waiting
//! for a reader. Handles are `Clone + Send + Sync` and serde, so they are passed to tasks as
//! arguments like any value.

mod err;
mod joinable;
pub(crate) mod ring;
mod simple;
mod standard;

pub use err::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, QueueError, TaskDoneError, TryGetError,
    TryPutError,
};
pub use joinable::JoinableQueue;
pub use ring::RING_BYTES;
pub use simple::SimpleQueue;
pub use standard::Queue;
