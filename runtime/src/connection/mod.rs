//! Pipes between processes: [`Pipe`] makes a pair of [`Connection`]s that send typed messages
//! or raw bytes, and [`wait`] waits for several connections and process sentinels at once
//! (Python's `multiprocessing.Pipe`, `multiprocessing.connection.Connection` and
//! `multiprocessing.connection.wait`).
//!
//! Each direction is an OS pipe with a 1 MiB buffer (where the system allows), and each message
//! is one frame: a 64-bit length, then the postcard-encoded value or the raw bytes, so message
//! boundaries are kept (empty messages included) and messages of any size work. A two-way pipe
//! is two one-way pipes, which measure faster than a socket pair for small messages on Linux.

mod error;
mod transfer;
mod wait;

pub use error::ConnectionError;
pub use wait::{wait, Waitable};

use crate::sys;
use crate::wire;
use crate::wire::frame::{self, ReadBuf};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::fs::File;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

/// The error of sending on the reading end of a one-way pipe.
const WRONG_END_TO_SEND: ConnectionError = ConnectionError::WrongEnd {
    operation: "send",
    end: "reading",
};

/// Makes pipes (Python's `multiprocessing.Pipe`); `T` is the type of the messages.
pub struct Pipe<T>(PhantomData<fn(T) -> T>);

impl<T> Pipe<T> {
    /// Two connected ends, each of which can send and receive (Python's `Pipe()` /
    /// `Pipe(duplex=True)`): what one sends, the other receives.
    ///
    /// # Errors
    ///
    /// [`ConnectionError::Io`] if the system refuses a pipe.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Pipe;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let (mut a, mut b) = Pipe::<u32>::duplex()?;
    /// a.send(&1)?;
    /// b.send(&2)?;
    /// assert_eq!(b.recv()?, 1);
    /// assert_eq!(a.recv()?, 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn duplex() -> Result<(Connection<T>, Connection<T>), ConnectionError> {
        let (a_read, b_write) = os_pipe()?;
        let (b_read, a_write) = os_pipe()?;
        Ok((
            Connection::new(Some(a_read), Some(a_write)),
            Connection::new(Some(b_read), Some(b_write)),
        ))
    }

    /// A one-way pipe, `(reader, writer)` (Python's `Pipe(duplex=False)`): the reader can only
    /// receive and the writer can only send; the other operations are a
    /// [`ConnectionError::WrongEnd`] error.
    ///
    /// # Errors
    ///
    /// [`ConnectionError::Io`] if the system refuses a pipe.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::prelude::*;
    ///
    /// #[process_task]
    /// fn report(mut out: Connection<String>) {
    ///     out.send(&current_process().name().to_string()).expect("send");
    /// }
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let (mut reader, writer) = Pipe::<String>::simplex()?;
    /// assert!(reader.readable() && !reader.writable());
    /// let child = Process::new(task!(report, writer)).name("reporter").start()?;
    /// assert_eq!(reader.recv()?, "reporter");
    /// child.join()?;
    /// // The only writer, moved to the child, is closed now: end of file.
    /// assert!(matches!(reader.recv(), Err(multiproc::ConnectionError::Eof)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn simplex() -> Result<(Connection<T>, Connection<T>), ConnectionError> {
        let (read, write) = os_pipe()?;
        Ok((
            Connection::new(Some(read), None),
            Connection::new(None, Some(write)),
        ))
    }
}

/// A pipe with a large kernel buffer; a smaller buffer (the system's limit) still works.
fn os_pipe() -> Result<(OwnedFd, OwnedFd), ConnectionError> {
    let (read, write) = sys::pipe()?;
    sys::enlarge_pipe(write.as_fd());
    Ok((read, write))
}

/// One end of a pipe (Python's `multiprocessing.connection.Connection`), carrying messages of
/// type `T`.
///
/// Pass it to a child as a task argument; the end you keep and the child's are then separate
/// handles of the same pipe. It is closed when dropped or by [`close`](Connection::close).
/// Sending and receiving take `&mut self`: one end has one user at a time, which Python's
/// documentation asks of its users and the compiler checks here.
///
/// A reader sees [`ConnectionError::Eof`] only once every copy of the writing end is closed,
/// and a forked child holds copies of the ends open when it started: see `docs/PITFALLS.md`.
///
/// # Examples
///
/// ```
/// use multiproc::Pipe;
///
/// # fn main() -> multiproc::Result<()> {
/// let (mut a, mut b) = Pipe::<Vec<String>>::duplex()?;
/// a.send(&vec!["typed".to_string(), "messages".to_string()])?;
/// assert_eq!(b.recv()?, ["typed", "messages"]);
/// drop(a);
/// assert!(matches!(b.recv(), Err(multiproc::ConnectionError::Eof)));
/// # Ok(())
/// # }
/// ```
pub struct Connection<T> {
    reader: Option<Reader>,
    writer: Option<File>,
    /// The frame being sent, kept between sends so that a small message costs no allocation.
    out: Vec<u8>,
    messages: PhantomData<fn(T) -> T>,
}

/// The receiving half of a connection: the pipe and the bytes read ahead of the next message.
struct Reader {
    file: File,
    buf: ReadBuf,
}

