//! The encoder: serde's data model written in postcard's format (varints, zigzag for signed
//! integers, a length before each sequence, map, string and byte string, a varint index for each
//! enum variant), with errors that keep the value's own message and say where it failed.

use super::error::{Fault, Reason, Step};
use super::limits::MAX_DEPTH;
use serde::ser::{self, Serialize};

/// Where encoded bytes go.
pub(crate) trait Output {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]) -> Result<(), Fault>;
    /// Appends one byte.
    fn put_byte(&mut self, byte: u8) -> Result<(), Fault>;
}

impl Output for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<(), Fault> {
        // One-byte pieces (most varints) go through `put_byte`; pushing longer ones byte by
        // byte checked the capacity at each and made encoding half as slow again.
        self.extend_from_slice(bytes);
        Ok(())
    }

    #[inline]
    fn put_byte(&mut self, byte: u8) -> Result<(), Fault> {
        self.push(byte);
        Ok(())
    }
}

/// Counts the bytes instead of writing them.
#[derive(Default)]
pub(crate) struct Count(pub(crate) usize);

impl Output for Count {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<(), Fault> {
        self.0 += bytes.len();
        Ok(())
    }

    #[inline]
    fn put_byte(&mut self, _: u8) -> Result<(), Fault> {
        self.0 += 1;
        Ok(())
    }
}

/// Writes into a borrowed buffer, failing once it is full.
pub(crate) struct SliceOut<'a> {
    pub(crate) buf: &'a mut [u8],
    pub(crate) len: usize,
}

impl Output for SliceOut<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<(), Fault> {
        let end = self.len + bytes.len();
        let room = self
            .buf
            .get_mut(self.len..end)
            .ok_or_else(|| Fault::new(Reason::BufferFull))?;
        room.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    #[inline]
    fn put_byte(&mut self, byte: u8) -> Result<(), Fault> {
        self.put(&[byte])
    }
}

/// Encodes `value` into `out`.
#[inline]
pub(crate) fn encode<T: Serialize + ?Sized, O: Output>(
    value: &T,
    out: &mut O,
) -> Result<(), Fault> {
    value.serialize(Encoder { out, depth: 0 })
}

/// The serde serializer: the output, and how deeply nested the value being written is.
pub(crate) struct Encoder<'o, O> {
    out: &'o mut O,
    depth: u32,
}

impl<'o, O: Output> Encoder<'o, O> {
    /// This encoder one level deeper, if that is within [`MAX_DEPTH`].
    #[inline]
    fn deeper(self) -> Result<Encoder<'o, O>, Fault> {
        if self.depth >= MAX_DEPTH {
            return Err(Fault::new(Reason::TooDeep));
        }
        Ok(Encoder {
            out: self.out,
            depth: self.depth + 1,
        })
    }

    #[inline]
    fn varint(&mut self, mut value: u64) -> Result<(), Fault> {
        if value < 0x80 {
            return self.out.put_byte(value as u8);
        }
        let mut buf = [0u8; 10];
        let mut len = 0;
        while value >= 0x80 {
            buf[len] = (value as u8) | 0x80;
            value >>= 7;
            len += 1;
        }
        buf[len] = value as u8;
        self.out.put(&buf[..=len])
    }

    fn varint128(&mut self, mut value: u128) -> Result<(), Fault> {
        let mut buf = [0u8; 19];
        let mut len = 0;
        while value >= 0x80 {
            buf[len] = (value as u8) | 0x80;
            value >>= 7;
            len += 1;
        }
        buf[len] = value as u8;
        self.out.put(&buf[..=len])
    }

    /// A compound value of this encoder, one level deeper.
    #[inline]
    fn compound(self, step: fn(usize) -> Step) -> Result<Compound<'o, O>, Fault> {
        Ok(Compound {
            encoder: self.deeper()?,
            index: 0,
            step,
            variant: None,
        })
    }

    /// A compound value that is the content of `variant`, whose index it writes first.
    #[inline]
    fn variant_compound(
        mut self,
        index: u32,
        variant: &'static str,
        step: fn(usize) -> Step,
    ) -> Result<Compound<'o, O>, Fault> {
        self.varint(u64::from(index))?;
        let mut compound = self.compound(step)?;
        compound.variant = Some(variant);
        Ok(compound)
    }
}

