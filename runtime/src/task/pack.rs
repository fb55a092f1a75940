//! How a pool packs the arguments and results of a chunk of calls: a plain-old-data value
//! ([`bytemuck::Pod`]: integers, floats, arrays and `#[repr(C)]` structs of them) as its bytes,
//! anything else with the [wire format](crate::wire).
//!
//! A vector of plain values (`Vec<u8>`, `Vec<f64>`, ...) as its length and their bytes.
//!
//! A map of a million tiny tasks spends its time packing and unpacking values, and a `u64` costs
//! one 8-byte copy as bytes against a loop of varint steps through serde; a `Vec<u8>` of a
//! kilobyte one copy against a thousand calls. Workers run the same binary as their parent, so
//! the bytes of a plain value mean the same on both sides. `#[process_task]` picks the layout of
//! each parameter and of the output by its type, at compile time: it calls
//! `(&Probe::<T>::new()).layout()`, where method resolution finds [`PickPlain`] (implemented for
//! `Probe<T>` when `T: Pod`) or [`PickPlainVec`] (for `Probe<Vec<T>>` when `T: Pod`; at most one
//! of the two applies to a type) before [`PickSerde`] (implemented for `&Probe<T>`, one
//! auto-reference further, for every `T`). The generated code names concrete types, which is
//! what lets the first impls win when they apply.

use crate::wire;
use crate::wire::CodecError;
use bytemuck::Pod;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;

/// A way to append a value of type `T` to a buffer and to read it back.
pub trait Layout<T> {
    /// Appends `value` to `out`; on failure `out` is left as it was.
    fn put(self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError>;
    /// Reads a value from the front of `input` and advances `input` past it.
    fn take(self, input: &mut &[u8]) -> Result<T, CodecError>;

    /// Reads `count` values from the front of `input` onto the end of `out`, advancing `input`
    /// past them. On failure `out` may hold some of them; the caller drops the whole chunk.
    #[inline]
    fn take_many(self, input: &mut &[u8], count: usize, out: &mut Vec<T>) -> Result<(), CodecError>
    where
        Self: Copy,
    {
        out.reserve(count);
        for _ in 0..count {
            out.push(self.take(input)?);
        }
        Ok(())
    }
}

/// A plain-old-data value as its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Plain;

/// A value in the wire format (serde and postcard).
#[derive(Debug, Clone, Copy)]
pub struct Serde;

impl<T: Pod> Layout<T> for Plain {
    #[inline]
    fn put(self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(bytemuck::bytes_of(value));
        Ok(())
    }

    #[inline]
    fn take(self, input: &mut &[u8]) -> Result<T, CodecError> {
        let Some((bytes, rest)) = input.split_at_checked(std::mem::size_of::<T>()) else {
            return Err(CodecError::Malformed(format!(
                "{} bytes left where a value of {} bytes was expected",
                input.len(),
                std::mem::size_of::<T>()
            )));
        };
        *input = rest;
        Ok(bytemuck::pod_read_unaligned(bytes))
    }

    /// All `count` values at once: one bounds check, then a copy loop the compiler vectorises.
    #[inline]
    fn take_many(
        self,
        input: &mut &[u8],
        count: usize,
        out: &mut Vec<T>,
    ) -> Result<(), CodecError> {
        let size = std::mem::size_of::<T>();
        if size == 0 {
            out.extend((0..count).map(|_| T::zeroed()));
            return Ok(());
        }
        let Some((bytes, rest)) = size
            .checked_mul(count)
            .and_then(|len| input.split_at_checked(len))
        else {
            return Err(CodecError::Malformed(format!(
                "{} bytes left where {count} values of {size} bytes were expected",
                input.len()
            )));
        };
        *input = rest;
        out.extend(
            bytes
                .chunks_exact(size)
                .map(bytemuck::pod_read_unaligned::<T>),
        );
        Ok(())
    }
}

/// A vector of plain-old-data values as its length (a little-endian `u64`), then their bytes.
#[derive(Debug, Clone, Copy)]
pub struct PlainVec;

/// The most zero-sized values a vector read as [`PlainVec`] may claim: they take no bytes, so
/// nothing else bounds a corrupt length.
const MAX_ZERO_SIZED: usize = 1 << 32;

impl<T: Pod> Layout<Vec<T>> for PlainVec {
    #[inline]
    fn put(self, value: &Vec<T>, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        out.extend_from_slice(bytemuck::cast_slice(value));
        Ok(())
    }

