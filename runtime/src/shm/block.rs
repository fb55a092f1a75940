//! Blocks: pieces of shared segments, so that thousands of small objects share a few mappings.
//!
//! Each thread carves small blocks out of its current *arena*, a 1 MiB segment, with a bump
//! pointer; a block larger than a quarter of that gets a segment of its own. A block holds its
//! segment alive, and a segment is unmapped when its last block is dropped in this process, so
//! memory is returned a whole arena at a time (blocks are not reused one by one: the pattern of
//! `Value`s and locks made at start-up and kept, the usual one, loses nothing). The arena is
//! per thread and per process: a forked child never allocates from the arena it inherited, whose
//! free space its parent still hands out.

use super::segment::{Segment, SegmentRef};
use super::ShmError;
use crate::sys::owner;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::RefCell;
#[cfg(test)]
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::Arc;

/// Bytes in an arena segment.
const ARENA_LEN: usize = 1 << 20;
/// Blocks above this size get a segment of their own.
const LARGEST_IN_ARENA: usize = ARENA_LEN / 4;
/// Every block starts on a cache line, so that two processes' locks never share one.
const MIN_ALIGN: usize = 64;

/// The arena of one thread: a segment, how much of it is used, and the process that owns it.
struct Arena {
    pid: u32,
    segment: Arc<Segment>,
    used: usize,
}

thread_local! {
    static ARENA: RefCell<Option<Arena>> = const { RefCell::new(None) };
}

/// A zero-filled piece of shared memory, `Clone + Send + Sync`, serialisable as a reference
/// that another process maps again (what Python's `multiprocessing.heap.BufferWrapper` is to
/// its `Heap`).
#[derive(Clone, Debug)]
pub(crate) struct Block {
    segment: Arc<Segment>,
    offset: usize,
    len: usize,
}

impl Block {
    /// A new zero-filled block of `len` bytes aligned to `align` (at least 64, a power of two).
    pub(crate) fn new(len: usize, align: usize) -> Result<Block, ShmError> {
        let align = align.max(MIN_ALIGN);
        if !align.is_power_of_two() || align > 4096 {
            return Err(ShmError::BadAlign(align));
        }
        let len = len.max(1);
        if len > LARGEST_IN_ARENA {
            let segment = Segment::create(len)?;
            return Ok(Block {
                segment,
                offset: 0,
                len,
            });
        }
        ARENA.with(|slot| {
            let mut slot = slot.borrow_mut();
            let pid = owner::pid();
            let fits =
                |a: &Arena| a.pid == pid && a.used.next_multiple_of(align) + len <= ARENA_LEN;
            let mut arena = match slot.take().filter(fits) {
                Some(arena) => arena,
                None => Arena {
                    pid,
                    segment: Segment::create(ARENA_LEN)?,
                    used: 0,
                },
            };
            let offset = arena.used.next_multiple_of(align);
            arena.used = offset + len;
            let block = Block {
                segment: arena.segment.clone(),
                offset,
                len,
            };
            *slot = Some(arena);
            Ok(block)
        })
    }

    /// The block's first byte.
    #[inline]
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.segment.as_ptr().wrapping_add(self.offset)
    }

    /// The block's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bytes `offset..offset + len` of this block, as a block of their own (same memory).
    pub(crate) fn sub(&self, offset: usize, len: usize) -> Option<Block> {
        (offset.checked_add(len)? <= self.len).then(|| Block {
            segment: self.segment.clone(),
            offset: self.offset + offset,
            len,
        })
    }

    /// The 32-bit atomic at byte `offset` of the block, if it is in bounds and aligned. For
    /// tests: the crate reaches the words of its blocks through `Shared`.
    #[cfg(test)]
    pub(crate) fn atomic_u32(&self, offset: usize) -> Option<&AtomicU32> {
        self.check(offset, std::mem::size_of::<AtomicU32>())?;
        // SAFETY: in bounds and aligned (checked); shared memory is only ever accessed
        // atomically at the offsets the primitives use for their words, and the reference lives
        // no longer than `self`, which keeps the mapping.
        Some(unsafe { &*self.as_ptr().add(offset).cast::<AtomicU32>() })
    }

    /// The 64-bit atomic at byte `offset` of the block, if it is in bounds and aligned.
    #[cfg(test)]
    pub(crate) fn atomic_u64(&self, offset: usize) -> Option<&AtomicU64> {
        self.check(offset, std::mem::size_of::<AtomicU64>())?;
        // SAFETY: as in `atomic_u32`.
        Some(unsafe { &*self.as_ptr().add(offset).cast::<AtomicU64>() })
    }

    #[cfg(test)]
    fn check(&self, offset: usize, size: usize) -> Option<()> {
        let fits = offset.checked_add(size)? <= self.len;
        let aligned = (self.as_ptr() as usize + offset).is_multiple_of(size);
        (fits && aligned).then_some(())
    }
}

