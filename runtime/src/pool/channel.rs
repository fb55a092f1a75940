//! The messages between a pool and its workers, and how they are framed.
//!
//! Parent to worker, through the worker's task socket: a frame (the wire format's 64-bit length,
//! then the payload) whose payload is a [`ToWorker`] header followed, for a chunk, by its task
//! arguments packed one after another; the parent sends header and arguments from where they
//! are, with one `sendmsg` for many frames. Worker to parent, through the worker's [`Ring`]: a
//! chunk's results in parts, each a frame (decoded where it lies in the ring when it fits) whose
//! payload is a fixed [`ResultHeader`], which says which of the chunk's calls it answers,
//! followed by one encoded `Result<Output, TaskFailure>` per call (see [`wire::OutcomeWriter`]).
//! Many frames travel in one send or read, so a busy pool makes no system call per task.
//!
//! [`Ring`]: super::ring::Ring

use super::ring::Span;
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

/// Appends the start of a frame to `out`: its length and `message`, which a body of `body_len`
/// bytes follows.
pub(crate) fn put_frame_head(
    out: &mut Vec<u8>,
    message: &ToWorker<'_>,
    body_len: usize,
) -> Result<(), Error> {
    let start = out.len();
    out.extend_from_slice(&[0; wire::HEADER_LEN]);
    wire::encode_into(message, out)?;
    let len = (out.len() - start - wire::HEADER_LEN + body_len) as u64;
    out[start..start + wire::HEADER_LEN].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// The header of a part of a chunk's results: calls `first .. first + count` of the chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResultHeader {
    /// The chunk's sequence number on this worker.
    pub(crate) seq: u64,
    /// The chunk's call that the part's first outcome answers.
    pub(crate) first: u32,
    /// How many outcomes the part holds.
    pub(crate) count: u32,
    /// How long the chunk had run when the part was finished, in microseconds (saturating); the
    /// last part's tells the parent how deep to fill this worker's pipeline.
    pub(crate) micros: u32,
}

/// Bytes of a result frame before the outcomes: length, then the header's fields in order.
const RESULT_PREFIX: usize = wire::HEADER_LEN + 8 + 4 + 4 + 4;

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
    out[16..20].copy_from_slice(&header.first.to_le_bytes());
    out[20..24].copy_from_slice(&header.count.to_le_bytes());
    out[24..28].copy_from_slice(&header.micros.to_le_bytes());
}

/// The bytes of a whole result frame: where they lie in the worker's ring, or copied out of it
/// (a frame bigger than the ring).
#[derive(Debug)]
pub(crate) enum FrameBytes {
    InRing(Span),
    Copied(Vec<u8>),
}

impl FrameBytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            FrameBytes::InRing(span) => span.as_slice(),
            FrameBytes::Copied(bytes) => bytes,
        }
    }
}

/// A whole result frame from a worker's ring: its header, then the outcomes of the calls it
/// answers, which the chunk's sink decodes.
#[derive(Debug)]
pub(crate) struct ResultFrame {
    bytes: FrameBytes,
    header: ResultHeader,
}

impl ResultFrame {
    /// The frame in `bytes` (length, header, outcomes); `None` if it is too short to be one.
    pub(crate) fn parse(bytes: FrameBytes) -> Option<ResultFrame> {
        let prefix = bytes.as_slice().get(wire::HEADER_LEN..RESULT_PREFIX)?;
        let (seq, rest) = prefix.split_at(8);
        let word = |at: usize| Some(u32::from_le_bytes(rest.get(at..at + 4)?.try_into().ok()?));
        let header = ResultHeader {
            seq: u64::from_le_bytes(seq.try_into().ok()?),
            first: word(0)?,
            count: word(4)?,
            micros: word(8)?,
        };
        Some(ResultFrame { bytes, header })
    }

    pub(crate) fn header(&self) -> ResultHeader {
        self.header
    }

    /// The encoded outcomes of the chunk's calls.
    pub(crate) fn outcomes(&self) -> &[u8] {
        &self.bytes.as_slice()[RESULT_PREFIX..]
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
        let header = ResultHeader {
            seq: 7,
            first: 100,
            count: 25,
            micros: 42,
        };
        finish_results(&mut frame, header);
        assert_eq!(wire::frame_len(&frame), Some(frame.len()));
        let parsed = ResultFrame::parse(FrameBytes::Copied(frame.clone())).unwrap();
        assert_eq!(parsed.header(), header);
        assert_eq!(parsed.outcomes(), b"outcomes");
        let short = FrameBytes::Copied(frame[..RESULT_PREFIX - 1].to_vec());
        assert!(ResultFrame::parse(short).is_none());
    }

    #[test]
    fn task_frames_carry_header_and_arguments() {
        let mut out = Vec::new();
        let run = ToWorker::Run {
            seq: 3,
            task: "t::f",
            count: 2,
        };
        put_frame_head(&mut out, &run, 4).unwrap();
        out.extend_from_slice(b"args");
        put_frame_head(&mut out, &ToWorker::Stop, 0).unwrap();
        let first_len = wire::frame_len(&out).unwrap();
        let (first, body): (ToWorker<'_>, _) =
            wire::decode_next(wire::complete_frame(&out).unwrap()).unwrap();
        assert!(matches!(
            first,
            ToWorker::Run {
                seq: 3,
                task: "t::f",
                count: 2
            }
        ));
        assert_eq!(body, b"args");
        let rest = &out[first_len..];
        let (second, body): (ToWorker<'_>, _) =
            wire::decode_next(wire::complete_frame(rest).unwrap()).unwrap();
        assert!(matches!(second, ToWorker::Stop));
        assert!(body.is_empty());
        assert_eq!(wire::frame_len(rest), Some(rest.len()));
    }
}