impl<T> Connection<T> {
    fn new(read: Option<OwnedFd>, write: Option<OwnedFd>) -> Self {
        Connection {
            reader: read.map(|fd| Reader {
                file: File::from(fd),
                buf: ReadBuf::default(),
            }),
            writer: write.map(File::from),
            out: Vec::new(),
            messages: PhantomData,
        }
    }

    /// Python's `readable`: whether this end can receive.
    pub fn readable(&self) -> bool {
        self.reader.is_some()
    }

    /// Python's `writable`: whether this end can send.
    pub fn writable(&self) -> bool {
        self.writer.is_some()
    }

    fn reader(&mut self) -> Result<&mut Reader, ConnectionError> {
        self.reader.as_mut().ok_or(ConnectionError::WrongEnd {
            operation: "recv",
            end: "writing",
        })
    }

    fn writer(&self) -> Result<&File, ConnectionError> {
        self.writer.as_ref().ok_or(WRONG_END_TO_SEND)
    }

    /// Sends `bytes` as one message (Python's `send_bytes(buf)`); the peer receives it with
    /// [`recv_bytes`](Connection::recv_bytes). An empty message is a message.
    ///
    /// # Errors
    ///
    /// [`ConnectionError::WrongEnd`] on the reading end of a one-way pipe;
    /// [`ConnectionError::Io`] if the write fails (the peer's reading end is closed, say).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Pipe;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let (mut reader, mut writer) = Pipe::<()>::simplex()?;
    /// writer.send_bytes(b"raw")?;
    /// writer.send_bytes(b"")?;
    /// assert_eq!(reader.recv_bytes()?, b"raw");
    /// assert_eq!(reader.recv_bytes()?, b""); // boundaries are kept
    /// # Ok(())
    /// # }
    /// ```
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        Ok(frame::write_frame(self.writer()?, bytes)?)
    }

    /// Sends `size` bytes of `buf` from `offset` (all the rest if `size` is `None`) as one
    /// message (Python's `send_bytes(buf, offset, size)`). A range outside `buf` is a
    /// [`ConnectionError::OutOfRange`] error and sends nothing.
    pub fn send_bytes_range(
        &mut self,
        buf: &[u8],
        offset: usize,
        size: Option<usize>,
    ) -> Result<(), ConnectionError> {
        let out_of_range = |size| ConnectionError::OutOfRange {
            offset,
            size,
            len: buf.len(),
        };
        let rest = buf.get(offset..).ok_or(out_of_range(size.unwrap_or(0)))?;
        let bytes = match size {
            None => rest,
            Some(size) => rest.get(..size).ok_or(out_of_range(size))?,
        };
        self.send_bytes(bytes)
    }

    /// Receives one message as bytes (Python's `recv_bytes()`), blocking until it arrives.
    ///
    /// # Errors
    ///
    /// [`ConnectionError::Eof`] after the peer closed and everything was read;
    /// [`ConnectionError::Truncated`] if it closed in the middle of a message;
    /// [`ConnectionError::WrongEnd`] on the writing end of a one-way pipe;
    /// [`ConnectionError::TooLarge`] or [`ConnectionError::Io`] if the message cannot be read.
    /// See [`send_bytes`](Connection::send_bytes) for an example.
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, ConnectionError> {
        self.recv_bytes_max(usize::MAX)
    }

    /// Receives one message as bytes if it is at most `maxlength` bytes long (Python's
    /// `recv_bytes(maxlength)`), blocking until it arrives. Use it to read from a peer you do
    /// not trust to send messages of a reasonable size: a longer message is refused, and no
    /// more memory than a read buffer is spent on it.
    ///
    /// # Errors
    ///
    /// [`ConnectionError::MessageTooLong`] if the message is longer than `maxlength` (Python
    /// raises `OSError("bad message length")` and closes the connection; here the message is
    /// read and dropped, and the next one can be received); the other errors of
    /// [`recv_bytes`](Connection::recv_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{ConnectionError, Pipe};
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let (mut reader, mut writer) = Pipe::<()>::simplex()?;
    /// writer.send_bytes(b"far too long")?;
    /// writer.send_bytes(b"short")?;
    /// match reader.recv_bytes_max(8) {
    ///     Err(ConnectionError::MessageTooLong { len, max }) => assert_eq!((len, max), (12, 8)),
    ///     other => panic!("expected MessageTooLong, got {other:?}"),
    /// }
    /// assert_eq!(reader.recv_bytes_max(8)?, b"short");
    /// # Ok(())
    /// # }
    /// ```
    pub fn recv_bytes_max(&mut self, maxlength: usize) -> Result<Vec<u8>, ConnectionError> {
        let reader = self.reader()?;
        let max = u64::try_from(maxlength).unwrap_or(u64::MAX);
        Ok(reader.buf.next_frame(&reader.file, max)?.into_vec())
    }

    /// Receives one message into `buf` and returns its length (Python's `recv_bytes_into`).
    /// A message longer than `buf` is a [`ConnectionError::BufferTooShort`] error that holds
    /// the whole message.
    pub fn recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize, ConnectionError> {
        let reader = self.reader()?;
        let frame = reader.buf.next_frame(&reader.file, u64::MAX)?;
        let message = frame.as_slice();
        match buf.get_mut(..message.len()) {
            Some(target) => {
                target.copy_from_slice(message);
                Ok(message.len())
            }
            None => Err(ConnectionError::BufferTooShort {
                message: frame.into_vec(),
                capacity: buf.len(),
            }),
        }
    }

    /// Whether a message (or the end of the stream) can be read without blocking, waiting up to
    /// `timeout` for one (Python's `poll(timeout)`; `None` waits without limit, as `poll(None)`).
    /// The writing end of a one-way pipe can never have one: [`ConnectionError::WrongEnd`] (as
    /// Python raises `OSError`), rather than a wait without end.
    ///
    /// # Errors
    ///
    /// [`ConnectionError::WrongEnd`] on a writing end; [`ConnectionError::Io`] if `poll(2)` fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Pipe;
    /// use std::time::Duration;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let (mut a, b) = Pipe::<u8>::duplex()?;
    /// assert!(!b.poll(Some(Duration::ZERO))?);
    /// a.send(&7)?;
    /// assert!(b.poll(Some(Duration::from_secs(10)))?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool, ConnectionError> {
        if self.reader.is_none() {
            return Err(ConnectionError::WrongEnd {
                operation: "poll",
                end: "writing",
            });
        }
        let deadline = timeout.and_then(crate::util::deadline);
        Ok(wait::ready([self], deadline)?.contains(&0))
    }

    /// Closes this end (Python's `close()`); the peer's reads then end with
    /// [`ConnectionError::Eof`] once it has read what was sent. Dropping the connection does
    /// the same.
    pub fn close(self) {}
}

