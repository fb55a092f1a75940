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

/// Splits the payload of a result frame into its header and its outcomes.
pub(crate) fn parse_results(payload: &[u8]) -> Option<(ResultHeader, &[u8])> {
    let seq = u64::from_le_bytes(payload.get(..8)?.try_into().ok()?);
    let micros = u32::from_le_bytes(payload.get(8..12)?.try_into().ok()?);
    Some((ResultHeader { seq, micros }, &payload[12..]))
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
    fn result_frames_survive_any_split() {
        let mut frame = Vec::new();
        begin_results(&mut frame);
        frame.extend_from_slice(b"outcomes");
        finish_results(&mut frame, ResultHeader { seq: 7, micros: 42 });
        let mut two = frame.clone();
        two.extend_from_slice(&frame);
        let mut buf = FrameBuf::default();
        let mut seen = Vec::new();
        for byte in two {
            buf.spare().push(byte);
            while let Some(payload) = buf.next_frame() {
                let (header, body) = parse_results(payload).unwrap();
                seen.push((header.seq, header.micros, body.to_vec()));
            }
        }
        assert_eq!(seen, vec![(7, 42, b"outcomes".to_vec()); 2]);
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
