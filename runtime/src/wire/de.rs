//! The decoder: postcard's format read back into serde's data model (see `ser.rs`), with the
//! limits of `limits.rs` enforced, so that no message, however forged, can crash the receiver
//! or keep it busy for ever, and with errors that keep the type's own message and say where it
//! failed.

use super::error::{Fault, Reason, Step};
use super::input::{unzigzag, Input};
use super::limits::{MAX_DEPTH, MAX_EMPTY_ELEMENTS};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::Deserialize;

/// Decodes the value at the start of `bytes`; returns it with the bytes after it.
#[inline]
pub(crate) fn decode<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<(T, &'de [u8]), Fault> {
    let mut input = Input {
        bytes,
        empty_left: MAX_EMPTY_ELEMENTS,
        depth: 0,
    };
    let value = T::deserialize(Decoder { input: &mut input })?;
    Ok((value, input.bytes))
}

/// The serde deserializer.
pub(crate) struct Decoder<'a, 'de> {
    input: &'a mut Input<'de>,
}

impl<'de> Decoder<'_, 'de> {
    /// Reads a value one level deeper with `read`, if that is within [`MAX_DEPTH`].
    #[inline]
    fn nested<R>(self, read: impl FnOnce(&mut Input<'de>) -> Result<R, Fault>) -> Result<R, Fault> {
        if self.input.depth >= MAX_DEPTH {
            return Err(Fault::new(Reason::TooDeep));
        }
        self.input.depth += 1;
        let result = read(self.input);
        self.input.depth -= 1;
        result
    }

    /// The `len` elements (or entries) that follow, one level deeper, for `read`; named by
    /// `names` in errors. `COUNTED` if `len` came from the bytes: elements that take no bytes
    /// then count against [`MAX_EMPTY_ELEMENTS`].
    #[inline]
    fn elements<const COUNTED: bool, R>(
        self,
        len: usize,
        names: Names,
        read: impl FnOnce(Elements<'_, 'de, COUNTED>) -> Result<R, Fault>,
    ) -> Result<R, Fault> {
        self.nested(|input| {
            read(Elements {
                input,
                len,
                left: len,
                names,
                entry_start: 0,
            })
        })
    }

    #[cold]
    fn not_self_describing<T>(method: &'static str) -> Result<T, Fault> {
        Err(Fault::new(Reason::NotSelfDescribing(method)))
    }
}

/// Implements `deserialize_*` methods that read a value with an `Input` method and give it to
/// a visitor method.
macro_rules! scalars {
    ($($method:ident: $read:ident $(as $cast:ty)? => $visit:ident),* $(,)?) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
            let value = self.input.$read()?;
            visitor.$visit(value $(as $cast)?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Decoder<'_, 'de> {
    type Error = Fault;

    fn is_human_readable(&self) -> bool {
        false
    }

    scalars! {
        deserialize_u8: byte => visit_u8,
        deserialize_i8: byte as i8 => visit_i8,
        deserialize_u16: u16 => visit_u16,
        deserialize_u32: u32 => visit_u32,
        deserialize_u64: u64 => visit_u64,
        deserialize_u128: varint128 => visit_u128,
    }

    #[inline]
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
        let value = self.input.u16()?;
        visitor.visit_i16(unzigzag(value.into()) as i16)
    }

    #[inline]
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
        let value = self.input.u32()?;
        visitor.visit_i32(unzigzag(value.into()) as i32)
    }

    #[inline]
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
        let value = self.input.u64()?;
        visitor.visit_i64(unzigzag(value))
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
        let value = self.input.varint128()?;
        visitor.visit_i128(((value >> 1) as i128) ^ -((value & 1) as i128))
    }

    #[inline]
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
        match self.input.byte()? {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            byte => Err(Fault::new(Reason::BadBool(byte))),
        }
    }

    #[inline]
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
        let bytes = self.input.array()?;
        visitor.visit_f32(f32::from_le_bytes(bytes))
    }

    #[inline]
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
        let bytes = self.input.array()?;
        visitor.visit_f64(f64::from_le_bytes(bytes))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
        let len = self.input.u64()?;
        if len > 4 {
            return Err(Fault::new(Reason::BadChar));
        }
        let bytes = self.input.take(len)?;
        let mut chars = std::str::from_utf8(bytes).map_or("", |s| s).chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => Err(Fault::new(Reason::BadChar)),
        }
    }

    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
        let len = self.input.u64()?;
        let bytes = self.input.take(len)?;
        let s = std::str::from_utf8(bytes).map_err(|_| Fault::new(Reason::BadUtf8))?;
        visitor.visit_borrowed_str(s)
    }

    #[inline]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
        self.deserialize_str(visitor)
    }

    #[inline]
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
        let len = self.input.u64()?;
        visitor.visit_borrowed_bytes(self.input.take(len)?)
    }

    #[inline]
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
        self.deserialize_bytes(visitor)
    }

    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
        match self.input.byte()? {
            0 => visitor.visit_none(),
            1 => self.nested(|input| visitor.visit_some(Decoder { input })),
            byte => Err(Fault::new(Reason::BadOption(byte))),
        }
    }

    #[inline]
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
        visitor.visit_unit()
    }

    #[inline]
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Fault> {
        visitor.visit_unit()
    }

    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Fault> {
        self.nested(|input| visitor.visit_newtype_struct(Decoder { input }))
    }

    #[inline]
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
        let len = self.input.len()?;
        self.elements::<true, _>(len, Names::Index, |e| visitor.visit_seq(e))
    }

    #[inline]
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Fault> {
        self.elements::<false, _>(len, Names::Element, |e| visitor.visit_seq(e))
    }

    #[inline]
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Fault> {
        self.deserialize_tuple(len, visitor)
    }

    #[inline]
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
        let len = self.input.len()?;
        self.elements::<true, _>(len, Names::Entry, |e| visitor.visit_map(e))
    }

    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Fault> {
        self.elements::<false, _>(fields.len(), Names::Field(fields), |e| visitor.visit_seq(e))
    }

    #[inline]
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Fault> {
        self.nested(|input| {
            visitor.visit_enum(Enum {
                decoder: Decoder { input },
                variants,
            })
        })
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Fault> {
        Self::not_self_describing("deserialize_any")
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Fault> {
        Self::not_self_describing("deserialize_identifier")
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Fault> {
        Self::not_self_describing("deserialize_ignored_any")
    }
}

/// How the elements of a compound value are named in an error's path.
#[derive(Clone, Copy)]
enum Names {
    /// A sequence's: `[i]`.
    Index,
    /// A tuple's: `.i`.
    Element,
    /// A struct's: `.field`.
    Field(&'static [&'static str]),
    /// A map's: `[entry i].key` and `.value`.
    Entry,
}

impl Names {
    /// The step to element `index`; for a map, to its value.
    #[cold]
    fn step(self, index: usize) -> Step {
        match self {
            Names::Index => Step::Index(index),
            Names::Element => Step::Element(index),
            Names::Field(fields) => fields
                .get(index)
                .map_or(Step::Element(index), |field| Step::Field(field)),
            Names::Entry => Step::Value(index),
        }
    }
}

/// The elements of a sequence, tuple, struct or map, read one level deeper; `COUNTED` if
/// those that take no bytes count against [`MAX_EMPTY_ELEMENTS`].
struct Elements<'a, 'de, const COUNTED: bool> {
    input: &'a mut Input<'de>,
    /// Elements (or entries) in all.
    len: usize,
    /// Elements (or entries) not read yet.
    left: usize,
    names: Names,
    /// Where the current map entry started (the bytes then left).
    entry_start: usize,
}

impl<'de, const COUNTED: bool> Elements<'_, 'de, COUNTED> {
    /// Reads the next element (or key, or value) with `seed`; if it fails, names it with
    /// `step` of its index.
    #[inline]
    fn element<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
        step: fn(usize) -> Step,
    ) -> Result<T::Value, Fault> {
        match seed.deserialize(Decoder {
            input: &mut *self.input,
        }) {
            Ok(value) => Ok(value),
            Err(fault) => Err(fault.at(step(self.index()))),
        }
    }

    /// The index of the element being read.
    #[cold]
    fn index(&self) -> usize {
        self.len - self.left - 1
    }

    /// Checks the element (or entry) just read, which started when `before` bytes were left.
    #[inline]
    fn check(&mut self, before: usize) -> Result<(), Fault> {
        if COUNTED && self.input.bytes.len() == before {
            self.took_nothing()
        } else {
            Ok(())
        }
    }

    #[cold]
    #[inline(never)]
    fn took_nothing(&mut self) -> Result<(), Fault> {
        let step = self.names.step(self.index());
        self.input.took_nothing().map_err(|e| e.at(step))
    }
}

