//! [`ShareableList`], Python's `multiprocessing.shared_memory.ShareableList`: a fixed-length
//! list of numbers, booleans, short strings and bytes, stored in one [`SharedMemory`] block that
//! any process attaches by name.
//!
//! The block holds a header (a magic number, the item count), one 16-byte descriptor per item
//! (its kind, the length of its value, the size of its slot) and the slots, each fixed when the
//! list is made: 8 bytes, or a string's or bytes' length rounded up to 8. Every access copies
//! through [`SharedMemory::read_at`] and [`SharedMemory::write_at`], so no safe reference to
//! bytes other processes write is ever made; a value torn by two writers racing on one item
//! reads as an error, never as undefined behaviour. Python's byte layout is not kept.

use crate::shm::{SharedMemory, ShmError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const MAGIC: u64 = u64::from_le_bytes(*b"mpSLIST1");
const HEADER: usize = 16;
const DESCRIPTOR: usize = 16;

/// One item of a [`ShareableList`] (Python's `int`, `float`, `bool`, `str`, `bytes`, `None`).
///
/// # Examples
///
/// ```
/// use multiproc::managers::Item;
///
/// assert_eq!(Item::from(3), Item::Int(3));
/// assert_eq!(Item::from("hi"), Item::Str("hi".to_string()));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// Python's `None`.
    None,
    /// An integer (Python's `int`, within 64 bits).
    Int(i64),
    /// Python's `float`.
    Float(f64),
    /// Python's `bool`.
    Bool(bool),
    /// Python's `str`.
    Str(String),
    /// Python's `bytes`.
    Bytes(Vec<u8>),
}

impl Item {
    fn kind(&self) -> u8 {
        match self {
            Item::None => 0,
            Item::Int(_) => 1,
            Item::Float(_) => 2,
            Item::Bool(_) => 3,
            Item::Str(_) => 4,
            Item::Bytes(_) => 5,
        }
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Item::None => Vec::new(),
            Item::Int(n) => n.to_le_bytes().to_vec(),
            Item::Float(x) => x.to_le_bytes().to_vec(),
            Item::Bool(b) => vec![u8::from(*b)],
            Item::Str(s) => s.as_bytes().to_vec(),
            Item::Bytes(b) => b.clone(),
        }
    }

    /// The item of `kind` encoded as `bytes`, or why it is not one.
    fn decode(kind: u8, bytes: Vec<u8>) -> Result<Item, String> {
        let eight =
            |b: &[u8]| <[u8; 8]>::try_from(b).map_err(|_| "a number of 8 bytes".to_string());
        Ok(match kind {
            0 => Item::None,
            1 => Item::Int(i64::from_le_bytes(eight(&bytes)?)),
            2 => Item::Float(f64::from_le_bytes(eight(&bytes)?)),
            3 => Item::Bool(bytes.first().is_some_and(|&b| b != 0)),
            4 => Item::Str(String::from_utf8(bytes).map_err(|e| e.to_string())?),
            5 => Item::Bytes(bytes),
            other => return Err(format!("unknown item kind {other}")),
        })
    }

    /// The slot a new list gives this item: room for its value, in 8-byte steps.
    fn slot(&self) -> usize {
        self.encode().len().div_ceil(8).max(1) * 8
    }
}

macro_rules! items_from {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {
        $(impl From<$t> for Item {
            fn from($v: $t) -> Item {
                $e
            }
        })*
    };
}

items_from!(
    i64 => |n| Item::Int(n),
    i32 => |n| Item::Int(n.into()),
    f64 => |x| Item::Float(x),
    bool => |b| Item::Bool(b),
    String => |s| Item::Str(s),
    &str => |s| Item::Str(s.to_string()),
    Vec<u8> => |b| Item::Bytes(b),
    &[u8] => |b| Item::Bytes(b.to_vec()),
    () => |_unit| Item::None,
);

