//! The shared-memory ring under every queue: frames of bytes in a shared block, a producer side
//! and a consumer side, each with its own lock, and futex wake-ups.
//!
//! **Layout.** The data block is [`RING_BYTES`] of sparse shared memory (pages cost memory only
//! once touched). A frame is a `u64` length and the payload, stored contiguously; a frame that
//! would not fit before the end, or would pass [`WRAP_AFTER`] while the start is free, is put at
//! offset 0 behind a [`SKIP`] marker, so a steady stream reuses the same hot pages.
//!
//! **Commit words.** The producer side's state is one 64-bit word, `tail`: the number of frames
//! ever put (low half, wrapping) and the offset where the next frame goes (high half); the
//! consumer side's, `head`, holds frames ever taken and the next frame's offset. A put writes
//! its frame in free space and then publishes it with one store to `tail`; a get reads the
//! frame and then releases it with one store to `head`. A process killed at any instruction
//! therefore leaves either the old or the new state, never half of one: a frame half-written is
//! beyond `tail` and overwritten by the next put; a frame half-read is still before `head` and
//! goes to the next getter. The side locks are the futex layer's owner words, which the next
//! acquirer takes over from a dead holder.
//!
//! **Wake-ups.** A getter with nothing to take sleeps on the low half of `tail` (it changes with
//! every put), a putter without room on the low half of `head`, a joiner on `done`; each side
//! makes the wake system call only when a sleeper has announced itself.

use crate::shm::{Block, Shared, SharedState, ShmError};
use crate::sync::{futex, owner, raw};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

/// Bytes of shared memory under each queue: the most it holds at once, in encoded items (plus 8
/// bytes each); a put waits while it is full. The memory is sparse: it costs only what is used.
pub const RING_BYTES: usize = 1 << 30;
/// Offset after which a put goes back to the start of the block if the start is free.
const WRAP_AFTER: usize = 16 << 20;
/// A frame length that means "the next frame is at offset 0".
const SKIP: u64 = u64::MAX;
/// Bytes of a frame header (and of a skip marker).
const HEADER: usize = 8;
/// Checks of the other side before a waiter goes to sleep.
const SPINS: u32 = 200;

/// The words of a ring, in shared memory. Each side's words share a cache line of their own.
#[repr(C)]
pub(crate) struct RingState {
    put_lock: AtomicU64,
    tail: AtomicU64,
    putters_waiting: AtomicU32,
    _put_pad: [AtomicU32; 11],
    get_lock: AtomicU64,
    head: AtomicU64,
    getters_waiting: AtomicU32,
    _get_pad: [AtomicU32; 11],
    done: AtomicU64,
    joiners_waiting: AtomicU32,
}

// SAFETY: every field is an atomic integer or an array of them, and all-zero is the state of an
// empty ring: no frames, offsets 0, locks free, nobody waiting.
unsafe impl SharedState for RingState {}

/// A count (low half) and an offset (high half) in one word.
fn unpack(word: u64) -> (u32, usize) {
    (word as u32, (word >> 32) as usize)
}

fn pack(count: u32, offset: usize) -> u64 {
    u64::from(count) | ((offset as u64) << 32)
}

/// Why a put did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// No room (or the queue is at its maximum size) until the deadline.
    Full,
    /// The frame can never fit in the ring.
    TooLarge,
}

/// Why a get did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PopError {
    /// Nothing to take until the deadline.
    Empty,
    /// The ring holds a frame header that cannot be right (memory written by something else).
    Corrupt,
}

/// A handle to a ring; clones and deserialised copies share it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Ring {
    state: Shared<RingState>,
    data: Block,
    /// Python's `maxsize`: the most frames at once; 0 for no limit but the bytes.
    maxsize: u32,
}

impl Ring {
    pub(crate) fn new(maxsize: u32) -> Result<Ring, ShmError> {
        Ok(Ring {
            state: Shared::new()?,
            data: Block::new(RING_BYTES, 4096)?,
            maxsize,
        })
    }

    /// Frames in the ring now (Python's `qsize()`), counting a put or get under way as not done.
    pub(crate) fn len(&self) -> usize {
        let (gets, _) = unpack(self.state.head.load(Ordering::Acquire));
        let (puts, _) = unpack(self.state.tail.load(Ordering::Acquire));
        puts.wrapping_sub(gets) as usize
    }