    #[inline]
    fn take(self, input: &mut &[u8]) -> Result<Vec<T>, CodecError> {
        let len: u64 = Plain.take(input)?;
        let zero_sized = std::mem::size_of::<T>() == 0;
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| !zero_sized || len <= MAX_ZERO_SIZED)
            .ok_or_else(|| {
                CodecError::Malformed(format!("a vector of {len} values is too long"))
            })?;
        // Checks that the bytes are there before it makes room for the values.
        let mut values = Vec::new();
        Plain.take_many(input, len, &mut values)?;
        Ok(values)
    }
}

impl<T: Serialize + DeserializeOwned> Layout<T> for Serde {
    #[inline]
    fn put(self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        wire::encode_into(value, out)
    }

    #[inline]
    fn take(self, input: &mut &[u8]) -> Result<T, CodecError> {
        wire::take(input)
    }
}

/// Stands for the type `T` while its layout is picked.
pub struct Probe<T>(PhantomData<fn() -> T>);

impl<T> Probe<T> {
    /// The probe of `T`.
    pub const fn new() -> Self {
        Probe(PhantomData)
    }
}

impl<T> Default for Probe<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Picks [`Plain`] for a plain-old-data type; found first by method resolution.
pub trait PickPlain {
    /// The layout of the probed type.
    fn layout(&self) -> Plain {
        Plain
    }
}

impl<T: Pod> PickPlain for Probe<T> {}

/// Picks [`PlainVec`] for a vector of plain-old-data values; found first by method resolution.
pub trait PickPlainVec {
    /// The layout of the probed type.
    fn layout(&self) -> PlainVec {
        PlainVec
    }
}

impl<T: Pod> PickPlainVec for Probe<Vec<T>> {}

/// Picks [`Serde`] for every other type.
pub trait PickSerde {
    /// The layout of the probed type.
    fn layout(&self) -> Serde {
        Serde
    }
}

impl<T> PickSerde for &Probe<T> {}

// The probes are borrowed as the generated code borrows them; for a `Pod` type clippy sees that
// the borrow is not needed, which is the point of the selection.
#[cfg(test)]
#[allow(clippy::needless_borrow)]
mod tests {
    use super::*;

    fn round_trip<T, L: Layout<T> + Copy>(layout: L, values: &[T]) -> (usize, Vec<T>) {
        let mut out = Vec::new();
        values.iter().for_each(|v| layout.put(v, &mut out).unwrap());
        let mut input = &out[..];
        let back = values.iter().map(|_| layout.take(&mut input).unwrap());
        let back = back.collect();
        assert!(input.is_empty(), "every byte read");
        (out.len(), back)
    }

    #[test]
    fn plain_data_is_picked_and_packed_as_its_bytes() {
        let layout = (&Probe::<u64>::new()).layout();
        let (len, back) = round_trip(layout, &[0, 1, u64::MAX]);
        assert_eq!((len, back), (24, vec![0, 1, u64::MAX]));
        let pairs = [[1.5f32, -2.0], [f32::NAN, 0.0]];
        let (len, back) = round_trip((&Probe::<[f32; 2]>::new()).layout(), &pairs);
        assert_eq!(len, 16);
        assert_eq!(back[0], pairs[0]);
        assert!(back[1][0].is_nan(), "a NaN keeps its bits");
    }