/// A fixed-length list in one shared memory block (Python's `ShareableList`). Each item keeps
/// the slot it was made with: a later value may change kind, but not outgrow it.
/// Serialises as the block's name: decoding attaches.
///
/// # Examples
///
/// ```
/// use multiproc::managers::{Item, ShareableList};
///
/// # fn main() -> multiproc::Result<()> {
/// let list = ShareableList::create(None, [Item::from(1), "howdy".into(), 2.5.into()])?;
/// let other = ShareableList::attach(list.name())?;
/// other.set(0, 42)?;
/// assert_eq!(list.get(0)?, Item::Int(42));
/// assert_eq!(list.len(), 3);
/// assert!(list.set(1, "a string longer than its slot").is_err());
/// list.shm().unlink()?;
/// # Ok(())
/// # }
/// ```
pub struct ShareableList {
    shm: SharedMemory,
    /// Each item's slot: where it starts, how long it is. Fixed at creation, read once here.
    slots: Vec<(usize, usize)>,
}

impl ShareableList {
    /// A new list of `items` in a new block named `name`, or a random name (Python's
    /// `ShareableList(sequence, name=name)`).
    ///
    /// # Errors
    ///
    /// As [`SharedMemory::create`].
    pub fn create(
        name: Option<&str>,
        items: impl IntoIterator<Item = Item>,
    ) -> Result<ShareableList, ShmError> {
        let items: Vec<Item> = items.into_iter().collect();
        let mut at = HEADER + DESCRIPTOR * items.len();
        let mut slots = Vec::with_capacity(items.len());
        for item in &items {
            slots.push((at, item.slot()));
            at += item.slot();
        }
        let shm = SharedMemory::create(name, at)?;
        let mut header = MAGIC.to_le_bytes().to_vec();
        header.extend((items.len() as u64).to_le_bytes());
        shm.write_at(0, &header)?;
        let list = ShareableList { shm, slots };
        for (index, item) in items.iter().enumerate() {
            let capacity = (list.slots[index].1 as u32).to_le_bytes();
            list.shm.write_at(descriptor(index) + 8, &capacity)?;
            list.set(index, item.clone())?;
        }
        Ok(list)
    }

    /// Attaches the list in the block `name` (Python's `ShareableList(name=name)`).
    ///
    /// # Errors
    ///
    /// As [`SharedMemory::attach`]; [`ShmError::NotAShareableList`] if the block does not
    /// hold one.
    pub fn attach(name: &str) -> Result<ShareableList, ShmError> {
        let shm = SharedMemory::attach(name)?;
        let invalid = |reason: &str| ShmError::NotAShareableList {
            name: name.to_string(),
            reason: reason.to_string(),
        };
        let mut header = [0; HEADER];
        shm.read_at(0, &mut header)
            .map_err(|_| invalid("too small"))?;
        let [magic, count] = [&header[..8], &header[8..]]
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
        if magic != MAGIC {
            return Err(invalid("no ShareableList header"));
        }
        let room = (shm.size() - HEADER) / DESCRIPTOR;
        let count = usize::try_from(count)
            .ok()
            .filter(|&count| count <= room)
            .ok_or_else(|| invalid("more items than fit"))?;
        let mut at = HEADER + DESCRIPTOR * count;
        let mut slots = Vec::with_capacity(count);
        for index in 0..count {
            let mut capacity = [0; 4];
            shm.read_at(descriptor(index) + 8, &mut capacity)?;
            let capacity = u32::from_le_bytes(capacity) as usize;
            if at.checked_add(capacity).is_none_or(|end| end > shm.size()) {
                return Err(invalid("a slot past the end of the block"));
            }
            slots.push((at, capacity));
            at += capacity;
        }
        Ok(ShareableList { shm, slots })
    }

    /// The number of items, fixed (Python's `len(sl)`).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the list has no items.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The block's name (Python's `sl.shm.name`).
    pub fn name(&self) -> &str {
        self.shm.name()
    }

    /// The block (Python's `sl.shm`): unlink it through this once done.
    pub fn shm(&self) -> &SharedMemory {
        &self.shm
    }