impl<T: Serialize> Connection<T> {
    /// Sends a value (Python's `send(obj)`). If the value cannot be encoded the error comes
    /// back here, nothing is sent, and the connection stays usable.
    ///
    /// # Errors
    ///
    /// [`ConnectionError::Encode`] if the value cannot be encoded (see `docs/PITFALLS.md` for the
    /// serde features the codec lacks); [`ConnectionError::WrongEnd`] on the reading end of a
    /// one-way pipe; [`ConnectionError::Io`] if the write fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Pipe;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let (mut reader, mut writer) = Pipe::<(u32, String)>::simplex()?;
    /// writer.send(&(1, "one".to_string()))?;
    /// assert_eq!(reader.recv()?, (1, "one".to_string()));
    /// assert!(matches!(
    ///     reader.send(&(2, "two".to_string())),
    ///     Err(multiproc::ConnectionError::WrongEnd { .. })
    /// ));
    /// # Ok(())
    /// # }
    /// ```
    pub fn send(&mut self, value: &T) -> Result<(), ConnectionError> {
        let writer = self.writer.as_ref().ok_or(WRONG_END_TO_SEND)?;
        self.out.clear();
        wire::encode_into(value, &mut self.out).map_err(ConnectionError::Encode)?;
        Ok(frame::write_frame(writer, &self.out)?)
    }
}

impl<T: DeserializeOwned> Connection<T> {
    /// Receives a value (Python's `recv()`), blocking until one arrives. After the peer closed
    /// and everything was read, a [`ConnectionError::Eof`] error.
    ///
    /// # Errors
    ///
    /// [`ConnectionError::Eof`] after the peer closed and everything was read;
    /// [`ConnectionError::Decode`] if the message is not a `T` (it is consumed);
    /// [`ConnectionError::Truncated`], [`ConnectionError::WrongEnd`],
    /// [`ConnectionError::TooLarge`] or [`ConnectionError::Io`] as for
    /// [`recv_bytes`](Connection::recv_bytes). See [`send`](Connection::send) for an example.
    pub fn recv(&mut self) -> Result<T, ConnectionError> {
        let reader = self.reader()?;
        let frame = reader.buf.next_frame(&reader.file, u64::MAX)?;
        wire::decode(frame.as_slice()).map_err(ConnectionError::Decode)
    }
}

impl<T> Waitable for Connection<T> {
    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        self.reader.as_ref().map(|r| r.file.as_fd())
    }

    fn ready_now(&self) -> bool {
        self.reader.as_ref().is_some_and(|r| r.buf.has_data())
    }
}

impl<T> fmt::Debug for Connection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("read_fd", &self.reader.as_ref().map(|r| r.file.as_raw_fd()))
            .field("write_fd", &self.writer.as_ref().map(|w| w.as_raw_fd()))
            .finish()
    }
}

impl<T> Serialize for Connection<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::sys::transfer::local_only::<S::Error>("a `Connection`")?;
        let fds = transfer::EndRefs {
            read: self.reader.as_ref().map(|r| r.file.as_fd()),
            write: self.writer.as_ref().map(|w| w.as_fd()),
        };
        fds.to_wire()
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de, T> serde::Deserialize<'de> for Connection<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = transfer::WireEnds::deserialize(deserializer)?;
        let (read, write) = wire.open().map_err(serde::de::Error::custom)?;
        Ok(Connection::new(read, write))
    }
}
