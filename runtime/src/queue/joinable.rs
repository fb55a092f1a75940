//! `JoinableQueue<T>`: a [`Queue`] whose consumers mark items done, so that a producer can wait
//! until all have been processed (Python's `multiprocessing.JoinableQueue`).

use super::err::TaskDoneError;
use super::standard::Queue;
use crate::shm::ShmError;
use serde::{Deserialize, Serialize};
use std::ops::Deref;
use std::time::Duration;

/// A [`Queue`] with [`task_done`](JoinableQueue::task_done) and [`join`](JoinableQueue::join)
/// (Python's `multiprocessing.JoinableQueue`); every `Queue` method works on it.
///
/// The count of unfinished items lives in the queue's shared memory: it rises with each put and
/// falls with each `task_done`, whichever process calls them.
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
///
/// #[process_task]
/// fn consume(q: JoinableQueue<u32>, n: usize) {
///     for _ in 0..n {
///         let _item = q.get().expect("get");
///         q.task_done().expect("task_done");
///     }
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let q = JoinableQueue::new()?;
/// for i in 0..3 {
///     q.put(i)?;
/// }
/// let consumer = Process::new(task!(consume, q.clone(), 3)).start()?;
/// q.join(); // returns once the consumer has marked all three done
/// assert!(q.is_empty());
/// consumer.join()?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JoinableQueue<T> {
    queue: Queue<T>,
}

impl<T> JoinableQueue<T> {
    /// A joinable queue with no limit on the number of items (Python's `JoinableQueue()`).
    pub fn new() -> Result<Self, ShmError> {
        Self::bounded(0)
    }

    /// A joinable queue of at most `maxsize` items; 0 means no limit.
    pub fn bounded(maxsize: usize) -> Result<Self, ShmError> {
        Ok(JoinableQueue {
            queue: Queue::bounded(maxsize)?,
        })
    }

    /// Marks one item taken from the queue as processed (Python's `task_done()`). Calling it
    /// more times than items were put is a [`TaskDoneError`].
    ///
    /// # Errors
    ///
    /// [`TaskDoneError`] if every item put has already been marked done.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::JoinableQueue;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let q = JoinableQueue::new()?;
    /// q.put("job".to_string())?;
    /// q.get()?;
    /// q.task_done()?;
    /// assert!(q.task_done().is_err()); // one item, one task_done
    /// # Ok(())
    /// # }
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        if self.queue.ring().task_done() {
            Ok(())
        } else {
            Err(TaskDoneError)
        }
    }

    /// Waits until every item put has been marked done (Python's `join()`).
    pub fn join(&self) {
        while !self.queue.ring().join(None) {}
    }

    /// Waits at most `timeout` for every item to be marked done; whether they all were.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::JoinableQueue;
    /// use std::time::Duration;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let q = JoinableQueue::new()?;
    /// q.put(1)?;
    /// assert!(!q.join_timeout(Duration::from_millis(10)));
    /// q.get()?;
    /// q.task_done()?;
    /// assert!(q.join_timeout(Duration::ZERO));
    /// # Ok(())
    /// # }
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.queue.ring().join(crate::util::deadline(timeout))
    }
}

impl<T> Deref for JoinableQueue<T> {
    type Target = Queue<T>;

    fn deref(&self) -> &Queue<T> {
        &self.queue
    }
}
