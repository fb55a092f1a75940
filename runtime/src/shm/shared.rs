//! `Shared<S>`: a state struct of atomics in a block of shared memory, reached by reference.
//!
//! The primitives and queues keep their words in such structs. A struct qualifies
//! ([`SharedState`]) if all-zero bytes are a valid value of it and every field is an atomic (or a
//! struct or array of them), so that processes may touch it at once.

use super::{Block, ShmError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// A type that may live in shared memory and be used by several processes at once.
///
/// # Safety
/// All-zero bytes must be a valid value of the type, it must hold no pointers, and every byte
/// of it must be reached through atomics only (structs and arrays of `AtomicU32`/`AtomicU64`).
pub(crate) unsafe trait SharedState: Sync + 'static {}

// SAFETY: zero is a valid atomic integer; atomics are accessed atomically by definition.
unsafe impl SharedState for AtomicU32 {}
// SAFETY: as for AtomicU32.
unsafe impl SharedState for AtomicU64 {}
// SAFETY: an array of shared states is all-zero valid and reached only through its elements.
unsafe impl<S: SharedState, const N: usize> SharedState for [S; N] {}

/// An `S` in shared memory; clones refer to the same memory.
pub(crate) struct Shared<S> {
    block: Block,
    state: PhantomData<S>,
}

impl<S: SharedState> Shared<S> {
    /// A new, zeroed `S` in shared memory.
    pub(crate) fn new() -> Result<Self, ShmError> {
        let block = Block::new(std::mem::size_of::<S>(), std::mem::align_of::<S>())?;
        Self::from_block(block)
    }

    /// The `S` at the start of `block`, if the block is large enough and aligned for it.
    fn from_block(block: Block) -> Result<Self, ShmError> {
        if block.len() < std::mem::size_of::<S>() {
            return Err(ShmError::BadSize(block.len()));
        }
        if block.as_ptr() as usize % std::mem::align_of::<S>() != 0 {
            return Err(ShmError::BadAlign(block.as_ptr() as usize));
        }
        Ok(Shared {
            block,
            state: PhantomData,
        })
    }
}

impl<S: SharedState> Deref for Shared<S> {
    type Target = S;

    #[inline]
    fn deref(&self) -> &S {
        // SAFETY: `from_block` checked size and alignment; the block starts zeroed, which is a
        // valid `S` (SharedState), and is only ever changed through S's atomics; the block keeps
        // the mapping alive as long as `self`.
        unsafe { &*self.block.as_ptr().cast::<S>() }
    }
}

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Shared {
            block: self.block.clone(),
            state: PhantomData,
        }
    }
}

impl<S> std::fmt::Debug for Shared<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Shared").field(&self.block.as_ptr()).finish()
    }
}

impl<S> Serialize for Shared<S> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        self.block.serialize(serializer)
    }
}

impl<'de, S: SharedState> Deserialize<'de> for Shared<S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::from_block(Block::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}