    #[test]
    fn vectors_of_plain_data_are_picked_and_packed_as_length_and_bytes() {
        let bytes = vec![vec![7u8; 1000], Vec::new()];
        let (len, back) = round_trip((&Probe::<Vec<u8>>::new()).layout(), &bytes);
        assert_eq!((len, back), (8 + 1000 + 8, bytes));
        let floats = vec![vec![1.5f64, f64::MAX, -0.0]];
        let (len, back) = round_trip((&Probe::<Vec<f64>>::new()).layout(), &floats);
        assert_eq!((len, back), (8 + 24, floats));
        let units = vec![vec![(); 3]];
        let (len, back) = round_trip((&Probe::<Vec<()>>::new()).layout(), &units);
        assert_eq!((len, back), (8, units));
        let strings = vec![vec!["a".to_owned()]];
        let (len, _) = round_trip((&Probe::<Vec<String>>::new()).layout(), &strings);
        assert_eq!(len, 3, "a vector of strings goes through serde");
    }

    #[test]
    fn a_vector_longer_than_its_bytes_is_a_decode_error() {
        let mut out = Vec::new();
        PlainVec.put(&vec![1u32, 2], &mut out).unwrap();
        let short = Layout::<Vec<u32>>::take(PlainVec, &mut &out[..out.len() - 1]);
        assert!(matches!(short, Err(CodecError::Malformed(m)) if m.contains("values of 4 bytes")));
        let huge = u64::MAX.to_le_bytes();
        let units = Layout::<Vec<()>>::take(PlainVec, &mut &huge[..]);
        assert!(
            matches!(units, Err(CodecError::Malformed(_) | CodecError::Decode(_))),
            "no endless vector of nothing"
        );
    }

    #[test]
    fn other_types_are_picked_for_serde() {
        let layout = (&Probe::<String>::new()).layout();
        let values = ["a".to_owned(), "longer".to_owned()];
        let (len, back) = round_trip(layout, &values);
        assert_eq!((len, back), (9, values.to_vec()));
        let (_, back) = round_trip((&Probe::<bool>::new()).layout(), &[true, false]);
        assert_eq!(
            back,
            [true, false],
            "bool is not Pod: not every byte is a bool"
        );
    }

    #[test]
    fn short_input_is_a_decode_error() {
        let mut input: &[u8] = &[1, 2, 3];
        let plain = Layout::<u64>::take(Plain, &mut input);
        assert!(matches!(plain, Err(CodecError::Malformed(m)) if m.contains("3 bytes left")));
        let serde = Layout::<String>::take(Serde, &mut &[5u8, b'a'][..]);
        assert!(matches!(
            serde,
            Err(CodecError::Malformed(_) | CodecError::Decode(_))
        ));
    }

    #[test]
    fn many_values_read_at_once_match_one_by_one() {
        let mut out = Vec::new();
        for v in [3u32, 0, u32::MAX] {
            Plain.put(&v, &mut out).unwrap();
        }
        out.push(9);
        let mut input = &out[..];
        let mut back = vec![1u32];
        Plain.take_many(&mut input, 3, &mut back).unwrap();
        assert_eq!((back, input), (vec![1, 3, 0, u32::MAX], &[9u8][..]));
        let short = Plain.take_many(&mut &out[..5], 2, &mut Vec::<u32>::new());
        assert!(
            matches!(short, Err(CodecError::Malformed(m)) if m.contains("2 values of 4 bytes"))
        );
        let mut units: Vec<()> = Vec::new();
        Plain.take_many(&mut &[][..], 4, &mut units).unwrap();
        assert_eq!(units, vec![(); 4], "a zero-sized value takes no bytes");
        let mut strings: Vec<String> = Vec::new();
        let bytes = [1u8, b'a', 2, b'b', b'c'];
        Serde.take_many(&mut &bytes[..], 2, &mut strings).unwrap();
        assert_eq!(strings, ["a", "bc"]);
    }
}
