//! `Queue<T>`: a queue of serde values shared between processes (Python's
//! `multiprocessing.Queue`).

use super::err::{GetError, GetTimeoutError, PutError, PutTimeoutError, TryGetError, TryPutError};
use super::ring::{PopError, PushError, Ring};
use crate::shm::ShmError;
use crate::wire;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A first-in first-out queue between processes (Python's `multiprocessing.Queue`).
///
/// Any number of processes and threads put and get; items from one producer arrive in the
/// order it put them. `Queue::new()` has no limit on the number of items (only on their total
/// encoded size, [`RING_BYTES`](super::RING_BYTES), past which `put` waits);
/// `Queue::bounded(n)` holds at most `n`. A process killed while putting or getting leaves the
/// queue consistent: the item it was putting is not there, the item it was getting is still
/// there, and the others go on.
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
///
/// #[process_task]
/// fn produce(q: Queue<String>) {
///     for i in 0..3 {
///         q.put(format!("item {i}")).expect("put");
///     }
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let q = Queue::new()?;
/// let p = Process::new(task!(produce, q.clone())).start()?;
/// for i in 0..3 {
///     assert_eq!(q.get()?, format!("item {i}"));
/// }
/// p.join()?;
/// # Ok(())
/// # }
/// ```
pub struct Queue<T> {
    ring: Ring,
    /// Set by `close` for every clone in this process (Python closes the object it is called on).
    closed: Arc<AtomicBool>,
    items: PhantomData<fn(T) -> T>,
}

/// When a blocked operation gives up: on the lock other putters or getters hold, and on room or
/// items.
#[derive(Clone, Copy)]
pub(super) struct Deadlines {
    lock: Option<Instant>,
    wait: Option<Instant>,
}

impl Deadlines {
    const FOREVER: Deadlines = Deadlines {
        lock: None,
        wait: None,
    };

    fn now() -> Deadlines {
        Deadlines {
            lock: None,
            wait: Some(Instant::now()),
        }
    }

    fn after(timeout: Duration) -> Deadlines {
        let at = crate::util::deadline(timeout);
        Deadlines { lock: at, wait: at }
    }
}

impl<T> Queue<T> {
    /// A queue with no limit on the number of items (Python's `Queue()`).
    ///
    /// # Errors
    ///
    /// A [`ShmError`] if its shared memory cannot be made.
    pub fn new() -> Result<Queue<T>, ShmError> {
        Self::bounded(0)
    }

    /// A queue of at most `maxsize` items (Python's `Queue(maxsize)`); 0 means no limit, as in
    /// Python.
    ///
    /// # Errors
    ///
    /// A [`ShmError`] if its shared memory cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Queue;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let q = Queue::bounded(1)?;
    /// q.put("a")?;
    /// assert!(q.is_full());
    /// assert!(q.try_put("b").unwrap_err().is_full());
    /// assert_eq!((q.qsize(), q.maxsize()), (1, 1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn bounded(maxsize: usize) -> Result<Queue<T>, ShmError> {
        let maxsize = u32::try_from(maxsize).unwrap_or(u32::MAX);
        Ok(Queue::from_ring(Ring::new(maxsize)?))
    }

    fn from_ring(ring: Ring) -> Queue<T> {
        Queue {
            ring,
            closed: Arc::new(AtomicBool::new(false)),
            items: PhantomData,
        }
    }

    pub(super) fn ring(&self) -> &Ring {
        &self.ring
    }

    /// The number of items in the queue now (Python's `qsize()`), the queue's length; by the
    /// time the caller looks, another process may have changed it.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Queue;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let q = Queue::new()?;
    /// assert!(q.is_empty());
    /// q.put(1u8)?;
    /// q.put(2u8)?;
    /// assert_eq!(q.qsize(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn qsize(&self) -> usize {
        self.ring.len()
    }

    /// Whether the queue is empty now (Python's `empty()`).
    pub fn is_empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether the queue holds `maxsize` items now (Python's `full()`); never for a queue
    /// without a limit.
    pub fn is_full(&self) -> bool {
        self.ring.maxsize() != 0 && self.qsize() >= self.ring.maxsize()
    }

    /// The limit given to [`bounded`](Queue::bounded), 0 for none (Python's `_maxsize`).
    pub fn maxsize(&self) -> usize {
        self.ring.maxsize()
    }

    /// Closes this handle and its clones in this process (Python's `close()`): their puts and
    /// gets are then errors. Handles in other processes are not affected, and nothing already
    /// put is lost: there is no feeder thread to flush, so Python's `join_thread()` and
    /// `cancel_join_thread()` have nothing to do here.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Queue;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let q = Queue::new()?;
    /// let clone = q.clone();
    /// q.close();
    /// let refused = clone.put(5).unwrap_err();
    /// assert!(refused.is_closed());
    /// assert_eq!(refused.into_inner(), 5); // the item comes back
    /// assert!(q.get().unwrap_err().is_closed());
    /// # Ok(())
    /// # }
    /// ```
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Shuts the queue down for every handle in every process (Python 3.13's
    /// `shutdown(immediate)`): puts fail with a shutdown error from now on, and puts blocked on
    /// a full queue fail too. Gets take the items left and then fail; with `immediate`, they fail
    /// at once, the items left are dropped, and a [`JoinableQueue`](super::JoinableQueue)'s
    /// `join` returns. Gets blocked on an empty queue fail within about 100 ms at most (at once,
    /// unless the wake-up came just as they went to sleep).
    ///
    /// Unlike [`close`](Queue::close), which concerns this handle only, a shutdown is seen by
    /// every handle, and it cannot be undone.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Queue;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let q = Queue::new()?;
    /// q.put(1)?;
    /// q.shutdown(false);
    /// assert!(q.put(2).unwrap_err().is_shutdown());
    /// assert_eq!(q.get()?, 1); // what was left is still taken
    /// assert!(q.get().unwrap_err().is_shutdown());
    ///
    /// let now = Queue::new()?;
    /// now.put(1)?;
    /// now.shutdown(true);
    /// assert!(now.get().unwrap_err().is_shutdown()); // not even what was left
    /// # Ok(())
    /// # }
    /// ```
    pub fn shutdown(&self, immediate: bool) {
        self.ring.shut_down(immediate);
    }
}

/// How an internal put ended, if not with the item in the queue.
enum NotPut<T> {
    /// No room before the deadline.
    Full(T),
    Failed(PutError<T>),
}

impl<T: Serialize> Queue<T> {
    /// Puts an item, waiting for room in a bounded queue (Python's `put(obj)`). On error the
    /// item comes back and the queue is unchanged.
    ///
    /// # Errors
    ///
    /// [`PutError::Closed`] after [`close`](Queue::close); [`PutError::Encode`] if the item
    /// cannot be encoded; [`PutError::TooLarge`] if its encoding is larger than the queue's
    /// shared memory ([`RING_BYTES`](super::RING_BYTES)).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Queue;
    ///
    /// fn main() -> multiproc::Result<()> {
    ///     let q = Queue::new()?;
    ///     q.put(vec![1, 2, 3])?; // `?` turns a PutError into multiproc::Error
    ///     assert_eq!(q.get()?, [1, 2, 3]);
    ///     Ok(())
    /// }
    /// ```
    pub fn put(&self, mut item: T) -> Result<(), PutError<T>> {
        loop {
            match self.put_by(item, Deadlines::FOREVER) {
                Ok(()) => return Ok(()),
                Err(NotPut::Failed(e)) => return Err(e),
                // Without a deadline the ring waits for room; should it return, wait again.
                Err(NotPut::Full(back)) => item = back,
            }
        }
    }

    /// Puts an item if there is room now (Python's `put_nowait(obj)`); a full queue is a
    /// [`TryPutError::Full`] error.
    ///
    /// # Errors
    ///
    /// [`TryPutError::Full`] when the queue is full now; [`TryPutError::Put`] for the reasons
    /// of [`put`](Queue::put).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Queue;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let q = Queue::bounded(1)?;
    /// q.try_put('x')?;
    /// match q.try_put('y') {
    ///     Err(e) if e.is_full() => assert_eq!(e.into_inner(), 'y'),
    ///     other => panic!("expected a full queue, got {other:?}"),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        self.put_by(item, Deadlines::now()).map_err(|e| match e {
            NotPut::Full(item) => TryPutError::Full(item),
            NotPut::Failed(e) => TryPutError::Put(e),
        })
    }

    /// Puts an item, waiting at most `timeout` for room (Python's `put(obj, timeout=t)`).
    ///
    /// # Errors
    ///
    /// [`PutTimeoutError::Timeout`] if the queue stayed full for the whole timeout;
    /// [`PutTimeoutError::Put`] for the reasons of [`put`](Queue::put).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Queue;
    /// use std::time::Duration;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let q = Queue::bounded(1)?;
    /// q.put_timeout(1, Duration::from_millis(10))?;
    /// let e = q.put_timeout(2, Duration::from_millis(10)).unwrap_err();
    /// assert!(e.is_timeout());
    /// # Ok(())
    /// # }
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        self.put_by(item, Deadlines::after(timeout))
            .map_err(|e| match e {
                NotPut::Full(item) => PutTimeoutError::Timeout(item),
                NotPut::Failed(e) => PutTimeoutError::Put(e),
            })
    }

    fn put_by(&self, item: T, deadlines: Deadlines) -> Result<(), NotPut<T>> {
        if self.is_closed() {
            return Err(NotPut::Failed(PutError::Closed(item)));
        }
        let len = match wire::encoded_len(&item) {
            Ok(len) => len,
            Err(e) => return Err(NotPut::Failed(PutError::Encode(item, e))),
        };
        // The item is encoded straight into shared memory, under the put lock.
        let encode = |dst: &mut [u8]| wire::encode_to_slice(&item, dst);
        match self.ring.push(len, encode, deadlines.lock, deadlines.wait) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(NotPut::Failed(PutError::Encode(item, e))),
            Err(PushError::Full) => Err(NotPut::Full(item)),
            Err(PushError::TooLarge) => Err(NotPut::Failed(PutError::TooLarge(item, len))),
            Err(PushError::ShutDown) => Err(NotPut::Failed(PutError::ShutDown(item))),
        }
    }
}

