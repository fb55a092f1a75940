//! Arenas: 1 MiB segments that small blocks are carved out of, and their free space.
//!
//! Each thread carves blocks out of its *current* arena; an arena keeps its free ranges
//! (coalesced, by offset) and hands out the first that fits, so a block given back is used
//! again. Free bytes are always zero: a block given back is zeroed, and each whole page of
//! free space it completes is returned to the system (`MADV_REMOVE`, which punches a hole in the
//! memfd, so the page costs no memory until it is used again). Arenas that got space back are
//! listed process-wide, so a thread whose current arena is full looks there before it makes a
//! new one. An arena unmaps when no block of it is left in this process and no thread has it as
//! its current one.
//!
//! Only the process that made an arena carves it: a forked child, which inherits its parent's
//! arenas and current ones, makes its own. Which blocks may be given back is `block.rs`'s rule.

use super::segment::Segment;
use super::ShmError;
use crate::sys::fork_safe::ForkSafeLock;
use crate::sys::owner;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

/// Bytes in an arena segment.
pub(super) const ARENA_LEN: usize = 1 << 20;

/// A segment that small blocks are carved out of, by one process.
pub(super) struct Arena {
    segment: Arc<Segment>,
    pid: u32,
    space: Mutex<Space>,
}

/// The free ranges of an arena, and whether it is in the process-wide list of arenas with
/// space given back.
struct Space {
    free: BTreeMap<usize, usize>,
    listed: bool,
}

/// The arenas of this process that got space back since a thread last looked at them.
#[derive(Default)]
struct Returned {
    pid: u32,
    arenas: Vec<Weak<Arena>>,
}

static RETURNED: ForkSafeLock<Returned> = ForkSafeLock::new(Returned {
    pid: 0,
    arenas: Vec::new(),
});

thread_local! {
    static CURRENT: RefCell<Option<Arc<Arena>>> = const { RefCell::new(None) };
}

/// Carves `len` bytes aligned to `align` (a power of two, at most a page) out of an arena of
/// this process: the arena and the offset in its segment. `len` and `align` are multiples of
/// the allocator's granule, so that no free range is too small to use.
pub(super) fn carve(len: usize, align: usize) -> Result<(Arc<Arena>, usize), ShmError> {
    let me = owner::pid();
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        if let Some(arena) = current.as_ref().filter(|a| a.pid == me) {
            if let Some(offset) = arena.take(len, align) {
                return Ok((arena.clone(), offset));
            }
        }
        let (arena, offset) = match from_returned(me, len, align) {
            Some(found) => found,
            None => {
                let arena = Arc::new(Arena {
                    segment: Segment::create(ARENA_LEN)?,
                    pid: me,
                    space: Mutex::new(Space::fresh(ARENA_LEN)),
                });
                let offset = arena.take(len, align).ok_or(ShmError::BadSize(len))?;
                (arena, offset)
            }
        };
        *current = Some(arena.clone());
        Ok((arena, offset))
    })
}

/// The first arena with space given back that fits the request, and the offset carved in it.
/// Arenas looked at leave the list (the one that fits becomes the caller's current one); the
/// next block given back to one lists it again.
fn from_returned(me: u32, len: usize, align: usize) -> Option<(Arc<Arena>, usize)> {
    RETURNED.with(|returned| {
        if returned.pid != me {
            *returned = Returned {
                pid: me,
                arenas: Vec::new(),
            };
        }
        while let Some(weak) = returned.arenas.pop() {
            let Some(arena) = weak.upgrade().filter(|a| a.pid == me) else {
                continue;
            };
            if let Some(offset) = arena.take_unlisting(len, align) {
                return Some((arena, offset));
            }
        }
        None
    })
}

impl Arena {
    /// The arena's segment.
    pub(super) fn segment(&self) -> &Arc<Segment> {
        &self.segment
    }

    /// Whether this process carves the arena.
    pub(super) fn is_ours(&self) -> bool {
        self.pid == owner::pid()
    }

    fn take(&self, len: usize, align: usize) -> Option<usize> {
        crate::util::lock(&self.space).take(len, align)
    }

    fn take_unlisting(&self, len: usize, align: usize) -> Option<usize> {
        let mut space = crate::util::lock(&self.space);
        space.listed = false;
        space.take(len, align)
    }

