//! The decoder's input: the bytes not read yet, read as postcard writes them (varints, fixed
//! arrays, length-prefixed runs), with the state the decoder's limits need.

use super::error::{Fault, Reason};

/// The bytes not read yet, how many more elements may take none of them, and how deeply
/// nested the value being read is.
pub(super) struct Input<'de> {
    pub(super) bytes: &'de [u8],
    pub(super) empty_left: usize,
    pub(super) depth: u32,
}

impl<'de> Input<'de> {
    #[inline]
    pub(super) fn byte(&mut self) -> Result<u8, Fault> {
        let (&byte, rest) = self.bytes.split_first().ok_or_else(|| self.eof(1))?;
        self.bytes = rest;
        Ok(byte)
    }

    #[inline]
    pub(super) fn take(&mut self, len: u64) -> Result<&'de [u8], Fault> {
        let bytes = self.bytes;
        let (taken, rest) = usize::try_from(len)
            .ok()
            .and_then(|len| bytes.split_at_checked(len))
            .ok_or_else(|| self.eof(len))?;
        self.bytes = rest;
        Ok(taken)
    }

    #[inline]
    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], Fault> {
        let (array, rest) = self
            .bytes
            .split_first_chunk::<N>()
            .ok_or_else(|| self.eof(N as u64))?;
        self.bytes = rest;
        Ok(*array)
    }

    #[cold]
    fn eof(&self, need: u64) -> Fault {
        Fault::new(Reason::Eof {
            need,
            have: self.bytes.len(),
        })
    }

    /// A varint of at most `max_bytes` bytes, the last of which may be at most `last_max`
    /// (the bits the type has left), as postcard writes them.
    #[inline]
    fn varint(&mut self, max_bytes: u32, last_max: u8) -> Result<u64, Fault> {
        if let Some((&byte, rest)) = self.bytes.split_first() {
            if byte < 0x80 {
                self.bytes = rest;
                return Ok(byte.into());
            }
        }
        let mut value = 0u64;
        for i in 0..max_bytes {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if i == max_bytes - 1 && byte > last_max {
                    break;
                }
                return Ok(value);
            }
        }
        Err(Fault::new(Reason::BadVarint))
    }

    pub(super) fn varint128(&mut self) -> Result<u128, Fault> {
        let mut value = 0u128;
        for i in 0..19 {
            let byte = self.byte()?;
            value |= u128::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if i == 18 && byte > 0b11 {
                    break;
                }
                return Ok(value);
            }
        }
        Err(Fault::new(Reason::BadVarint))
    }

    #[inline]
    pub(super) fn u16(&mut self) -> Result<u16, Fault> {
        self.varint(3, 0b11).map(|v| v as u16)
    }

    #[inline]
    pub(super) fn u32(&mut self) -> Result<u32, Fault> {
        self.varint(5, 0b1111).map(|v| v as u32)
    }

    #[inline]
    pub(super) fn u64(&mut self) -> Result<u64, Fault> {
        self.varint(10, 1)
    }

    /// A declared number of elements, refused if the bytes that remain cannot hold them:
    /// each element takes a byte, but for the few that may take none.
    #[inline]
    pub(super) fn len(&mut self) -> Result<usize, Fault> {
        let len = self.u64()?;
        let possible = self.bytes.len().saturating_add(self.empty_left);
        match usize::try_from(len) {
            Ok(len) if len <= possible => Ok(len),
            _ => Err(Fault::new(Reason::TooLong {
                len,
                remaining: self.bytes.len(),
            })),
        }
    }

    /// Counts an element that took no bytes against [`MAX_EMPTY_ELEMENTS`].
    #[inline]
    pub(super) fn took_nothing(&mut self) -> Result<(), Fault> {
        self.empty_left = self
            .empty_left
            .checked_sub(1)
            .ok_or_else(|| Fault::new(Reason::TooManyEmpty))?;
        Ok(())
    }
}

/// Undoes `zigzag` (see `ser.rs`).
#[inline]
pub(super) fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}
