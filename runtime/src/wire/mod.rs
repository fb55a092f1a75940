//! The wire format: serde values encoded in postcard's format, in frames with a 64-bit length
//! prefix.
//!
//! postcard's format is compact and stable; the little-endian `u64` length in front of each frame
//! means a message larger than 4 GiB works wherever memory allows. Everything that crosses a
//! process boundary (task arguments, results, queue items) goes through here. The encoder and
//! decoder are this module's own (`ser.rs`, `de.rs`), so that an error keeps the message a
//! value's `Serialize` or `Deserialize` gave and says in which type and where it failed, and so
//! that the decoder enforces the limits of `limits.rs` against forged messages.

#[cfg(test)]
mod compat;
mod de;
mod error;
pub(crate) mod frame;
mod input;
mod limits;
mod ser;

pub use error::{CodecError, WireError};

use error::Fault;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::any::type_name;

/// What failed inside a child while running a task, as sent back to the parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum TaskFailure {
    /// The task panicked (Python's exception with its traceback).
    #[error("the task panicked{}: {message}", at(location))]
    Panicked {
        /// The panic message.
        message: String,
        /// Where it panicked, as `file:line:column`, when the panic hook saw it.
        location: Option<String>,
        /// The backtrace, when the child had `RUST_BACKTRACE` set.
        backtrace: Option<String>,
    },
    /// The arguments did not decode as the task's argument type.
    #[error("the task's arguments could not be decoded: {0}")]
    Decode(String),
    /// The result could not be encoded.
    #[error("the task's result could not be encoded: {0}")]
    Encode(String),
}

/// ` at LOCATION`, or nothing.
pub(crate) fn at(location: &Option<String>) -> String {
    location
        .as_ref()
        .map_or(String::new(), |l| format!(" at {l}"))
}

/// Bytes in a frame header: the payload length as a little-endian `u64`.
pub(crate) const HEADER_LEN: usize = 8;

/// Encodes a value.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    ser::encode(value, &mut out).map_err(encode_error::<T>)?;
    Ok(out)
}

/// An encoder's failure, as the entry point for `T` reports it.
#[cold]
fn encode_error<T: ?Sized>(fault: Fault) -> CodecError {
    CodecError::Encode(fault.into_wire(type_name::<T>()))
}

/// A decoder's failure, as the entry point for `T` reports it.
#[cold]
fn decode_error<T>(fault: Fault) -> CodecError {
    CodecError::Decode(fault.into_wire(type_name::<T>()))
}

/// Decodes a value; trailing bytes are an error, so a truncated or mixed-up message is caught.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, rest) = decode_next(bytes)?;
    no_trailing(rest).map(|()| value)
}

fn no_trailing(rest: &[u8]) -> Result<(), CodecError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(CodecError::Malformed(format!(
            "{} unexpected trailing bytes after the message",
            rest.len()
        )))
    }
}

/// Appends the encoding of a value to `out`; on failure `out` is left as it was. Lets a sender
/// pack many values into one buffer (a pool's chunk of tasks) without a buffer per value.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let len = out.len();
    ser::encode(value, out).map_err(|e| {
        out.truncate(len);
        encode_error::<T>(e)
    })
}

/// Decodes the value at the start of `bytes` and returns it with the bytes after it: the way to
/// read values packed one after another by [`encode_into`].
pub(crate) fn decode_next<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
) -> Result<(T, &'a [u8]), CodecError> {
    de::decode(bytes).map_err(decode_error::<T>)
}

/// Decodes the value at the start of `input` and moves `input` past it.
pub(crate) fn take<T: DeserializeOwned>(input: &mut &[u8]) -> Result<T, CodecError> {
    let (value, rest) = decode_next(input)?;
    *input = rest;
    Ok(value)
}