    /// Gives `offset..offset + len` back: zeroes it, returns the whole pages of free space it
    /// completes to the system, and lists the arena so that other threads find the space.
    ///
    /// # Safety
    /// The range was carved out of this arena by this process, and nothing can reach it any
    /// more: no handle in this process and none in any other.
    pub(super) unsafe fn give_back(self: &Arc<Arena>, offset: usize, len: usize) {
        let list = {
            let mut space = crate::util::lock(&self.space);
            let (start, end) = space.give(offset, len);
            // SAFETY: the range and the free space around it lie in the segment, and nothing
            // can reach them (the caller's promise for the range; free space is handed out only
            // under this lock, which we hold).
            unsafe { self.zero(offset..offset + len, start..end) };
            !std::mem::replace(&mut space.listed, true)
        };
        if list {
            RETURNED.with(|returned| {
                if returned.pid == self.pid {
                    if returned.arenas.len() == returned.arenas.capacity() {
                        returned.arenas.retain(|w| w.strong_count() > 0);
                    }
                    returned.arenas.push(Arc::downgrade(self));
                }
            });
        }
    }

    /// Zeroes `range`, which lies in the free range `free`: the whole pages of `free` that it
    /// touches are removed (they read as zero and cost no memory until touched again), the rest
    /// of it is written with zeros.
    ///
    /// # Safety
    /// `free` lies in the segment and nothing can reach it.
    unsafe fn zero(&self, range: std::ops::Range<usize>, free: std::ops::Range<usize>) {
        let page = crate::sys::mem::page_size();
        let lo = free
            .start
            .next_multiple_of(page)
            .max(range.start / page * page);
        let hi = (free.end / page * page).min(range.end.next_multiple_of(page));
        let base = self.segment.as_ptr();
        let removed = lo < hi && {
            // SAFETY: `lo..hi` is whole pages of the mapping (its base is page-aligned) inside
            // `free`, which nothing reaches; MADV_REMOVE frees them and they read as zero.
            let done = unsafe { libc::madvise(base.add(lo).cast(), hi - lo, libc::MADV_REMOVE) };
            done == 0
        };
        let (lo, hi) = if removed {
            (lo, hi)
        } else {
            (range.end, range.end)
        };
        for part in [
            range.start..lo.min(range.end),
            hi.max(range.start)..range.end,
        ] {
            if !part.is_empty() {
                // SAFETY: `part` lies in `range`, inside the segment, which nothing reaches.
                unsafe { base.add(part.start).write_bytes(0, part.len()) };
            }
        }
    }
}

impl Space {
    fn fresh(len: usize) -> Space {
        Space {
            free: BTreeMap::from([(0, len)]),
            listed: false,
        }
    }

    /// Takes the first free range that holds `len` bytes aligned to `align`; their offset.
    fn take(&mut self, len: usize, align: usize) -> Option<usize> {
        let (start, end, at) = self.free.iter().find_map(|(&start, &size)| {
            let at = start.next_multiple_of(align);
            (at + len <= start + size).then_some((start, start + size, at))
        })?;
        self.free.remove(&start);
        if at > start {
            self.free.insert(start, at - start);
        }
        if at + len < end {
            self.free.insert(at + len, end - at - len);
        }
        Some(at)
    }

    /// Gives `offset..offset + len` back, merged with its free neighbours; the free range it is
    /// now part of.
    fn give(&mut self, offset: usize, len: usize) -> (usize, usize) {
        let mut start = offset;
        let mut end = offset + len;
        if let Some((&before, &size)) = self.free.range(..offset).next_back() {
            if before + size == offset {
                start = before;
            }
        }
        if let Some(size) = self.free.remove(&end) {
            end += size;
        }
        self.free.insert(start, end - start);
        (start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_is_taken_first_fit_and_merged_when_given_back() {
        let mut space = Space::fresh(1024);
        assert_eq!(space.take(64, 64), Some(0));
        assert_eq!(space.take(128, 64), Some(64));
        assert_eq!(space.take(64, 256), Some(256));
        assert_eq!(
            space.give(64, 128),
            (64, 256),
            "merged with the padding after it"
        );
        assert_eq!(space.take(64, 64), Some(64), "the first hole is used again");
        assert_eq!(space.give(0, 64), (0, 64));
        assert_eq!(space.give(64, 64), (0, 256));
        assert_eq!(space.give(256, 64), (0, 1024));
        assert_eq!(space.free.len(), 1);
        assert_eq!(space.take(1024, 64), Some(0));
        assert_eq!(space.take(64, 64), None);
    }
}
