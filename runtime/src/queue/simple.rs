//! `SimpleQueue<T>`: the reduced queue of Python's `multiprocessing.SimpleQueue`.

use super::err::{GetError, PutError};
use super::standard::Queue;
use crate::shm::ShmError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A queue with only `put`, `get`, `is_empty` and `close` (Python's
/// `multiprocessing.SimpleQueue`). It is the same shared ring as [`Queue`], without a limit on
/// the number of items, so it is as fast; it exists for code that mirrors Python's.
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
///
/// # fn main() -> multiproc::Result<()> {
/// let q = SimpleQueue::new()?;
/// let child = {
///     let q = q.clone();
///     Process::fork(move || q.put("from the child".to_string()).is_ok())?
/// };
/// assert_eq!(q.get()?, "from the child");
/// assert!(child.join()?);
/// assert!(q.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SimpleQueue<T> {
    queue: Queue<T>,
}

impl<T> SimpleQueue<T> {
    /// An empty queue (Python's `SimpleQueue()`).
    pub fn new() -> Result<Self, ShmError> {
        Ok(SimpleQueue {
            queue: Queue::new()?,
        })
    }

    /// Whether the queue is empty now (Python's `empty()`).
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Closes this handle and its clones in this process (Python's `close()`); their puts and
    /// gets are then errors.
    pub fn close(&self) {
        self.queue.close()
    }
}

impl<T: Serialize> SimpleQueue<T> {
    /// Puts an item (Python's `put(obj)`); on error the item comes back.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.queue.put(item)
    }
}

impl<T: DeserializeOwned> SimpleQueue<T> {
    /// Takes the next item, waiting for one (Python's `get()`).
    pub fn get(&self) -> Result<T, GetError> {
        self.queue.get()
    }
}