/// The serialised form of a [`Block`].
#[derive(Serialize, Deserialize)]
struct BlockRef {
    segment: SegmentRef,
    offset: u64,
    len: u64,
}

impl Serialize for Block {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        BlockRef {
            segment: self.segment.to_ref(),
            offset: self.offset as u64,
            len: self.len as u64,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Block {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let r = BlockRef::deserialize(deserializer)?;
        let segment = Segment::attach(&r.segment).map_err(serde::de::Error::custom)?;
        let offset = usize::try_from(r.offset).map_err(serde::de::Error::custom)?;
        let len = usize::try_from(r.len).map_err(serde::de::Error::custom)?;
        if offset
            .checked_add(len)
            .is_none_or(|end| end > segment.len())
        {
            return Err(serde::de::Error::custom(ShmError::BadSize(len)));
        }
        Ok(Block {
            segment,
            offset,
            len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn small_blocks_share_a_segment_and_do_not_overlap() {
        let a = Block::new(8, 8).unwrap();
        let b = Block::new(8, 8).unwrap();
        assert!(Arc::ptr_eq(&a.segment, &b.segment));
        assert!(a.offset + a.len <= b.offset || b.offset + b.len <= a.offset);
        assert_eq!(a.as_ptr() as usize % 64, 0);
    }

    #[test]
    fn a_large_block_has_its_own_segment() {
        let big = Block::new(LARGEST_IN_ARENA + 1, 8).unwrap();
        assert_eq!(big.offset, 0);
        assert!(big.segment.len() > LARGEST_IN_ARENA);
    }

    #[test]
    fn a_decoded_block_is_the_same_memory() {
        let block = Block::new(16, 8).unwrap();
        block.atomic_u64(8).unwrap().store(99, Ordering::SeqCst);
        let bytes = crate::wire::encode(&block).unwrap();
        let back: Block = crate::wire::decode(&bytes).unwrap();
        assert_eq!(back.atomic_u64(8).unwrap().load(Ordering::SeqCst), 99);
        assert_eq!(back.as_ptr(), block.as_ptr(), "the mapping is reused");
    }

    #[test]
    fn out_of_bounds_or_misaligned_atomics_are_refused() {
        let block = Block::new(16, 8).unwrap();
        assert!(block.atomic_u32(16).is_none());
        assert!(block.atomic_u32(2).is_none());
        assert!(block.atomic_u64(12).is_none());
    }

    #[test]
    fn a_sub_block_is_the_same_memory_within_bounds() {
        let block = Block::new(128, 64).unwrap();
        let tail = block.sub(64, 64).unwrap();
        tail.atomic_u32(0).unwrap().store(5, Ordering::SeqCst);
        assert_eq!(block.atomic_u32(64).unwrap().load(Ordering::SeqCst), 5);
        assert!(block.sub(64, 65).is_none());
        assert!(block.sub(usize::MAX, 2).is_none());
    }

    #[test]
    fn a_bad_alignment_is_an_error() {
        assert!(matches!(Block::new(8, 96), Err(ShmError::BadAlign(96))));
    }

    #[test]
    fn a_forked_child_writes_a_block_the_parent_reads() {
        let block = Block::new(64, 8).unwrap();
        let child = {
            let block = block.clone();
            crate::Process::spawn(move || {
                block.atomic_u64(0).unwrap().store(4242, Ordering::SeqCst)
            })
            .unwrap()
        };
        child.join().unwrap();
        assert_eq!(block.atomic_u64(0).unwrap().load(Ordering::SeqCst), 4242);
    }

    #[test]
    fn a_block_decoded_in_a_child_is_the_parents_memory() {
        let block = Block::new(64, 8).unwrap();
        let encoded = crate::wire::encode(&block).unwrap();
        let child = crate::Process::spawn(move || {
            let block: Block = crate::wire::decode(&encoded).unwrap();
            block.atomic_u64(8).unwrap().fetch_add(5, Ordering::SeqCst);
        })
        .unwrap();
        child.join().unwrap();
        assert_eq!(block.atomic_u64(8).unwrap().load(Ordering::SeqCst), 5);
    }
}