    /// Item `index` (Python's `sl[index]`).
    ///
    /// # Errors
    ///
    /// [`ShmError::IndexOutOfRange`]; [`ShmError::NotAShareableList`] for an item torn by
    /// racing writers.
    pub fn get(&self, index: usize) -> Result<Item, ShmError> {
        let (at, capacity) = self.slot(index)?;
        let mut head = [0; 8];
        self.shm.read_at(descriptor(index), &mut head)?;
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let torn = |reason: String| ShmError::NotAShareableList {
            name: self.name().to_string(),
            reason: format!("item {index}: {reason}"),
        };
        if len > capacity {
            return Err(torn(format!("{len} bytes in a slot of {capacity}")));
        }
        let mut bytes = vec![0; len];
        self.shm.read_at(at, &mut bytes)?;
        Item::decode(head[0], bytes).map_err(torn)
    }

    /// Sets item `index` to `value` (Python's `sl[index] = value`).
    ///
    /// # Errors
    ///
    /// [`ShmError::IndexOutOfRange`]; [`ShmError::ItemTooLarge`] for a value that does not
    /// fit the item's slot.
    pub fn set(&self, index: usize, value: impl Into<Item>) -> Result<(), ShmError> {
        let value = value.into();
        let (at, capacity) = self.slot(index)?;
        let bytes = value.encode();
        if bytes.len() > capacity {
            let len = bytes.len();
            return Err(ShmError::ItemTooLarge {
                index,
                capacity,
                len,
            });
        }
        self.shm.write_at(at, &bytes)?;
        let mut head = [value.kind(), 0, 0, 0, 0, 0, 0, 0];
        head[4..].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.shm.write_at(descriptor(index), &head)
    }

    /// Every item, in order (Python's `list(sl)`).
    ///
    /// # Errors
    ///
    /// As [`get`](ShareableList::get).
    pub fn to_vec(&self) -> Result<Vec<Item>, ShmError> {
        (0..self.len()).map(|index| self.get(index)).collect()
    }

    fn slot(&self, index: usize) -> Result<(usize, usize), ShmError> {
        let len = self.len();
        self.slots
            .get(index)
            .copied()
            .ok_or(ShmError::IndexOutOfRange { index, len })
    }
}

/// Where item `index`'s descriptor starts.
fn descriptor(index: usize) -> usize {
    HEADER + DESCRIPTOR * index
}

impl std::fmt::Debug for ShareableList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareableList")
            .field("name", &self.name())
            .field("len", &self.len())
            .finish()
    }
}

impl Serialize for ShareableList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.shm.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ShareableList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        ShareableList::attach(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_blocks_are_refused_and_torn_items_are_errors() {
        let shm = SharedMemory::create(None, 64).unwrap();
        assert!(matches!(
            ShareableList::attach(shm.name()),
            Err(ShmError::NotAShareableList { .. })
        ));
        let mut header = MAGIC.to_le_bytes().to_vec();
        header.extend(u64::MAX.to_le_bytes());
        shm.write_at(0, &header).unwrap();
        assert!(
            ShareableList::attach(shm.name()).is_err(),
            "count too large"
        );
        header[8..].copy_from_slice(&1u64.to_le_bytes());
        shm.write_at(0, &header).unwrap();
        shm.write_at(descriptor(0) + 8, &u32::MAX.to_le_bytes())
            .unwrap();
        assert!(ShareableList::attach(shm.name()).is_err(), "slot too large");
        shm.unlink().unwrap();

        let list = ShareableList::create(None, [Item::from("abc")]).unwrap();
        list.shm()
            .write_at(descriptor(0), &[4, 0, 0, 0, 200, 0, 0, 0])
            .unwrap();
        assert!(matches!(
            list.get(0),
            Err(ShmError::NotAShareableList { .. })
        ));
        list.shm()
            .write_at(descriptor(0), &[4, 0, 0, 0, 2, 0, 0, 0])
            .unwrap();
        list.shm()
            .write_at(HEADER + DESCRIPTOR, &[0xff, 0xfe])
            .unwrap();
        assert!(list.get(0).is_err(), "not UTF-8");
        list.shm()
            .write_at(descriptor(0), &[9, 0, 0, 0, 0, 0, 0, 0])
            .unwrap();
        assert!(list.get(0).is_err(), "unknown kind");
        list.shm().unlink().unwrap();
    }
}