/// Writes the outcomes of a batch of calls (a pool's chunk) compactly: the values of the calls
/// that succeeded, one after another, behind a list of the calls that failed (usually empty), so
/// a success costs no more than its value. Read back with [`OutcomeReader`].
///
/// Layout: the number of failures, then `(call index, TaskFailure)` for each, then the values.
pub(crate) struct OutcomeWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Where the failure count starts in `out`.
    start: usize,
    calls: u32,
    failures: Vec<(u32, TaskFailure)>,
}

impl<'a> OutcomeWriter<'a> {
    /// Starts a batch at the end of `out`.
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        let start = out.len();
        // No failure yet: a count of zero is one byte, replaced at the end if need be.
        out.push(0);
        OutcomeWriter {
            out,
            start,
            calls: 0,
            failures: Vec::new(),
        }
    }

    /// Records the outcome of the next call, writing a value with `put` (which appends it to the
    /// buffer and leaves the buffer as it was if it fails, as [`encode_into`] does); a value that
    /// does not encode becomes its failure.
    #[inline]
    pub(crate) fn push<T>(
        &mut self,
        outcome: Result<T, TaskFailure>,
        put: impl FnOnce(&T, &mut Vec<u8>) -> Result<(), CodecError>,
    ) {
        let failure = match outcome {
            Ok(value) => put(&value, self.out)
                .err()
                .map(|e| TaskFailure::Encode(e.detail())),
            Err(failure) => Some(failure),
        };
        if let Some(failure) = failure {
            self.failures.push((self.calls, failure));
        }
        self.calls += 1;
    }

    /// Bytes of the values written so far.
    pub(crate) fn written(&self) -> usize {
        self.out.len() - self.start - 1
    }

    /// Ends the batch: puts the list of failures in front of the values.
    pub(crate) fn finish(self) {
        if self.failures.is_empty() {
            return;
        }
        let mut head = Vec::new();
        // Numbers and strings always encode.
        let _ = encode_into(&(self.failures.len() as u32), &mut head);
        for failure in &self.failures {
            let _ = encode_into(failure, &mut head);
        }
        self.out.splice(self.start..self.start + 1, head);
    }
}

/// Reads a batch written by [`OutcomeWriter`], one call's outcome at a time.
pub(crate) struct OutcomeReader<'a> {
    /// The values not read yet.
    input: &'a [u8],
    calls: u32,
    /// The failures, in call order.
    failures: std::collections::VecDeque<(u32, TaskFailure)>,
}

impl<'a> OutcomeReader<'a> {
    /// Reads the list of failures at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self, CodecError> {
        let mut input = bytes;
        let count: u32 = take(&mut input)?;
        let failures = (0..count)
            .map(|_| take(&mut input))
            .collect::<Result<_, CodecError>>()?;
        Ok(OutcomeReader {
            input,
            calls: 0,
            failures,
        })
    }

    /// If none of the remaining calls failed, reads all their values at once with `take_all`
    /// and returns what it returned; otherwise `None`, having read nothing.
    #[inline]
    pub(crate) fn take_all_values(
        &mut self,
        take_all: impl FnOnce(&mut &'a [u8]) -> Result<(), CodecError>,
    ) -> Option<Result<(), CodecError>> {
        self.failures.is_empty().then(|| take_all(&mut self.input))
    }

    /// The outcome of the next call: its failure, or its value as `take` reads it from the front
    /// of the remaining bytes (advancing them); an error if `take` finds no value there.
    #[inline]
    pub(crate) fn next_outcome<T>(
        &mut self,
        take: impl FnOnce(&mut &'a [u8]) -> Result<T, CodecError>,
    ) -> Result<Result<T, TaskFailure>, CodecError> {
        let call = self.calls;
        self.calls += 1;
        if self
            .failures
            .front()
            .is_some_and(|(index, _)| *index == call)
        {
            if let Some((_, failure)) = self.failures.pop_front() {
                return Ok(Err(failure));
            }
        }
        take(&mut self.input).map(Ok)
    }
}

/// The length of a value's encoding, found without writing it.
pub(crate) fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<usize, CodecError> {
    let mut count = ser::Count::default();
    ser::encode(value, &mut count).map_err(encode_error::<T>)?;
    Ok(count.0)
}

/// Encodes a value into `buf`, which must be exactly [`encoded_len`] bytes long.
pub(crate) fn encode_to_slice<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut [u8],
) -> Result<(), CodecError> {
    let measured = buf.len();
    let mut out = ser::SliceOut { buf, len: 0 };
    ser::encode(value, &mut out).map_err(encode_error::<T>)?;
    let written = out.len;
    if written == measured {
        Ok(())
    } else {
        Err(CodecError::Malformed(format!(
            "the value encoded to {written} bytes after measuring {measured}"
        )))
    }
}

