//! What the server keeps: an insertion-ordered map of encoded keys to encoded values, each
//! with the version of its last write, and the arithmetic of `fetch_add` on encoded numbers.

use super::protocol::{Bytes, NumberKind};
use super::ServerError;
use crate::wire;
use std::collections::HashMap;

/// One entry of a [`Dict`].
pub(crate) struct Entry {
    pub(crate) key: Bytes,
    pub(crate) value: Bytes,
    /// The table's clock at the entry's last write; never 0, which means "absent".
    pub(crate) version: u64,
}

/// A dict in insertion order (Python's): entries in a vector, removed ones left as holes until
/// they outnumber the live ones, and an index from key to slot.
#[derive(Default)]
pub(crate) struct Dict {
    slots: Vec<Option<Entry>>,
    index: HashMap<Bytes, usize>,
}

impl Dict {
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.index.get(key).and_then(|&i| self.slots[i].as_ref())
    }

    /// Sets `key` to `value`, in place if it is there (its position kept, as Python's dict
    /// does), else at the end; the value replaced.
    pub(crate) fn insert(&mut self, key: Bytes, value: Bytes, version: u64) -> Option<Bytes> {
        if let Some(&i) = self.index.get(&key) {
            if let Some(entry) = self.slots[i].as_mut() {
                entry.version = version;
                return Some(std::mem::replace(&mut entry.value, value));
            }
        }
        self.index.insert(key.clone(), self.slots.len());
        self.slots.push(Some(Entry {
            key,
            value,
            version,
        }));
        None
    }

    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let i = self.index.remove(key)?;
        let entry = self.slots[i].take();
        self.compact();
        entry
    }

    /// Removes the entry inserted last (Python's `popitem`).
    pub(crate) fn pop_last(&mut self) -> Option<Entry> {
        while let Some(slot) = self.slots.pop() {
            if let Some(entry) = slot {
                self.index.remove(&entry.key);
                return Some(entry);
            }
        }
        None
    }

    pub(crate) fn clear(&mut self) {
        self.slots.clear();
        self.index.clear();
    }

    /// The live entries, in insertion order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().flatten()
    }

    /// Drops the holes once they outnumber the live entries, so that memory and iteration stay
    /// proportional to the dict's length.
    fn compact(&mut self) {
        if self.slots.len() <= 2 * self.index.len() + 16 {
            return;
        }
        self.slots.retain(Option::is_some);
        for (i, entry) in self.slots.iter().flatten().enumerate() {
            if let Some(slot) = self.index.get_mut(&entry.key) {
                *slot = i;
            }
        }
    }
}

/// `current` (absent: zero) plus or minus `delta`, both encoded numbers of type `kind`:
/// `(new value, previous value)`, encoded. Integers wrap on overflow, as Rust's atomics do.
pub(crate) fn add_numbers(
    kind: NumberKind,
    current: Option<&[u8]>,
    delta: &[u8],
    subtract: bool,
) -> Result<(Bytes, Bytes), ServerError> {
    macro_rules! add {
        ($t:ty, $add:expr, $sub:expr) => {{
            let previous: $t = match current {
                Some(bytes) => decode_number(bytes)?,
                None => <$t>::default(),
            };
            let delta: $t = decode_number(delta)?;
            let next = if subtract {
                $sub(previous, delta)
            } else {
                $add(previous, delta)
            };
            (encode_number(&next)?, encode_number(&previous)?)
        }};
    }
    macro_rules! int {
        ($t:ty) => {
            add!($t, <$t>::wrapping_add, <$t>::wrapping_sub)
        };
    }
    macro_rules! float {
        ($t:ty) => {
            add!($t, |a: $t, b: $t| a + b, |a: $t, b: $t| a - b)
        };
    }
    Ok(match kind {
        NumberKind::I8 => int!(i8),
        NumberKind::I16 => int!(i16),
        NumberKind::I32 => int!(i32),
        NumberKind::I64 => int!(i64),
        NumberKind::U8 => int!(u8),
        NumberKind::U16 => int!(u16),
        NumberKind::U32 => int!(u32),
        NumberKind::U64 => int!(u64),
        NumberKind::F32 => float!(f32),
        NumberKind::F64 => float!(f64),
    })
}

fn decode_number<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ServerError> {
    wire::decode(bytes).map_err(|e| ServerError::NotANumber {
        reason: e.to_string(),
    })
}

fn encode_number<T: serde::Serialize>(value: &T) -> Result<Bytes, ServerError> {
    wire::encode(value).map_err(|e| ServerError::NotANumber {
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc<T: serde::Serialize>(v: T) -> Bytes {
        wire::encode(&v).unwrap()
    }

    #[test]
    fn a_dict_keeps_insertion_order_through_replacements_and_removals() {
        let mut d = Dict::default();
        for (i, k) in [b"a", b"b", b"c"].into_iter().enumerate() {
            assert!(d.insert(k.to_vec(), vec![i as u8], 1).is_none());
        }
        assert_eq!(d.insert(b"a".to_vec(), vec![9], 2), Some(vec![0]));
        assert_eq!(d.remove(b"b").map(|e| e.value), Some(vec![1]));
        d.insert(b"b".to_vec(), vec![7], 3);
        let keys: Vec<_> = d.entries().map(|e| e.key.clone()).collect();
        assert_eq!(keys, [b"a".to_vec(), b"c".to_vec(), b"b".to_vec()]);
        assert_eq!(d.pop_last().map(|e| e.key), Some(b"b".to_vec()));
        assert_eq!(d.len(), 2);
        assert_eq!(d.get(b"a").map(|e| e.version), Some(2));
    }

    #[test]
    fn compaction_keeps_every_live_entry_reachable() {
        let mut d = Dict::default();
        for i in 0..1000u32 {
            d.insert(enc(i), enc(i), 1);
        }
        for i in (0..1000u32).filter(|i| i % 10 != 0) {
            assert!(d.remove(&enc(i)).is_some());
        }
        assert_eq!(d.len(), 100);
        assert!(d.slots.len() <= 2 * 100 + 16);
        for i in (0..1000u32).step_by(10) {
            assert_eq!(d.get(&enc(i)).map(|e| e.value.clone()), Some(enc(i)));
        }
    }

    #[test]
    fn numbers_add_wrap_and_refuse_the_wrong_type() {
        let (next, prev) = add_numbers(NumberKind::I64, None, &enc(5i64), false).unwrap();
        assert_eq!((next, prev), (enc(5i64), enc(0i64)));
        let (next, _) = add_numbers(NumberKind::U8, Some(&enc(250u8)), &enc(10u8), false).unwrap();
        assert_eq!(next, enc(4u8));
        let (next, _) =
            add_numbers(NumberKind::F64, Some(&enc(1.5f64)), &enc(1.0f64), true).unwrap();
        assert_eq!(next, enc(0.5f64));
        let err = add_numbers(NumberKind::F64, Some(b"x"), &enc(1.0f64), false).unwrap_err();
        assert!(matches!(err, ServerError::NotANumber { .. }));
    }
}
