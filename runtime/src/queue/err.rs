//! The errors of queue operations, one type per operation as in crossbeam-channel: a failed put
//! gives the item back, so nothing is lost.

use crate::wire::CodecError;
use std::fmt;

/// Why [`put`](super::Queue::put) failed; the item is given back (Python raises `ValueError`
/// for a closed queue and reports encode errors later, on its feeder thread).
///
/// # Examples
///
/// ```
/// use multiproc::queue::PutError;
/// use multiproc::Queue;
///
/// # fn main() -> multiproc::Result<()> {
/// let q = Queue::new()?;
/// q.close();
/// match q.put(String::from("kept")) {
///     Err(PutError::Closed(item)) => assert_eq!(item, "kept"),
///     other => panic!("expected Closed, got {other:?}"),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum PutError<T> {
    /// This handle was closed with `close` (Python: `ValueError: Queue is closed`).
    Closed(T),
    /// The queue was shut down, by any handle in any process (Python 3.13's
    /// `queue.ShutDown`).
    ShutDown(T),
    /// The item could not be encoded; nothing was put and the queue is still usable (CPython
    /// reports this later, on its feeder thread).
    Encode(T, CodecError),
    /// The encoded item is larger than the queue's shared memory could ever hold.
    TooLarge(T, usize),
}

/// Why [`try_put`](super::Queue::try_put) failed; the item is given back.
#[derive(Clone, PartialEq, Eq)]
pub enum TryPutError<T> {
    /// The queue is full (Python's `queue.Full`).
    Full(T),
    /// Another reason, as for `put`.
    Put(PutError<T>),
}

/// Why [`put_timeout`](super::Queue::put_timeout) failed; the item is given back.
#[derive(Clone, PartialEq, Eq)]
pub enum PutTimeoutError<T> {
    /// The queue stayed full for the whole timeout (Python's `queue.Full`).
    Timeout(T),
    /// Another reason, as for `put`.
    Put(PutError<T>),
}

/// Why [`get`](super::Queue::get) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetError {
    /// This handle was closed with `close` (Python: `ValueError: Queue is closed`).
    #[error("the queue is closed")]
    Closed,
    /// The item could not be decoded as the queue's type; it has been taken off the queue.
    #[error("could not decode an item of the queue")]
    Decode(#[source] CodecError),
    /// The queue's shared memory holds something that is not a frame; it cannot be used.
    #[error("the queue's shared memory is corrupt")]
    Corrupt,
    /// The queue was shut down and nothing is left to take, or it was shut down at once
    /// (Python 3.13's `queue.ShutDown`).
    #[error("the queue is shut down")]
    ShutDown,
}

/// Why [`try_get`](super::Queue::try_get) failed (Python's `queue.Empty`, or another reason).
///
/// # Examples
///
/// ```
/// use multiproc::queue::TryGetError;
/// use multiproc::Queue;
///
/// # fn main() -> multiproc::Result<()> {
/// let q = Queue::<u8>::new()?;
/// let e = q.try_get().unwrap_err();
/// assert_eq!(e, TryGetError::Empty);
/// assert!(e.is_empty() && !e.is_closed());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TryGetError {
    /// Nothing to take (Python's `queue.Empty`).
    #[error("the queue is empty")]
    Empty,
    /// Another reason, as for `get`.
    #[error(transparent)]
    Get(#[from] GetError),
}

/// Why [`get_timeout`](super::Queue::get_timeout) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetTimeoutError {
    /// Nothing arrived for the whole timeout (Python's `queue.Empty`).
    #[error("no item arrived before the timeout")]
    Timeout,
    /// Another reason, as for `get`.
    #[error(transparent)]
    Get(#[from] GetError),
}

/// [`task_done`](super::JoinableQueue::task_done) was called more times than items were put
/// (Python: `ValueError: task_done() called too many times`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("task_done() called more times than there were items")]
pub struct TaskDoneError;