impl<T: DeserializeOwned> Queue<T> {
    /// Takes the next item, waiting for one (Python's `get()`).
    ///
    /// # Errors
    ///
    /// [`GetError::Closed`] after [`close`](Queue::close); [`GetError::Decode`] if the item is
    /// not a `T` (it is taken off the queue); [`GetError::Corrupt`] if the shared memory holds
    /// no valid item.
    ///
    /// # Examples
    ///
    /// See [`put`](Queue::put) and the type's example.
    pub fn get(&self) -> Result<T, GetError> {
        loop {
            match self.get_by(Deadlines::FOREVER) {
                Err(TryGetError::Empty) => continue,
                Err(TryGetError::Get(e)) => return Err(e),
                Ok(item) => return Ok(item),
            }
        }
    }

    /// Takes the next item if there is one now (Python's `get_nowait()`).
    ///
    /// # Errors
    ///
    /// [`TryGetError::Empty`] when the queue is empty now; [`TryGetError::Get`] for the reasons
    /// of [`get`](Queue::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Queue;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let q = Queue::<u32>::new()?;
    /// assert!(q.try_get().unwrap_err().is_empty());
    /// q.put(9)?;
    /// assert_eq!(q.try_get()?, 9);
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_get(&self) -> Result<T, TryGetError> {
        self.get_by(Deadlines::now())
    }