/// Encodes a value as one frame: header, then payload.
pub(crate) fn encode_frame<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut frame = vec![0u8; HEADER_LEN];
    ser::encode(value, &mut frame).map_err(encode_error::<T>)?;
    let len = (frame.len() - HEADER_LEN) as u64;
    frame[..HEADER_LEN].copy_from_slice(&len.to_le_bytes());
    Ok(frame)
}

/// Encodes a value as one frame into `buf`, if it fits: no allocation, for hot paths (a forked
/// child pays for every page it writes). `None` if it does not fit or does not encode; then
/// [`encode_frame`] says why.
pub(crate) fn encode_frame_into<'a, T: Serialize + ?Sized>(
    value: &T,
    buf: &'a mut [u8],
) -> Option<&'a [u8]> {
    let (header, body) = buf.split_at_mut_checked(HEADER_LEN)?;
    let mut out = ser::SliceOut { buf: body, len: 0 };
    ser::encode(value, &mut out).ok()?;
    let len = out.len;
    header.copy_from_slice(&(len as u64).to_le_bytes());
    Some(&buf[..HEADER_LEN + len])
}

/// The total length (header and payload) of the frame at the start of `buf`, once its header is
/// there.
pub(crate) fn frame_len(buf: &[u8]) -> Option<usize> {
    let header: [u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
    usize::try_from(u64::from_le_bytes(header))
        .ok()?
        .checked_add(HEADER_LEN)
}

/// The payload of the frame at the start of `buf`, if the whole frame is there.
pub(crate) fn complete_frame(buf: &[u8]) -> Option<&[u8]> {
    buf.get(HEADER_LEN..frame_len(buf)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::pack::{Layout, Serde};

    #[test]
    fn frame_round_trips() {
        let value = (7u32, String::from("seven"), vec![1.5f64, 2.5]);
        let frame = encode_frame(&value).unwrap();
        let payload = complete_frame(&frame).unwrap();
        assert_eq!(
            payload.len() as u64,
            u64::from_le_bytes(frame[..8].try_into().unwrap())
        );
        let back: (u32, String, Vec<f64>) = decode(payload).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn a_frame_encoded_in_place_is_the_same_frame() {
        let value = ("in place", 42u64);
        let mut buf = [0u8; 64];
        let framed = encode_frame_into(&value, &mut buf).unwrap().to_vec();
        assert_eq!(framed, encode_frame(&value).unwrap());
        assert!(
            encode_frame_into(&value, &mut [0u8; 12]).is_none(),
            "too small a buffer"
        );
    }

    #[test]
    fn truncated_frame_is_incomplete() {
        let frame = encode_frame(&"hello").unwrap();
        assert!(complete_frame(&frame[..frame.len() - 1]).is_none());
        assert!(complete_frame(&frame[..3]).is_none());
    }

    #[test]
    fn packed_values_decode_one_after_another() {
        let mut out = vec![9u8];
        encode_into(&300u32, &mut out).unwrap();
        encode_into("abc", &mut out).unwrap();
        let (first, rest): (u32, _) = decode_next(&out[1..]).unwrap();
        let (second, rest): (&str, _) = decode_next(rest).unwrap();
        assert_eq!((first, second, rest.len()), (300, "abc", 0));
    }

    /// A value whose encoding fails after part of it is written.
    struct HalfWritten;

    impl Serialize for HalfWritten {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeTuple;
            let mut tuple = s.serialize_tuple(2)?;
            tuple.serialize_element(&1234u32)?;
            Err(serde::ser::Error::custom("half written"))
        }
    }

    #[test]
    fn a_value_that_fails_to_encode_leaves_the_buffer_as_it_was() {
        let mut out = vec![9u8];
        assert!(matches!(
            encode_into(&HalfWritten, &mut out),
            Err(CodecError::Encode(_))
        ));
        assert_eq!(out, [9]);
    }

    #[test]
    fn outcomes_round_trip_with_and_without_failures() {
        for failed in [vec![], vec![1usize], vec![0, 2]] {
            let outcomes: Vec<Result<String, TaskFailure>> = (0..3)
                .map(|i| match failed.contains(&i) {
                    true => Err(TaskFailure::Panicked {
                        message: format!("call {i}"),
                        location: None,
                        backtrace: None,
                    }),
                    false => Ok(format!("value {i}")),
                })
                .collect();
            let mut out = vec![7u8];
            let mut writer = OutcomeWriter::new(&mut out);
            outcomes
                .iter()
                .cloned()
                .for_each(|o| writer.push(o, |v, out| Serde.put(v, out)));
            writer.finish();
            assert_eq!(out[0], 7);
            let mut reader = OutcomeReader::new(&out[1..]).unwrap();
            let back: Vec<Result<String, TaskFailure>> = (0..3)
                .map(|_| reader.next_outcome(|input| Serde.take(input)).unwrap())
                .collect();
            assert_eq!(back, outcomes);
        }
    }

    #[test]
    fn a_batch_counts_the_bytes_of_its_values_but_not_its_failures() {
        let mut out = vec![7u8];
        let mut writer = OutcomeWriter::new(&mut out);
        assert_eq!(writer.written(), 0);
        writer.push(Ok(1u64), |v, out| Serde.put(v, out));
        let no = TaskFailure::Panicked {
            message: "no".into(),
            location: None,
            backtrace: None,
        };
        writer.push(Err(no), |v: &u64, out| Serde.put(v, out));
        writer.push(Ok(u64::MAX), |v, out| Serde.put(v, out));
        // 1 encodes in one byte, u64::MAX in ten.
        assert_eq!(writer.written(), 11);
    }

    #[test]
    fn an_encode_error_keeps_the_values_message_and_says_where_it_failed() {
        #[derive(Serialize)]
        enum Outer {
            Listed {
                items: std::collections::BTreeMap<u8, Vec<HalfWritten>>,
            },
        }
        let value = Outer::Listed {
            items: [(3, vec![HalfWritten])].into(),
        };
        let Err(CodecError::Encode(e)) = encode(&value) else {
            panic!("expected an encode error")
        };
        assert_eq!(e.reason(), "half written");
        assert_eq!(e.path(), "::Listed.items[entry 0].value[0]");
        assert!(e.type_name().ends_with("Outer"), "{e}");
        assert!(e
            .to_string()
            .ends_with("Outer` at `::Listed.items[entry 0].value[0]`: half written"));
    }

    #[test]
    fn a_decode_error_says_where_it_failed() {
        let Err(CodecError::Decode(e)) = decode::<(u8, Vec<bool>)>(&[1, 3, 0, 1, 5]) else {
            panic!("expected a decode error")
        };
        assert_eq!(
            (e.path(), e.reason()),
            (".1[2]", "byte 5 is not a bool (0 or 1)")
        );
        let Err(CodecError::Decode(e)) = decode::<(u8, String)>(&[1, 9, b'a']) else {
            panic!("expected a decode error")
        };
        assert_eq!(e.path(), ".1");
        assert!(e
            .reason()
            .starts_with("the message ends early: 9 more bytes are needed, 1 remain"));
    }

    #[test]
    fn trailing_bytes_are_a_decode_error() {
        let mut bytes = encode(&5u8).unwrap();
        bytes.push(0);
        assert!(matches!(
            decode::<u8>(&bytes),
            Err(CodecError::Malformed(_))
        ));
    }
}
