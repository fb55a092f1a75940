//! The wire format: serde values encoded with postcard, in frames with a 64-bit length prefix.
//!
//! postcard is compact and stable; the little-endian `u64` length in front of each frame means a
//! message larger than 4 GiB works wherever memory allows. Everything that crosses a process
//! boundary (task arguments, results, queue items) goes through here.

use crate::error::Error;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Bytes in a frame header: the payload length as a little-endian `u64`.
pub const HEADER_LEN: usize = 8;

/// Encodes a value.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    postcard::to_stdvec(value).map_err(|e| Error::Encode(e.to_string()))
}

/// Decodes a value; trailing bytes are an error, so a truncated or mixed-up message is caught.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let (value, rest) =
        postcard::take_from_bytes(bytes).map_err(|e| Error::Decode(e.to_string()))?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(Error::Decode(format!(
            "{} unexpected trailing bytes after the message",
            rest.len()
        )))
    }
}

/// Appends the encoding of a value to `buf`; a buffer kept between calls saves an allocation
/// per value. On error `buf` is left empty.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> Result<(), Error> {
    *buf = postcard::to_extend(value, std::mem::take(buf))
        .map_err(|e| Error::Encode(e.to_string()))?;
    Ok(())
}

/// The length of a value's encoding, found without writing it.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<usize, Error> {
    postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())
        .map_err(|e| Error::Encode(e.to_string()))
}

/// Encodes a value into `buf`, which must be exactly [`encoded_len`] bytes long.
pub fn encode_to_slice<T: Serialize + ?Sized>(value: &T, buf: &mut [u8]) -> Result<(), Error> {
    let measured = buf.len();
    let written = postcard::to_slice(value, buf)
        .map_err(|e| Error::Encode(e.to_string()))?
        .len();
    if written == measured {
        Ok(())
    } else {
        Err(Error::Encode(format!(
            "the value encoded to {written} bytes after measuring {measured}"
        )))
    }
}

/// Encodes a value as one frame: header, then payload.
pub fn encode_frame<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut frame = postcard::to_extend(value, vec![0u8; HEADER_LEN])
        .map_err(|e| Error::Encode(e.to_string()))?;
    let len = (frame.len() - HEADER_LEN) as u64;
    frame[..HEADER_LEN].copy_from_slice(&len.to_le_bytes());
    Ok(frame)
}

/// The payload of the frame at the start of `buf`, if the whole frame is there.
pub fn complete_frame(buf: &[u8]) -> Option<&[u8]> {
    let header: [u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
    let len = usize::try_from(u64::from_le_bytes(header)).ok()?;
    buf.get(HEADER_LEN..)?.get(..len)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn truncated_frame_is_incomplete() {
        let frame = encode_frame(&"hello").unwrap();
        assert!(complete_frame(&frame[..frame.len() - 1]).is_none());
        assert!(complete_frame(&frame[..3]).is_none());
    }

    #[test]
    fn trailing_bytes_are_a_decode_error() {
        let mut bytes = encode(&5u8).unwrap();
        bytes.push(0);
        assert!(matches!(decode::<u8>(&bytes), Err(Error::Decode(_))));
    }
}