impl<'de, const COUNTED: bool> de::SeqAccess<'de> for Elements<'_, 'de, COUNTED> {
    type Error = Fault;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Fault> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let before = self.input.bytes.len();
        let value = match seed.deserialize(Decoder {
            input: &mut *self.input,
        }) {
            Ok(value) => value,
            Err(fault) => return Err(fault.at(self.names.step(self.index()))),
        };
        self.check(before)?;
        Ok(Some(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

impl<'de, const COUNTED: bool> de::MapAccess<'de> for Elements<'_, 'de, COUNTED> {
    type Error = Fault;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Fault> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        self.entry_start = self.input.bytes.len();
        self.element(seed, Step::Key).map(Some)
    }

    #[inline]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Fault> {
        let value = self.element(seed, Step::Value)?;
        // An entry whose key and value both took no bytes is an empty element.
        self.check(self.entry_start)?;
        Ok(value)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// An enum being read: its variant's index, then its content.
struct Enum<'a, 'de> {
    decoder: Decoder<'a, 'de>,
    variants: &'static [&'static str],
}

impl<'a, 'de> de::EnumAccess<'de> for Enum<'a, 'de> {
    type Error = Fault;
    type Variant = Variant<'a, 'de>;

    #[inline]
    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Variant<'a, 'de>), Fault> {
        let index = self.decoder.input.u32()?;
        let value = seed.deserialize(index.into_deserializer())?;
        let name = usize::try_from(index)
            .ok()
            .and_then(|i| self.variants.get(i))
            .copied()
            .unwrap_or("?");
        Ok((
            value,
            Variant {
                decoder: self.decoder,
                name,
            },
        ))
    }
}

/// The content of an enum's variant.
struct Variant<'a, 'de> {
    decoder: Decoder<'a, 'de>,
    name: &'static str,
}

impl<'de> de::VariantAccess<'de> for Variant<'_, 'de> {
    type Error = Fault;

    #[inline]
    fn unit_variant(self) -> Result<(), Fault> {
        Ok(())
    }

    #[inline]
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Fault> {
        let name = self.name;
        seed.deserialize(self.decoder)
            .map_err(|e| e.at(Step::Variant(name)))
    }

    #[inline]
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Fault> {
        let name = self.name;
        de::Deserializer::deserialize_tuple(self.decoder, len, visitor)
            .map_err(|e| e.at(Step::Variant(name)))
    }

    #[inline]
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Fault> {
        let name = self.name;
        de::Deserializer::deserialize_struct(self.decoder, "", fields, visitor)
            .map_err(|e| e.at(Step::Variant(name)))
    }
}
