//! The messages between a pool and its workers, and how they are framed.
//!
//! Parent to worker, through the worker's task pipe: a frame (the wire format's 64-bit length,
//! then the payload) whose payload is a [`ToWorker`] header followed, for a chunk, by its task
//! arguments packed one after another. Worker to parent, through the worker's [`Ring`]: a frame
//! whose payload is a fixed [`ResultHeader`] followed by one encoded `Result<Output,
//! TaskFailure>` per task of the chunk. Many frames travel in one write or read, so a busy pool
//! makes no system call per task.
//!
//! [`Ring`]: super::ring::Ring

use crate::error::Error;
use crate::wire;
use serde::{Deserialize, Serialize};

/// What the parent tells a worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker<'a> {
    /// Run `count` calls of the task registered as `task`; their arguments follow the header.
    Run { seq: u64, task: &'a str, count: u32 },
    /// Finish: the pool is closed and has no more work.
    Stop,
}

/// Appends one frame (header, then `body`) to `out`.
pub(crate) fn put_frame(
    out: &mut Vec<u8>,
    message: &ToWorker<'_>,
    body: &[u8],
) -> Result<(), Error> {
    let start = out.len();
    out.extend_from_slice(&[0; wire::HEADER_LEN]);
    wire::encode_into(message, out)?;
    out.extend_from_slice(body);
    let len = (out.len() - start - wire::HEADER_LEN) as u64;
    out[start..start + wire::HEADER_LEN].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// The header of a chunk's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResultHeader {
    /// The chunk's sequence number on this worker.
    pub(crate) seq: u64,
    /// How long the chunk ran, in microseconds (saturating), which tells the parent how deep to
    /// fill this worker's pipeline.
    pub(crate) micros: u32,
}

/// Bytes of a result frame before the outcomes: length, sequence number, microseconds.
const RESULT_PREFIX: usize = wire::HEADER_LEN + 8 + 4;

/// Starts a result frame in `out` (emptied first); the outcomes are then appended to it.
pub(crate) fn begin_results(out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&[0; RESULT_PREFIX]);
}

/// Fills in the prefix of the result frame built in `out`.
pub(crate) fn finish_results(out: &mut [u8], header: ResultHeader) {
    let len = (out.len() - wire::HEADER_LEN) as u64;
    out[..8].copy_from_slice(&len.to_le_bytes());
    out[8..16].copy_from_slice(&header.seq.to_le_bytes());
    out[16..20].copy_from_slice(&header.micros.to_le_bytes());
}

/// A whole result frame, as read from a worker's ring: its header, then the outcomes of its
/// chunk's calls, which the chunk's sink decodes.
#[derive(Debug)]
pub(crate) struct ResultFrame {
    bytes: Vec<u8>,
    header: ResultHeader,
}

impl ResultFrame {
    /// The frame in `bytes` (length, header, outcomes); `None` if it is too short to be one.
    pub(crate) fn parse(bytes: Vec<u8>) -> Option<ResultFrame> {
        let prefix = bytes.get(wire::HEADER_LEN..RESULT_PREFIX)?;
        let (seq, micros) = prefix.split_at(8);
        let header = ResultHeader {
            seq: u64::from_le_bytes(seq.try_into().ok()?),
            micros: u32::from_le_bytes(micros.try_into().ok()?),
        };
        Some(ResultFrame { bytes, header })
    }

    pub(crate) fn header(&self) -> ResultHeader {
        self.header
    }

    /// The encoded outcomes of the chunk's calls.
    pub(crate) fn outcomes(&self) -> &[u8] {
        &self.bytes[RESULT_PREFIX..]
    }
}

/// Frames read from a stream: bytes arrive in any pieces, whole frames come out.
#[derive(Default)]
pub(crate) struct FrameBuf {
    bytes: Vec<u8>,
    /// Where the next unread frame starts.
    pos: usize,
}

impl FrameBuf {
    /// The buffer to append newly read bytes to.
    pub(crate) fn spare(&mut self) -> &mut Vec<u8> {
        if self.pos > 0 && self.pos == self.bytes.len() {
            self.bytes.clear();
            self.pos = 0;
        } else if self.pos > self.bytes.capacity() / 2 {
            self.bytes.drain(..self.pos);
            self.pos = 0;
        }
        &mut self.bytes
    }

    /// The payload of the next complete frame, if one has fully arrived.
    pub(crate) fn next_frame(&mut self) -> Option<&[u8]> {
        let payload = wire::complete_frame(&self.bytes[self.pos..])?;
        self.pos += wire::HEADER_LEN + payload.len();
        Some(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_frames_carry_header_and_outcomes() {
        let mut frame = Vec::new();
        begin_results(&mut frame);
        frame.extend_from_slice(b"outcomes");
        finish_results(&mut frame, ResultHeader { seq: 7, micros: 42 });
        assert_eq!(wire::frame_len(&frame), Some(frame.len()));
        let parsed = ResultFrame::parse(frame.clone()).unwrap();
        assert_eq!(parsed.header(), ResultHeader { seq: 7, micros: 42 });
        assert_eq!(parsed.outcomes(), b"outcomes");
        assert!(ResultFrame::parse(frame[..RESULT_PREFIX - 1].to_vec()).is_none());
    }

    #[test]
    fn frames_survive_any_split() {
        let mut out = Vec::new();
        put_frame(&mut out, &ToWorker::Stop, b"one").unwrap();
        put_frame(&mut out, &ToWorker::Stop, b"two").unwrap();
        let mut buf = FrameBuf::default();
        let mut seen = 0;
        for byte in out {
            buf.spare().push(byte);
            while buf.next_frame().is_some() {
                seen += 1;
            }
        }
        assert_eq!(seen, 2);
    }

    #[test]
    fn task_frames_carry_header_and_arguments() {
        let mut out = Vec::new();
        let run = ToWorker::Run {
            seq: 3,
            task: "t::f",
            count: 2,
        };
        put_frame(&mut out, &run, b"args").unwrap();
        put_frame(&mut out, &ToWorker::Stop, &[]).unwrap();
        let mut buf = FrameBuf::default();
        buf.spare().extend_from_slice(&out);
        let (first, body): (ToWorker<'_>, _) =
            wire::decode_next(buf.next_frame().unwrap()).unwrap();
        assert!(matches!(
            first,
            ToWorker::Run {
                seq: 3,
                task: "t::f",
                count: 2
            }
        ));
        assert_eq!(body, b"args");
        let (second, _): (ToWorker<'_>, _) = wire::decode_next(buf.next_frame().unwrap()).unwrap();
        assert!(matches!(second, ToWorker::Stop));
        assert!(buf.next_frame().is_none());
    }
}