    /// Takes the next item, waiting at most `timeout` (Python's `get(timeout=t)`).
    ///
    /// # Errors
    ///
    /// [`GetTimeoutError::Timeout`] if nothing arrived in time; [`GetTimeoutError::Get`] for
    /// the reasons of [`get`](Queue::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Queue;
    /// use std::time::Duration;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let q = Queue::<String>::new()?;
    /// let e = q.get_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert!(e.is_timeout());
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.get_by(Deadlines::after(timeout)).map_err(|e| match e {
            TryGetError::Empty => GetTimeoutError::Timeout,
            TryGetError::Get(e) => GetTimeoutError::Get(e),
        })
    }

    fn get_by(&self, deadlines: Deadlines) -> Result<T, TryGetError> {
        if self.is_closed() {
            return Err(GetError::Closed.into());
        }
        match self
            .ring
            .pop(deadlines.lock, deadlines.wait, wire::decode::<T>)
        {
            Ok(Ok(item)) => Ok(item),
            Ok(Err(e)) => Err(GetError::Decode(e).into()),
            Err(PopError::Empty) => Err(TryGetError::Empty),
            Err(PopError::Corrupt) => Err(GetError::Corrupt.into()),
            Err(PopError::ShutDown) => Err(GetError::ShutDown.into()),
        }
    }
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            ring: self.ring.clone(),
            closed: self.closed.clone(),
            items: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("qsize", &self.qsize())
            .field("maxsize", &self.maxsize())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.ring.serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Queue<T> {
    /// A handle in another process starts open, whatever the sender's `close` did.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ring::deserialize(deserializer).map(Queue::from_ring)
    }
}
