//! Frames on a byte stream: a 64-bit little-endian length, then the payload.
//!
//! The reader keeps a buffer so that many small frames cost one `read` between them, and reads a
//! large frame straight into its own allocation; the writer sends header and payload with one
//! `writev`, so a small message costs one system call and a large one is never copied.

use super::HEADER_LEN;
use std::fs::File;
use std::io::{self, IoSlice, Read, Write};

/// Why a frame could not be read; the connection layer says it in its own terms.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// The stream ended between frames.
    #[error("end of stream")]
    Eof,
    /// The stream ended inside a frame.
    #[error("the stream ended after {received} of {expected} bytes")]
    Truncated { expected: u64, received: u64 },
    /// The header announces a frame this process cannot hold in memory.
    #[error("cannot allocate {len} bytes for a frame")]
    TooLarge { len: u64 },
    /// A system call failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Bytes the reader asks for at a time; frames up to this size are assembled in the buffer.
const CHUNK: usize = 64 * 1024;

/// A frame just read: in the reader's buffer, or in its own allocation if it was large.
pub(crate) enum Frame<'a> {
    Buffered(&'a [u8]),
    Owned(Vec<u8>),
}

impl Frame<'_> {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Frame::Buffered(bytes) => bytes,
            Frame::Owned(bytes) => bytes,
        }
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        match self {
            Frame::Buffered(bytes) => bytes.to_vec(),
            Frame::Owned(bytes) => bytes,
        }
    }
}

/// The receiving side's buffer: bytes `start..end` of `buf` are read but not yet consumed.
#[derive(Default)]
pub(crate) struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Assemble every frame in the buffer, however large, rather than in an allocation of its
    /// own: for a reader that only looks at each frame, the buffer's pages are then reused.
    in_place: bool,
}

impl ReadBuf {
    /// A buffer that assembles even large frames in place (see [`Frame::Buffered`]).
    pub(crate) fn in_place() -> Self {
        ReadBuf {
            in_place: true,
            ..ReadBuf::default()
        }
    }

    /// Whether bytes are waiting in the buffer (then a poll of the descriptor is not needed).
    pub(crate) fn has_data(&self) -> bool {
        self.end > self.start
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Reads the next frame, blocking until it has fully arrived.
    pub(crate) fn next_frame(&mut self, file: &File) -> Result<Frame<'_>, FrameError> {
        while self.buffered().len() < HEADER_LEN {
            if self.fill(file, HEADER_LEN)? == 0 {
                return Err(match self.buffered().len() {
                    0 => FrameError::Eof,
                    got => FrameError::Truncated {
                        expected: HEADER_LEN as u64,
                        received: got as u64,
                    },
                });
            }
        }
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&self.buffered()[..HEADER_LEN]);
        let len = u64::from_le_bytes(header);
        let total = usize::try_from(len)
            .ok()
            .and_then(|len| len.checked_add(HEADER_LEN))
            .ok_or(FrameError::TooLarge { len })?;
        if !self.in_place && total > CHUNK && self.buffered().len() < total {
            self.start += HEADER_LEN;
            return self.read_large(file, len).map(Frame::Owned);
        }
        while self.buffered().len() < total {
            if self.fill(file, total)? == 0 {
                return Err(FrameError::Truncated {
                    expected: len,
                    received: (self.buffered().len() - HEADER_LEN) as u64,
                });
            }
        }
        let frame_start = self.start + HEADER_LEN;
        self.start += total;
        Ok(Frame::Buffered(&self.buf[frame_start..self.start]))
    }

    /// Reads a frame of `len` bytes whose start may be buffered into an allocation of its own.
    fn read_large(&mut self, mut file: &File, len: u64) -> Result<Vec<u8>, FrameError> {
        let size = usize::try_from(len).map_err(|_| FrameError::TooLarge { len })?;
        let mut payload = Vec::new();
        payload
            .try_reserve_exact(size)
            .map_err(|_| FrameError::TooLarge { len })?;
        payload.extend_from_slice(self.buffered());
        self.start = self.end;
        let mut received = payload.len();
        payload.resize(size, 0);
        while received < size {
            match file.read(&mut payload[received..]) {
                Ok(0) => {
                    return Err(FrameError::Truncated {
                        expected: len,
                        received: received as u64,
                    })
                }
                Ok(n) => received += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(payload)
    }

    /// Reads once into the buffer, making room for at least `want` buffered bytes; returns the
    /// bytes read (0 at the end of the stream).
    fn fill(&mut self, mut file: &File, want: usize) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let room = want.max(CHUNK);
        if self.buf.len() < self.start + room {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() < room {
                self.buf.reserve_exact(room - self.buf.len());
                crate::sys::mem::prefault_fresh(self.buf.spare_capacity_mut());
                self.buf.resize(room, 0);
            }
        }
        loop {
            match file.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Writes `header` then `payload` completely, with as few system calls as the pipe allows.
pub(crate) fn write_frame(mut file: &File, payload: &[u8]) -> io::Result<()> {
    let header = (payload.len() as u64).to_le_bytes();
    let total = HEADER_LEN + payload.len();
    let mut written = 0;
    while written < total {
        let result = if written < HEADER_LEN {
            file.write_vectored(&[IoSlice::new(&header[written..]), IoSlice::new(payload)])
        } else {
            file.write(&payload[written - HEADER_LEN..])
        };
        match result {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