    pub(crate) fn maxsize(&self) -> usize {
        self.maxsize as usize
    }

    /// Puts `payload` as one frame, waiting for the put lock until `lock_deadline` and then for
    /// room until `deadline` (`None`: no limit).
    pub(crate) fn push(
        &self,
        payload: &[u8],
        lock_deadline: Option<Instant>,
        deadline: Option<Instant>,
    ) -> Result<(), PushError> {
        let need = HEADER + payload.len();
        if need > self.data.len() - 2 * HEADER {
            return Err(PushError::TooLarge);
        }
        let state = &*self.state;
        if raw::acquire(&state.put_lock, owner::process(), lock_deadline) == raw::Acquired::No {
            return Err(PushError::Full);
        }
        let result = self.push_locked(payload, need, deadline);
        raw::release(&state.put_lock);
        result
    }

    fn push_locked(
        &self,
        payload: &[u8],
        need: usize,
        deadline: Option<Instant>,
    ) -> Result<(), PushError> {
        let state = &*self.state;
        loop {
            let (puts, tail) = unpack(state.tail.load(Ordering::Relaxed));
            let head_word = state.head.load(Ordering::Acquire);
            let (gets, head) = unpack(head_word);
            let count = puts.wrapping_sub(gets);
            let room = self.maxsize == 0 || count < self.maxsize;
            if let Some(at) = room
                .then(|| self.place(tail, head, count == 0, need))
                .flatten()
            {
                if at != tail {
                    self.write(tail, &SKIP.to_le_bytes());
                }
                self.write(at, &(payload.len() as u64).to_le_bytes());
                self.write(at + HEADER, payload);
                state
                    .tail
                    .store(pack(puts.wrapping_add(1), at + need), Ordering::SeqCst);
                if state.getters_waiting.load(Ordering::SeqCst) > 0 {
                    futex::wake_low_half(&state.tail, 1);
                }
                return Ok(());
            }
            if !wait_for_change(&state.head, head_word, &state.putters_waiting, deadline) {
                return Err(PushError::Full);
            }
        }
    }

    /// Where a frame of `need` bytes goes, given the two offsets; `None` if there is no room.
    /// A place other than `tail` means a skip marker at `tail` and the frame at 0.
    fn place(&self, tail: usize, head: usize, empty: bool, need: usize) -> Option<usize> {
        let end = self.data.len() - HEADER;
        if empty && need <= tail {
            // Nothing is left to read, so the start is free: go back to the hot pages. The
            // frame must end before the skip marker at `tail`.
            return Some(0);
        }
        if tail < head {
            // Wrapped: the free space is between the two, and must stay non-empty.
            return (tail + need < head).then_some(tail);
        }
        if tail + need <= WRAP_AFTER.min(end) {
            Some(tail)
        } else if need < head {
            Some(0)
        } else {
            (tail + need <= end).then_some(tail)
        }
    }

