//! [`QueueProxy`], Python's `manager.Queue()`: a queue held by a manager, whose blocking gets
//! the server parks and times out.

use super::client::{decode, encode, proxy_traits, Handle};
use super::protocol::{timeout_micros, Bytes, Op};
use super::{ManagerError, ServerError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;
use std::time::Duration;

/// An unbounded queue of `T`s served by a [`Manager`](super::Manager) (Python's
/// `manager.Queue()` and `manager.JoinableQueue()`: both are `queue.Queue`, with `task_done`
/// and `join`), with the crate's [`JoinableQueue`](crate::JoinableQueue)'s method names. Unlike the
/// crate's own queue, it can be stored inside another managed object (a dict of queues), and
/// it lives in the server: its items survive any client.
///
/// # Examples
///
/// ```
/// use multiproc::managers::{DictProxy, Manager, QueueProxy};
/// use std::time::Duration;
///
/// # fn main() -> multiproc::Result<()> {
/// let manager = Manager::start()?;
/// let inboxes: DictProxy<String, QueueProxy<u32>> = manager.dict()?;
/// inboxes.insert("alice".to_string(), manager.queue()?)?;
/// let inbox = inboxes.get(&"alice".to_string())?.expect("stored");
/// inbox.put(7)?;
/// assert_eq!(inbox.get()?, 7);
/// assert_eq!(inbox.get_timeout(Duration::from_millis(20))?, None);
/// # Ok(())
/// # }
/// ```
pub struct QueueProxy<T> {
    handle: Handle,
    types: PhantomData<fn() -> T>,
}

proxy_traits!(QueueProxy<T>);

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    /// Appends an item, waking a waiting getter (Python's `q.put(item)`).
    ///
    /// # Errors
    ///
    /// The manager gone or shut down, or an item that does not encode.
    pub fn put(&self, item: T) -> Result<(), ManagerError> {
        let value = encode(&item)?;
        self.handle.call(&Op::QueuePut { value })
    }

    /// Takes the first item, waiting for one (Python's `q.get()`).
    ///
    /// # Errors
    ///
    /// The manager gone or shut down (also while waiting), or an item that is not a `T`.
    pub fn get(&self) -> Result<T, ManagerError> {
        // A wait with no deadline is answered with an item, or not at all.
        let item = self.get_within(None)?;
        item.ok_or_else(|| {
            ManagerError::Server(ServerError::Malformed {
                reason: "a get with no timeout was answered with no item".to_owned(),
            })
        })
    }

    /// Takes the first item, waiting at most `timeout` (Python's `q.get(timeout=t)`); `None`
    /// if none came.
    ///
    /// # Errors
    ///
    /// As [`get`](QueueProxy::get).
    pub fn get_timeout(&self, timeout: Duration) -> Result<Option<T>, ManagerError> {
        self.get_within(Some(timeout_micros(timeout)))
    }

    /// Takes the first item if there is one (Python's `q.get_nowait()`).
    ///
    /// # Errors
    ///
    /// As [`get`](QueueProxy::get).
    pub fn try_get(&self) -> Result<Option<T>, ManagerError> {
        self.get_within(Some(0))
    }

    fn get_within(&self, timeout_micros: Option<u64>) -> Result<Option<T>, ManagerError> {
        let item: Option<Bytes> = self.handle.call(&Op::QueueGet { timeout_micros })?;
        item.as_deref().map(decode).transpose()
    }

    /// How many items wait (Python's `q.qsize()`).
    ///
    /// # Errors
    ///
    /// The manager gone or shut down.
    pub fn qsize(&self) -> Result<usize, ManagerError> {
        Ok(self.handle.call::<u64>(&Op::Len)? as usize)
    }

    /// Marks an item taken earlier as done (Python's `q.task_done()`); when every item put is
    /// done, every [`join`](QueueProxy::join) returns.
    ///
    /// # Errors
    ///
    /// [`ServerError::TaskDoneTooManyTimes`] if every item put is done already; otherwise the
    /// manager gone or shut down.
    pub fn task_done(&self) -> Result<(), ManagerError> {
        self.handle.call(&Op::QueueTaskDone)
    }

    /// Waits until every item put is marked done (Python's `q.join()`).
    ///
    /// # Errors
    ///
    /// The manager gone or shut down (also while waiting).
    pub fn join(&self) -> Result<(), ManagerError> {
        self.handle.call(&Op::QueueJoin)
    }

    /// Whether no item waits (Python's `q.empty()`).
    ///
    /// # Errors
    ///
    /// As [`qsize`](QueueProxy::qsize).
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.qsize()? == 0)
    }
}