/// zigzag: small magnitudes, positive or negative, become small unsigned numbers.
#[inline]
fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

impl<'o, O: Output> ser::Serializer for Encoder<'o, O> {
    type Ok = ();
    type Error = Fault;
    type SerializeSeq = Compound<'o, O>;
    type SerializeTuple = Compound<'o, O>;
    type SerializeTupleStruct = Compound<'o, O>;
    type SerializeTupleVariant = Compound<'o, O>;
    type SerializeMap = Compound<'o, O>;
    type SerializeStruct = Compound<'o, O>;
    type SerializeStructVariant = Compound<'o, O>;

    fn is_human_readable(&self) -> bool {
        false
    }

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<(), Fault> {
        self.out.put_byte(u8::from(v))
    }

    #[inline]
    fn serialize_i8(self, v: i8) -> Result<(), Fault> {
        self.out.put_byte(v as u8)
    }

    #[inline]
    fn serialize_i16(mut self, v: i16) -> Result<(), Fault> {
        self.varint(zigzag(v.into()))
    }

    #[inline]
    fn serialize_i32(mut self, v: i32) -> Result<(), Fault> {
        self.varint(zigzag(v.into()))
    }

    #[inline]
    fn serialize_i64(mut self, v: i64) -> Result<(), Fault> {
        self.varint(zigzag(v))
    }

    fn serialize_i128(mut self, v: i128) -> Result<(), Fault> {
        self.varint128(((v << 1) ^ (v >> 127)) as u128)
    }

    #[inline]
    fn serialize_u8(self, v: u8) -> Result<(), Fault> {
        self.out.put_byte(v)
    }

    #[inline]
    fn serialize_u16(mut self, v: u16) -> Result<(), Fault> {
        self.varint(v.into())
    }

    #[inline]
    fn serialize_u32(mut self, v: u32) -> Result<(), Fault> {
        self.varint(v.into())
    }

    #[inline]
    fn serialize_u64(mut self, v: u64) -> Result<(), Fault> {
        self.varint(v)
    }

    fn serialize_u128(mut self, v: u128) -> Result<(), Fault> {
        self.varint128(v)
    }

    #[inline]
    fn serialize_f32(self, v: f32) -> Result<(), Fault> {
        self.out.put(&v.to_bits().to_le_bytes())
    }

    #[inline]
    fn serialize_f64(self, v: f64) -> Result<(), Fault> {
        self.out.put(&v.to_bits().to_le_bytes())
    }

    fn serialize_char(self, v: char) -> Result<(), Fault> {
        self.serialize_str(v.encode_utf8(&mut [0u8; 4]))
    }

    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), Fault> {
        self.serialize_bytes(v.as_bytes())
    }

    #[inline]
    fn serialize_bytes(mut self, v: &[u8]) -> Result<(), Fault> {
        self.varint(v.len() as u64)?;
        self.out.put(v)
    }

    #[inline]
    fn serialize_none(self) -> Result<(), Fault> {
        self.out.put_byte(0)
    }

    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Fault> {
        self.out.put_byte(1)?;
        value.serialize(self.deeper()?)
    }

    #[inline]
    fn serialize_unit(self) -> Result<(), Fault> {
        Ok(())
    }

    #[inline]
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Fault> {
        Ok(())
    }

    #[inline]
    fn serialize_unit_variant(
        mut self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
    ) -> Result<(), Fault> {
        self.varint(index.into())
    }

    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Fault> {
        value.serialize(self.deeper()?)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        mut self,
        _name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Fault> {
        self.varint(index.into())?;
        value
            .serialize(self.deeper()?)
            .map_err(|e| e.at(Step::Variant(variant)))
    }

    #[inline]
    fn serialize_seq(mut self, len: Option<usize>) -> Result<Compound<'o, O>, Fault> {
        let len = len.ok_or_else(|| Fault::new(Reason::LengthUnknown))?;
        self.varint(len as u64)?;
        self.compound(Step::Index)
    }

    #[inline]
    fn serialize_tuple(self, _len: usize) -> Result<Compound<'o, O>, Fault> {
        self.compound(Step::Element)
    }

    #[inline]
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'o, O>, Fault> {
        self.compound(Step::Element)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'o, O>, Fault> {
        self.variant_compound(index, variant, Step::Element)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'o, O>, Fault> {
        self.serialize_seq(len)
    }

    #[inline]
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'o, O>, Fault> {
        // Fields name themselves (see `SerializeStruct`).
        self.compound(Step::Element)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'o, O>, Fault> {
        self.variant_compound(index, variant, Step::Element)
    }
}