/// Any queue error without its item: what the crate's [`Error::Queue`](crate::Error::Queue)
/// holds, so that `?` works in functions returning [`multiproc::Result`](crate::Result).
///
/// # Examples
///
/// ```
/// use multiproc::queue::QueueError;
/// use multiproc::{Error, Queue};
///
/// fn drain(q: &Queue<u32>) -> multiproc::Result<u32> {
///     Ok(q.try_get()?) // a TryGetError becomes Error::Queue
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let q = Queue::new()?;
/// assert!(matches!(drain(&q), Err(Error::Queue(QueueError::Empty))));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The handle was closed.
    #[error("the queue is closed")]
    Closed,
    /// The queue was shut down.
    #[error("the queue is shut down")]
    ShutDown,
    /// An item could not be encoded.
    #[error("could not encode an item for the queue")]
    Encode(#[source] CodecError),
    /// An item is too large for the queue.
    #[error("an encoded item of {0} bytes is larger than the queue can hold")]
    TooLarge(usize),
    /// The queue was full.
    #[error("the queue is full")]
    Full,
    /// The queue was empty.
    #[error("the queue is empty")]
    Empty,
    /// A timed operation timed out.
    #[error("the queue operation timed out")]
    Timeout,
    /// A get failed.
    #[error(transparent)]
    Get(#[from] GetError),
    /// `task_done` was called too many times.
    #[error(transparent)]
    TaskDone(#[from] TaskDoneError),
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Closed(item)
            | PutError::ShutDown(item)
            | PutError::Encode(item, _)
            | PutError::TooLarge(item, _) => item,
        }
    }

    fn without_item(&self) -> QueueError {
        match self {
            PutError::Closed(_) => QueueError::Closed,
            PutError::ShutDown(_) => QueueError::ShutDown,
            PutError::Encode(_, message) => QueueError::Encode(message.clone()),
            PutError::TooLarge(_, len) => QueueError::TooLarge(*len),
        }
    }
}

impl<T> TryPutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            TryPutError::Full(item) => item,
            TryPutError::Put(e) => e.into_inner(),
        }
    }

    fn without_item(&self) -> QueueError {
        match self {
            TryPutError::Full(_) => QueueError::Full,
            TryPutError::Put(e) => e.without_item(),
        }
    }
}

impl<T> PutTimeoutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutTimeoutError::Timeout(item) => item,
            PutTimeoutError::Put(e) => e.into_inner(),
        }
    }

    fn without_item(&self) -> QueueError {
        match self {
            PutTimeoutError::Timeout(_) => QueueError::Timeout,
            PutTimeoutError::Put(e) => e.without_item(),
        }
    }
}

/// Display, Debug (without requiring `T: Debug`), Error and the conversion into [`QueueError`],
/// for the error types that carry an item.
macro_rules! item_error {
    ($name:ident) => {
        impl<T> fmt::Display for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.without_item(), f)
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.without_item())
            }
        }

        impl<T> std::error::Error for $name<T> {}

        impl<T> From<$name<T>> for QueueError {
            fn from(e: $name<T>) -> Self {
                e.without_item()
            }
        }
    };
}

item_error!(PutError);
item_error!(TryPutError);
item_error!(PutTimeoutError);

impl From<TryGetError> for QueueError {
    fn from(e: TryGetError) -> Self {
        match e {
            TryGetError::Empty => QueueError::Empty,
            TryGetError::Get(e) => QueueError::Get(e),
        }
    }
}

impl From<GetTimeoutError> for QueueError {
    fn from(e: GetTimeoutError) -> Self {
        match e {
            GetTimeoutError::Timeout => QueueError::Timeout,
            GetTimeoutError::Get(e) => QueueError::Get(e),
        }
    }
}

/// Predicates on the queue errors, as crossbeam-channel's errors have them: what happened,
/// without matching nested variants (`Err(e) if e.is_full()`).
macro_rules! predicates {
    ($($name:ident $(<$g:ident>)? => $to_queue:expr),* $(,)?) => {$(
        impl$(<$g>)? $name$(<$g>)? {
            /// Whether the queue was full (Python's `queue.Full`).
            pub fn is_full(&self) -> bool {
                matches!($to_queue(self), QueueError::Full)
            }

            /// Whether the queue was empty (Python's `queue.Empty`).
            pub fn is_empty(&self) -> bool {
                matches!($to_queue(self), QueueError::Empty)
            }

            /// Whether a timed operation's timeout passed.
            pub fn is_timeout(&self) -> bool {
                matches!($to_queue(self), QueueError::Timeout)
            }

            /// Whether the queue was shut down (Python 3.13's `queue.ShutDown`).
            pub fn is_shutdown(&self) -> bool {
                matches!(
                    $to_queue(self),
                    QueueError::ShutDown | QueueError::Get(GetError::ShutDown)
                )
            }

            /// Whether this handle was closed (Python's `ValueError: Queue is closed`).
            pub fn is_closed(&self) -> bool {
                matches!($to_queue(self), QueueError::Closed | QueueError::Get(GetError::Closed))
            }
        }
    )*};
}

predicates!(
    PutError<T> => PutError::without_item,
    TryPutError<T> => TryPutError::without_item,
    PutTimeoutError<T> => PutTimeoutError::without_item,
    GetError => |e: &GetError| QueueError::Get(e.clone()),
    TryGetError => |e: &TryGetError| QueueError::from(e.clone()),
    GetTimeoutError => |e: &GetTimeoutError| QueueError::from(e.clone()),
    QueueError => QueueError::clone,
);
