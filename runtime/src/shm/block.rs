//! Blocks: pieces of shared segments, so that thousands of small objects share a few mappings.
//!
//! A small block is carved out of an arena, a 1 MiB segment (`arena.rs`); a block larger than a
//! quarter of that gets a segment of its own. A block holds its segment alive, and a segment is
//! unmapped when its last block is dropped in this process.
//!
//! **When a block's space is used again.** Dropping the last handle to a block in this process
//! gives its space back to its arena (zeroed, its whole free pages returned to the system) only
//! if no other process can still reach it. Another process reaches a block by inheriting it or
//! by decoding it, so a block is given back only if it was carved by this process, was never
//! serialised (sent through a queue or a pipe, or passed as a task's argument), and this process
//! has not forked since it was carved (a child may hold it, in a static or in what its closure
//! captured, for as long as it lives). Any other block keeps its bytes until its arena is
//! unmapped in every process that maps it, as before: what a block alive across a fork or sent
//! elsewhere costs is its arena, shared with its neighbours. A decoded block, and a block with a
//! segment of its own, is never given back: its memory goes with its segment.

use super::arena::{self, Arena};
use super::segment::{Segment, SegmentRef};
use super::ShmError;
use crate::sys::owner;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(test)]
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::Arc;

/// Blocks above this size get a segment of their own.
const LARGEST_IN_ARENA: usize = arena::ARENA_LEN / 4;
/// Every block starts on a cache line, so that two processes' locks never share one, and
/// covers whole cache lines, so that no free range is too small to use.
const MIN_ALIGN: usize = 64;

/// A zero-filled piece of shared memory, `Clone + Send + Sync`, serialisable as a reference
/// that another process maps again (what Python's `multiprocessing.heap.BufferWrapper` is to
/// its `Heap`).
#[derive(Clone, Debug)]
pub(crate) struct Block {
    memory: Arc<Memory>,
    offset: usize,
    len: usize,
}

/// What the handles of one block (and of its sub-blocks) share: its segment, and where its
/// space goes back to when the last of them drops.
struct Memory {
    segment: Arc<Segment>,
    carved: Option<Carved>,
}

/// A block carved out of an arena by this process.
struct Carved {
    arena: Arc<Arena>,
    offset: usize,
    len: usize,
    /// The fork stamp when it was carved (`None`: forks could not be counted then).
    stamp: Option<u64>,
    /// Whether the block was serialised, so that another process may reach it.
    sent: AtomicBool,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("segment", &self.segment)
            .field("carved", &self.carved.is_some())
            .finish()
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        let Some(carved) = &self.carved else { return };
        let unreachable = carved.arena.is_ours()
            && !carved.sent.load(Ordering::Relaxed)
            && carved.stamp.is_some()
            && owner::fork_stamp() == carved.stamp;
        if unreachable {
            // SAFETY: this process carved the range, and nothing can reach it any more: this
            // was the last handle in this process (clones and sub-blocks share `Memory`), no
            // other process was ever given a reference (never serialised), and none inherited
            // one (no fork since the range was carved: the stamp is unchanged).
            unsafe { carved.arena.give_back(carved.offset, carved.len) };
        }
    }
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
            let memory = Memory {
                segment: Segment::create(len)?,
                carved: None,
            };
            return Ok(Block {
                memory: Arc::new(memory),
                offset: 0,
                len,
            });
        }
        let stamp = owner::fork_stamp();
        let room = len.next_multiple_of(MIN_ALIGN);
        let (arena, offset) = arena::carve(room, align)?;
        let memory = Memory {
            segment: arena.segment().clone(),
            carved: Some(Carved {
                arena,
                offset,
                len: room,
                stamp,
                sent: AtomicBool::new(false),
            }),
        };
        Ok(Block {
            memory: Arc::new(memory),
            offset,
            len,
        })
    }

    /// The block's first byte.
    #[inline]
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.memory.segment.as_ptr().wrapping_add(self.offset)
    }

    /// The block's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bytes `offset..offset + len` of this block, as a block of their own (same memory).
    pub(crate) fn sub(&self, offset: usize, len: usize) -> Option<Block> {
        (offset.checked_add(len)? <= self.len).then(|| Block {
            memory: self.memory.clone(),
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
        crate::sys::transfer::local_only::<S::Error>("a handle to shared memory")?;
        if let Some(carved) = &self.memory.carved {
            carved.sent.store(true, Ordering::Relaxed);
        }
        BlockRef {
            segment: self
                .memory
                .segment
                .to_ref()
                .map_err(serde::ser::Error::custom)?,
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
            memory: Arc::new(Memory {
                segment,
                carved: None,
            }),
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
        assert!(Arc::ptr_eq(&a.memory.segment, &b.memory.segment));
        assert!(a.offset + a.len <= b.offset || b.offset + b.len <= a.offset);
        assert_eq!(a.as_ptr() as usize % 64, 0);
    }

    #[test]
    fn a_large_block_has_its_own_segment() {
        let big = Block::new(LARGEST_IN_ARENA + 1, 8).unwrap();
        assert_eq!(big.offset, 0);
        assert!(big.memory.segment.len() > LARGEST_IN_ARENA);
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
    fn a_dropped_block_is_used_again_and_reads_as_zero() {
        // Other tests fork and allocate meanwhile: a round where a fork intervened, or where
        // another thread took the space, proves nothing, and is tried again.
        for _ in 0..100 {
            let stamp = owner::fork_stamp();
            let first = Block::new(100, 8).unwrap();
            let at = first.as_ptr();
            first
                .atomic_u64(64)
                .unwrap()
                .store(u64::MAX, Ordering::SeqCst);
            drop(first);
            let second = Block::new(100, 8).unwrap();
            if stamp.is_some() && owner::fork_stamp() == stamp && second.as_ptr() == at {
                assert_eq!(second.atomic_u64(64).unwrap().load(Ordering::SeqCst), 0);
                return;
            }
        }
        panic!("a dropped block's space was never used again");
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
            crate::Process::fork(move || block.atomic_u64(0).unwrap().store(4242, Ordering::SeqCst))
                .unwrap()
        };
        child.join().unwrap();
        assert_eq!(block.atomic_u64(0).unwrap().load(Ordering::SeqCst), 4242);
    }

    #[test]
    fn a_block_decoded_in_a_child_is_the_parents_memory() {
        let block = Block::new(64, 8).unwrap();
        let encoded = crate::wire::encode(&block).unwrap();
        let child = crate::Process::fork(move || {
            let block: Block = crate::wire::decode(&encoded).unwrap();
            block.atomic_u64(8).unwrap().fetch_add(5, Ordering::SeqCst);
        })
        .unwrap();
        child.join().unwrap();
        assert_eq!(block.atomic_u64(8).unwrap().load(Ordering::SeqCst), 5);
    }
}
