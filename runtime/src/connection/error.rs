//! What can go wrong on a [`Connection`](super::Connection), one variant per cause.

use crate::wire::frame::FrameError;
use crate::wire::CodecError;
use std::io;

/// An error of a [`Connection`](super::Connection) operation (Python raises `EOFError`,
/// `BufferTooShort`, `OSError` and `ValueError` for these).
///
/// # Examples
///
/// ```
/// use multiproc::{ConnectionError, Pipe};
///
/// # fn main() -> multiproc::Result<()> {
/// let (mut reader, mut writer) = Pipe::<()>::simplex()?;
/// writer.send_bytes(b"too long")?;
/// let mut small = [0u8; 3];
/// match reader.recv_bytes_into(&mut small) {
///     Err(ConnectionError::BufferTooShort { message, capacity }) => {
///         assert_eq!((message.as_slice(), capacity), (&b"too long"[..], 3));
///     }
///     other => panic!("expected BufferTooShort, got {other:?}"),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The peer closed its end and every message it sent has been read (Python's `EOFError`).
    #[error("the other end of the connection is closed and all its messages have been read")]
    Eof,
    /// The peer closed its end in the middle of a message.
    #[error("the connection closed in the middle of a message: {received} of {expected} bytes")]
    Truncated {
        /// The message's length, from its header.
        expected: u64,
        /// The bytes that arrived.
        received: u64,
    },
    /// The message is longer than the buffer given to `recv_bytes_into` (Python's
    /// `BufferTooShort`); the whole message is here, nothing is lost.
    #[error("a message of {} bytes does not fit in a buffer of {capacity} bytes", message.len())]
    BufferTooShort {
        /// The whole message.
        message: Vec<u8>,
        /// The size of the buffer that was given.
        capacity: usize,
    },
    /// The operation needs the other end of a one-way pipe: receiving on its writer, or
    /// sending on its reader (Python: `OSError`, "connection is write-only/read-only").
    #[error("cannot {operation} on this end: it is the {end} end of a one-way pipe")]
    WrongEnd {
        /// What was attempted: `send`, `recv` or `poll`.
        operation: &'static str,
        /// Which end this is: `reading` or `writing`.
        end: &'static str,
    },
    /// `offset` and `size` do not select a range of the buffer given to `send_bytes_range`
    /// (Python's `ValueError`).
    #[error("bytes {offset}..{offset}+{size} are out of range of a buffer of {len} bytes")]
    OutOfRange {
        /// The requested offset.
        offset: usize,
        /// The requested size.
        size: usize,
        /// The buffer's length.
        len: usize,
    },
    /// The header announces a message this process cannot hold in memory.
    #[error("cannot allocate {len} bytes for an incoming message")]
    TooLarge {
        /// The announced length.
        len: u64,
    },
    /// The message is longer than the maximum given to
    /// [`recv_bytes_max`](super::Connection::recv_bytes_max) (Python's `OSError("bad message
    /// length")`); it has been read and dropped, and the connection is still usable.
    #[error("bad message length: the message has {len} bytes, more than the maximum of {max}")]
    MessageTooLong {
        /// The message's length, from its header.
        len: u64,
        /// The maximum that was given.
        max: usize,
    },
    /// The value could not be encoded; nothing was sent and the connection is still usable.
    #[error("could not encode the message")]
    Encode(#[source] CodecError),
    /// The message could not be decoded as the connection's type; it has been consumed.
    #[error("could not decode the message")]
    Decode(#[source] CodecError),
    /// The connection end could not be passed to another process.
    #[error("cannot pass the connection to this process: {0}")]
    Transfer(String),
    /// A system call failed.
    #[error("connection i/o failed: {0}")]
    Io(#[from] io::Error),
}

impl From<FrameError> for ConnectionError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Eof => ConnectionError::Eof,
            FrameError::Truncated { expected, received } => {
                ConnectionError::Truncated { expected, received }
            }
            FrameError::TooLarge { len } => ConnectionError::TooLarge { len },
            FrameError::TooLong { len, max } => ConnectionError::MessageTooLong {
                len,
                max: usize::try_from(max).unwrap_or(usize::MAX),
            },
            FrameError::Io(e) => ConnectionError::Io(e),
        }
    }
}
