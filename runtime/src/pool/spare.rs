//! Buffers for the packed arguments of chunks, kept for reuse: the chunks of a pool's next map
//! are packed into the pages of its last one rather than into fresh memory, which costs a page
//! fault per 4 KiB the first time it is written.

use crate::util::lock;
use std::sync::Mutex;

/// The most bytes of buffers kept.
const MAX_KEPT: usize = 4 << 20;

/// A pool's spare argument buffers, most recently returned first.
#[derive(Default)]
pub(crate) struct Spare {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    buffers: Vec<Vec<u8>>,
    bytes: usize,
}

impl Spare {
    /// An empty buffer: a spare one if there is one.
    pub(crate) fn take(&self) -> Vec<u8> {
        let mut kept = lock(&self.kept);
        let buffer = kept.buffers.pop().unwrap_or_default();
        kept.bytes -= buffer.capacity();
        buffer
    }

    /// Keeps `buffer` for a later chunk, unless that would keep too much.
    pub(crate) fn give(&self, mut buffer: Vec<u8>) {
        let mut kept = lock(&self.kept);
        if buffer.capacity() == 0 || kept.bytes + buffer.capacity() > MAX_KEPT {
            return;
        }
        buffer.clear();
        kept.bytes += buffer.capacity();
        kept.buffers.push(buffer);
    }

    /// How many buffers are kept.
    #[cfg(test)]
    pub(crate) fn count(&self) -> usize {
        lock(&self.kept).buffers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_empty_with_their_room_up_to_a_bound() {
        let spare = Spare::default();
        assert_eq!(spare.take().capacity(), 0);
        spare.give(vec![7u8; 1000]);
        let again = spare.take();
        assert!(again.is_empty() && again.capacity() >= 1000);
        assert_eq!(spare.take().capacity(), 0);
        spare.give(Vec::with_capacity(MAX_KEPT));
        spare.give(Vec::with_capacity(10));
        assert_eq!(spare.take().capacity(), MAX_KEPT);
        assert_eq!(spare.take().capacity(), 0);
    }
}