/// A sequence, tuple, map or struct being written: the encoder one level down, the index of the
/// next element, and how to name it in an error's path.
pub(crate) struct Compound<'o, O> {
    encoder: Encoder<'o, O>,
    index: usize,
    step: fn(usize) -> Step,
    /// The variant whose content this is, if any.
    variant: Option<&'static str>,
}

/// Which element of a compound value is being written.
#[derive(Clone, Copy)]
enum Member {
    /// The next of a sequence or tuple.
    Next,
    /// A struct's field.
    Field(&'static str),
    /// The key of the next map entry.
    Key,
    /// The value of the next map entry.
    Value,
}

impl<O: Output> Compound<'_, O> {
    /// Writes an element; its name in an error's path is worked out only if it fails.
    #[inline]
    fn element<T: Serialize + ?Sized>(&mut self, value: &T, member: Member) -> Result<(), Fault> {
        let encoder = Encoder {
            out: &mut *self.encoder.out,
            depth: self.encoder.depth,
        };
        match value.serialize(encoder) {
            Ok(()) => {
                if matches!(member, Member::Next | Member::Value) {
                    self.index += 1;
                }
                Ok(())
            }
            Err(fault) => Err(self.locate(fault, member)),
        }
    }

    #[cold]
    fn locate(&self, fault: Fault, member: Member) -> Fault {
        let fault = fault.at(match member {
            Member::Next => (self.step)(self.index),
            Member::Field(name) => Step::Field(name),
            Member::Key => Step::Key(self.index),
            Member::Value => Step::Value(self.index),
        });
        match self.variant {
            Some(variant) => fault.at(Step::Variant(variant)),
            None => fault,
        }
    }
}

/// Implements a serde compound trait whose elements all go through [`Compound::element`].
macro_rules! elements {
    ($($trait:ident :: $method:ident),*) => {$(
        impl<O: Output> ser::$trait for Compound<'_, O> {
            type Ok = ();
            type Error = Fault;

            #[inline]
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Fault> {
                self.element(value, Member::Next)
            }

            #[inline]
            fn end(self) -> Result<(), Fault> {
                Ok(())
            }
        }
    )*};
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// Implements a serde compound trait of named fields.
macro_rules! fields {
    ($($trait:ident),*) => {$(
        impl<O: Output> ser::$trait for Compound<'_, O> {
            type Ok = ();
            type Error = Fault;

            #[inline]
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Fault> {
                self.element(value, Member::Field(key))
            }

            #[inline]
            fn end(self) -> Result<(), Fault> {
                Ok(())
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

impl<O: Output> ser::SerializeMap for Compound<'_, O> {
    type Ok = ();
    type Error = Fault;

    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Fault> {
        self.element(key, Member::Key)
    }

    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Fault> {
        self.element(value, Member::Value)
    }

    #[inline]
    fn end(self) -> Result<(), Fault> {
        Ok(())
    }
}
