//! Frames on a byte stream: a 64-bit little-endian length, then the payload.
//!
//! Two readers share this module's idea of a frame. [`ReadBuf`] reads a blocking stream (a
//! connection, a pool worker's task socket): it keeps a buffer so that many small frames cost one
//! `read` between them, and reads a large frame straight into its own allocation.
//! [`PartialFrame`] assembles one frame from a source read without blocking (a child's result
//! pipe, a pool worker's result ring), piece by piece as it arrives, never taking a byte of the
//! next frame. The writer sends header and payload with one `writev`, so a small message costs
//! one system call and a large one is never copied.

use super::{frame_len, HEADER_LEN};
use crate::sys;
use std::collections::TryReserveError;
use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::BorrowedFd;

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
    /// The header announces a frame longer than the reader accepts; it has been skipped.
    #[error("a frame of {len} bytes is longer than the maximum of {max} bytes")]
    TooLong { len: u64, max: u64 },
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

    /// Reads the next frame, blocking until it has fully arrived. A frame whose header
    /// announces more than `max` bytes is read and dropped, and is a [`FrameError::TooLong`]
    /// error: the stream stays at a frame boundary.
    pub(crate) fn next_frame(&mut self, file: &File, max: u64) -> Result<Frame<'_>, FrameError> {
        while self.buffered().len() < HEADER_LEN {
            if self.fill(file, HEADER_LEN)? == 0 {
                let got = self.drop_partial();
                return Err(match got {
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
        if len > max {
            self.start += HEADER_LEN;
            self.skip(file, len)?;
            return Err(FrameError::TooLong { len, max });
        }
        let Some(total) = usize::try_from(len)
            .ok()
            .and_then(|len| len.checked_add(HEADER_LEN))
        else {
            // Skipped as a frame past the maximum is, so that the next read moves on.
            self.start += HEADER_LEN;
            self.skip(file, len)?;
            return Err(FrameError::TooLarge { len });
        };
        if !self.in_place && total > CHUNK && self.buffered().len() < total {
            self.start += HEADER_LEN;
            return self.read_large(file, len).map(Frame::Owned);
        }
        while self.buffered().len() < total {
            if self.fill(file, total)? == 0 {
                return Err(FrameError::Truncated {
                    expected: len,
                    received: (self.drop_partial() - HEADER_LEN) as u64,
                });
            }
        }
        let frame_start = self.start + HEADER_LEN;
        self.start += total;
        Ok(Frame::Buffered(&self.buf[frame_start..self.start]))
    }

    /// Drops the start of a frame that the end of the stream cut short, so that the next read
    /// reports the end of the stream rather than the same truncated frame again; returns how
    /// many bytes it had.
    fn drop_partial(&mut self) -> usize {
        let len = self.buffered().len();
        self.start = self.end;
        len
    }

    /// Reads and drops a payload of `len` bytes whose start may be buffered, a buffer's worth
    /// at a time, so that however much a header announces, only what arrives is held.
    fn skip(&mut self, file: &File, len: u64) -> Result<(), FrameError> {
        let mut left = len;
        loop {
            let here = usize::try_from(left).map_or(self.buffered().len(), |left| {
                left.min(self.buffered().len())
            });
            self.start += here;
            left -= here as u64;
            if left == 0 {
                return Ok(());
            }
            if self.fill(file, CHUNK)? == 0 {
                return Err(FrameError::Truncated {
                    expected: len,
                    received: len - left,
                });
            }
        }
    }

    /// Reads a frame of `len` bytes whose start may be buffered into an allocation of its own,
    /// which grows with the bytes that arrive (see [`grow`]) rather than to what the header
    /// announces: a peer cannot make this process allocate memory it does not send.
    fn read_large(&mut self, mut file: &File, len: u64) -> Result<Vec<u8>, FrameError> {
        let size = usize::try_from(len).map_err(|_| FrameError::TooLarge { len })?;
        let mut payload = self.buffered().to_vec();
        self.start = self.end;
        let mut received = payload.len();
        while received < size {
            if received == payload.len() {
                // A full pipe buffer can arrive in one read: a frame up to that size is read
                // into one allocation, as its header announces.
                grow(&mut payload, size, sys::LARGE_PIPE)
                    .map_err(|_| FrameError::TooLarge { len })?;
            }
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

    /// Reads once into the buffer, making room for more buffered bytes, up to `want` (see
    /// [`grow`]); returns the bytes read (0 at the end of the stream).
    fn fill(&mut self, mut file: &File, want: usize) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let room = want.max(CHUNK);
        if self.start > 0 && self.buf.len() < self.start + room {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        // The buffer grows only once full: by then the bytes it holds have arrived.
        if self.end == self.buf.len() {
            grow(&mut self.buf, room, CHUNK).map_err(|_| io::ErrorKind::OutOfMemory)?;
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

/// Lengthens `buf` towards `target` bytes, at most doubling it (or to `floor` if shorter):
/// grown only once full, a buffer for a frame is then never more than about twice what has
/// arrived of it (or `floor`), whatever its header announces, and the copies cost in proportion
/// to the bytes received.
fn grow(buf: &mut Vec<u8>, target: usize, floor: usize) -> Result<(), TryReserveError> {
    let len = target.min(buf.len().saturating_mul(2).max(floor));
    buf.try_reserve_exact(len.saturating_sub(buf.len()))?;
    buf.resize(len, 0);
    Ok(())
}

/// A frame assembled from pieces as they arrive, from a source read without blocking: until its
/// header is in, it asks for the rest of the header; then for the rest of the payload the header
/// announces, so that a reader never takes a byte of the next frame.
#[derive(Debug, Default)]
pub(crate) struct PartialFrame {
    /// The frame so far, header included.
    bytes: Vec<u8>,
    /// Bytes to ask for in all while the header is incomplete (at least [`HEADER_LEN`]).
    first_read: usize,
}

impl PartialFrame {
    /// An empty frame to be read from a source that holds nothing after it (a child's result
    /// pipe): while the header is incomplete, up to `first_read` bytes are asked for, so that a
    /// small frame arrives whole with its header, in one read.
    pub(crate) fn reading_ahead(first_read: usize) -> Self {
        PartialFrame {
            bytes: Vec::new(),
            first_read,
        }
    }

    /// Makes room at once for the whole frame, `total` bytes (header included), whose header the
    /// reader has seen elsewhere. Room is only address space, which the bytes fill as they
    /// arrive; if a header announces more than can be had, the frame grows as it arrives instead
    /// of the process aborting.
    pub(crate) fn reserve(&mut self, total: usize) {
        let more = total.saturating_sub(self.bytes.len());
        // Failing to reserve costs only the reallocations the reservation would have saved.
        let _ = self.bytes.try_reserve_exact(more);
    }

    /// Whether nothing has been read yet.
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// How many more bytes to read: the rest of the header (or of the first read, see
    /// [`reading_ahead`](PartialFrame::reading_ahead)), then the rest of the payload; 0 once the
    /// frame is complete. A header that announces more than this process can address never
    /// completes.
    pub(crate) fn want(&self) -> usize {
        let have = self.bytes.len();
        match frame_len(&self.bytes) {
            Some(total) => total.saturating_sub(have),
            None => self.first_read.max(HEADER_LEN).saturating_sub(have).max(1),
        }
    }

    /// Whether the whole frame is in.
    pub(crate) fn is_complete(&self) -> bool {
        frame_len(&self.bytes).is_some_and(|total| self.bytes.len() >= total)
    }

    /// Reads the next piece: `read` is given the frame so far and how many bytes it may append
    /// (at most `max`, and never more than the frame wants), and returns what it likes (say, how
    /// many it appended).
    pub(crate) fn read_with<R>(
        &mut self,
        max: usize,
        read: impl FnOnce(&mut Vec<u8>, usize) -> R,
    ) -> R {
        let before = self.bytes.len();
        let allowed = self.want().min(max);
        let result = read(&mut self.bytes, allowed);
        debug_assert!(self.bytes.len() <= before + allowed, "read past the frame");
        result
    }

    /// Reads the next piece, at most `max` bytes, from the non-blocking descriptor `fd` (see
    /// [`sys::read_some`]): `Ok(None)` if nothing is there now, `Ok(Some(0))` at the end of the
    /// stream.
    pub(crate) fn read_some(
        &mut self,
        fd: BorrowedFd<'_>,
        max: usize,
    ) -> io::Result<Option<usize>> {
        self.read_with(max, |bytes, want| {
            let have = bytes.len();
            bytes.resize(have + want, 0);
            let read = sys::read_some(fd, &mut bytes[have..]);
            bytes.truncate(have + read.as_ref().map_or(0, |n| n.unwrap_or(0)));
            read
        })
    }

    /// The bytes read so far, header included.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// Takes the bytes read so far (the whole frame, header included, once complete), leaving the
    /// frame empty.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends up to `max` bytes of `source` to `out`, as a non-blocking source would.
    fn read_from(source: &mut &[u8], out: &mut Vec<u8>, max: usize) -> usize {
        let (piece, rest) = source.split_at(max.min(source.len()));
        out.extend_from_slice(piece);
        *source = rest;
        piece.len()
    }

    /// A reading end whose stream holds `bytes` and then ends.
    fn stream_of(bytes: &[u8]) -> File {
        let (read, write) = sys::pipe().unwrap();
        File::from(write).write_all(bytes).unwrap();
        File::from(read)
    }

    /// What a forged header claims: far more than a test sends.
    const CLAIMED: u64 = 3 << 30;

    #[test]
    fn a_frame_past_the_maximum_is_skipped_and_the_next_is_read() {
        for mut buf in [ReadBuf::default(), ReadBuf::in_place()] {
            let mut stream = super::super::encode_frame(&vec![7u8; 100]).unwrap();
            stream.extend(super::super::encode_frame(&vec![1u8; 3]).unwrap());
            let file = stream_of(&stream);
            let error = buf.next_frame(&file, 50).err().unwrap();
            assert!(matches!(error, FrameError::TooLong { len: 101, max: 50 }));
            let next = buf.next_frame(&file, 50).ok().unwrap();
            assert_eq!(next.as_slice(), [3, 1, 1, 1]);
        }
    }

    #[test]
    fn after_a_frame_cut_short_by_the_end_of_the_stream_comes_the_end() {
        let frame = super::super::encode_frame(&7u32).unwrap();
        for cut in [1, HEADER_LEN - 1, HEADER_LEN, frame.len() - 1] {
            let file = stream_of(&frame[..cut]);
            let mut buf = ReadBuf::default();
            let first = buf.next_frame(&file, u64::MAX).err().unwrap();
            assert!(matches!(first, FrameError::Truncated { .. }), "{first}");
            let then = buf.next_frame(&file, u64::MAX).err().unwrap();
            assert!(matches!(then, FrameError::Eof), "after {cut} bytes: {then}");
        }
    }

    #[test]
    fn a_frame_past_the_address_space_is_skipped_to_the_end_of_the_stream() {
        let mut stream = u64::MAX.to_le_bytes().to_vec();
        stream.extend_from_slice(&[0; 3]);
        let file = stream_of(&stream);
        let mut buf = ReadBuf::default();
        let error = buf.next_frame(&file, u64::MAX).err().unwrap();
        assert!(
            matches!(
                error,
                FrameError::Truncated {
                    expected: u64::MAX,
                    received: 3
                }
            ),
            "{error}"
        );
        let then = buf.next_frame(&file, u64::MAX).err().unwrap();
        assert!(matches!(then, FrameError::Eof), "{then}");
    }

    #[test]
    fn a_buffer_grows_only_with_the_bytes_that_arrive() {
        let mut stream = CLAIMED.to_le_bytes().to_vec();
        stream.extend_from_slice(&[1; 1000]);
        for mut buf in [ReadBuf::default(), ReadBuf::in_place()] {
            let error = buf.next_frame(&stream_of(&stream), u64::MAX).err().unwrap();
            assert!(matches!(
                error,
                FrameError::Truncated {
                    expected: CLAIMED,
                    received: 1000
                }
            ));
            assert!(buf.buf.len() <= CHUNK, "{} bytes", buf.buf.len());
        }
    }

    #[test]
    fn growing_at_most_doubles_and_stops_at_the_target() {
        let mut buf = Vec::new();
        grow(&mut buf, CLAIMED as usize, CHUNK).unwrap();
        assert_eq!(buf.len(), CHUNK);
        grow(&mut buf, CLAIMED as usize, CHUNK).unwrap();
        assert_eq!(buf.len(), 2 * CHUNK);
        grow(&mut buf, 3 * CHUNK, CHUNK).unwrap();
        grow(&mut buf, 3 * CHUNK, CHUNK).unwrap();
        assert_eq!(buf.len(), 3 * CHUNK);
    }

    #[test]
    fn a_partial_frame_takes_its_own_bytes_only_as_they_arrive() {
        let mut stream = super::super::encode_frame(&vec![7u8; 100]).unwrap();
        let first_len = stream.len();
        stream.extend(super::super::encode_frame(&1u8).unwrap());
        let mut source = &stream[..];
        let mut frame = PartialFrame::default();
        assert_eq!(frame.want(), HEADER_LEN);
        assert_eq!(
            frame.read_with(3, |out, max| read_from(&mut source, out, max)),
            3
        );
        assert!(!frame.is_complete());
        assert_eq!(frame.want(), HEADER_LEN - 3);
        while !frame.is_complete() {
            frame.read_with(usize::MAX, |out, max| read_from(&mut source, out, max));
        }
        assert_eq!(frame.want(), 0);
        assert_eq!(frame.take(), stream[..first_len]);
        assert_eq!(source, &stream[first_len..], "the next frame is left alone");
        assert!(frame.is_empty());
    }

    #[test]
    fn reserving_for_a_header_past_the_address_space_does_not_abort() {
        let mut frame = PartialFrame::default();
        frame.reserve(usize::MAX);
        assert!(frame.is_empty());
    }

    #[test]
    fn a_frame_read_ahead_comes_in_one_read_with_its_header() {
        let stream = super::super::encode_frame(&vec![1u8; 20]).unwrap();
        let mut source = &stream[..];
        let mut frame = PartialFrame::reading_ahead(256);
        assert_eq!(frame.want(), 256);
        frame.read_with(usize::MAX, |out, max| read_from(&mut source, out, max));
        assert!(frame.is_complete());
        assert_eq!(frame.as_slice(), stream);
    }
}