    /// Copies `bytes` into the data block at `offset`.
    fn write(&self, offset: usize, bytes: &[u8]) {
        debug_assert!(offset + bytes.len() <= self.data.len());
        // SAFETY: `place` only returns offsets where the whole frame (and a marker before the
        // end) lies inside the block; the bytes there are free space, which no other process
        // reads until the store to `tail` that follows publishes them, and which no other
        // putter writes, since the caller holds the put lock.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.data.as_ptr().add(offset),
                bytes.len(),
            )
        };
    }

    /// Takes the next frame and passes its payload to `take`, waiting for the get lock until
    /// `lock_deadline` and then for a frame until `deadline`.
    pub(crate) fn pop<R>(
        &self,
        lock_deadline: Option<Instant>,
        deadline: Option<Instant>,
        take: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, PopError> {
        let state = &*self.state;
        if raw::acquire(&state.get_lock, owner::process(), lock_deadline) == raw::Acquired::No {
            return Err(PopError::Empty);
        }
        let result = self.pop_locked(deadline, take);
        raw::release(&state.get_lock);
        result
    }

    fn pop_locked<R>(
        &self,
        deadline: Option<Instant>,
        take: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, PopError> {
        let state = &*self.state;
        loop {
            let (gets, head) = unpack(state.head.load(Ordering::Relaxed));
            let tail_word = state.tail.load(Ordering::Acquire);
            let (puts, _) = unpack(tail_word);
            if puts != gets {
                let (at, len) = match self.read_len(head)? {
                    SKIP => (0, self.read_len(0)?),
                    len => (head, len),
                };
                let payload = self.frame(at, len)?;
                let result = take(payload);
                let next = pack(gets.wrapping_add(1), at + HEADER + payload.len());
                state.head.store(next, Ordering::SeqCst);
                if state.putters_waiting.load(Ordering::SeqCst) > 0 {
                    futex::wake_low_half(&state.head, 1);
                }
                return Ok(result);
            }
            if !wait_for_change(&state.tail, tail_word, &state.getters_waiting, deadline) {
                return Err(PopError::Empty);
            }
        }
    }

    fn read_len(&self, offset: usize) -> Result<u64, PopError> {
        let mut len = [0u8; HEADER];
        len.copy_from_slice(self.bytes(offset, HEADER)?);
        Ok(u64::from_le_bytes(len))
    }

    /// The `len` payload bytes of the frame whose header is at `offset`.
    fn frame(&self, offset: usize, len: u64) -> Result<&[u8], PopError> {
        let len = usize::try_from(len).map_err(|_| PopError::Corrupt)?;
        self.bytes(offset + HEADER, len)
    }

    /// `len` bytes of a published frame from `start`.
    fn bytes(&self, start: usize, len: usize) -> Result<&[u8], PopError> {
        if start
            .checked_add(len)
            .is_none_or(|end| end > self.data.len())
        {
            return Err(PopError::Corrupt);
        }
        // SAFETY: the range is inside the block (checked). It is part of a published frame
        // (before `tail`, read with Acquire), which no putter writes until this getter's store
        // to `head` frees it, and no other getter reads, since the caller holds the get lock.
        Ok(unsafe { std::slice::from_raw_parts(self.data.as_ptr().add(start), len) })
    }

    /// Python's `task_done()`: one more put item is finished. `false` if every put item was
    /// already marked done.
    pub(crate) fn task_done(&self) -> bool {
        let state = &*self.state;
        loop {
            let done = state.done.load(Ordering::Acquire);
            let (puts, _) = unpack(state.tail.load(Ordering::Acquire));
            if done as u32 == puts {
                return false;
            }
            let next = u64::from((done as u32).wrapping_add(1));
            if state
                .done
                .compare_exchange(done, next, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                if next as u32 == puts && state.joiners_waiting.load(Ordering::SeqCst) > 0 {
                    futex::wake_low_half(&state.done, u32::MAX);
                }
                return true;
            }
        }
    }

    /// Python's `join()`: waits until every item put has been marked done, or until
    /// `deadline`; whether they all have.
    pub(crate) fn join(&self, deadline: Option<Instant>) -> bool {
        let state = &*self.state;
        loop {
            let done = state.done.load(Ordering::Acquire);
            let (puts, _) = unpack(state.tail.load(Ordering::Acquire));
            if done as u32 == puts {
                return true;
            }
            if !wait_for_change(&state.done, done, &state.joiners_waiting, deadline) {
                return false;
            }
        }
    }
}

/// Waits until `word` no longer holds `seen`, or until `deadline`; whether it changed (or may
/// have: the caller re-checks). Spins briefly first, then sleeps on the word's low half,
/// announced in `waiting` so that the other side knows to wake it.
fn wait_for_change(
    word: &AtomicU64,
    seen: u64,
    waiting: &AtomicU32,
    deadline: Option<Instant>,
) -> bool {
    for _ in 0..SPINS {
        std::hint::spin_loop();
        if word.load(Ordering::Relaxed) != seen {
            return true;
        }
    }
    waiting.fetch_add(1, Ordering::SeqCst);
    let result = if word.load(Ordering::SeqCst) != seen {
        futex::Wake::Woken
    } else {
        futex::wait_low_half(word, seen as u32, deadline)
    };
    waiting.fetch_sub(1, Ordering::SeqCst);
    result == futex::Wake::Woken || word.load(Ordering::Relaxed) != seen
}
