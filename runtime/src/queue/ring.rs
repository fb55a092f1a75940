//! The shared-memory ring under every queue: frames of bytes in a shared block, a producer side
//! and a consumer side, each with its own lock, and futex wake-ups.
//!
//! **Layout.** The data block is [`RING_BYTES`] of sparse shared memory (pages cost memory only
//! once touched). A frame is a `u64` length and the payload, stored contiguously; a frame is put
//! at offset 0, behind a [`SKIP`] marker, when it would not fit before the end, and also
//! whenever the ring is empty, so that a stream the getters keep up with reuses the same hot
//! pages. Once wrapped, frames fill the space before the getters' offset, and past that jump
//! (behind another marker) to the space after the wrap marker, where nothing lies: a stalled
//! getter never blocks the putters before the ring is full.
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
use crate::sync::raw;
use crate::sys::backoff::{watch, Patience};
use crate::sys::{futex, owner};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Bytes of shared memory under each queue: the most it holds at once, in encoded items (plus 8
/// bytes each); a put waits while it is full. The memory is sparse: it costs only what is used.
pub const RING_BYTES: usize = 1 << 30;
/// Set in a frame length to make it a skip marker: "the next frame is at the offset in the
/// other bits".
const SKIP: u64 = 1 << 63;
/// Set in `wrapped_at` after a jump past the wrap marker, until the next wrap.
const ESCAPED: u64 = 1 << 63;
/// Offsets below this stay in the cache: past it, a put wraps to 0 if the getters have moved
/// on far enough.
const HOT_BYTES: usize = 16 << 20;
/// How long a putter waits for the getters to free the space before their offset, once
/// wrapped, before it jumps past the wrap marker into cold memory.
const ESCAPE_AFTER: Duration = Duration::from_millis(1);
/// Bytes of a frame header (and of a skip marker).
const HEADER: usize = 8;

/// The words of a ring, in shared memory, on cache lines by who writes and who reads them: the
/// putters' own words, the words putters publish to getters, the getters' own, the words getters
/// publish, and `task_done`'s.
#[repr(C)]
pub(crate) struct RingState {
    put_lock: AtomicU64,
    /// The last `head` a putter read: the getters have taken at least that much.
    seen_head: AtomicU64,
    /// Where the last wrap to offset 0 left its marker, and [`ESCAPED`] once frames jumped
    /// past it (then frames may lie both before and after `head`).
    wrapped_at: AtomicU64,
    _put_own_pad: [AtomicU64; 5],
    tail: AtomicU64,
    getters_waiting: AtomicU32,
    _put_pad: [AtomicU32; 13],
    get_lock: AtomicU64,
    /// The last `tail` a getter read: the putters have put at least that much.
    seen_tail: AtomicU64,
    _get_own_pad: [AtomicU64; 6],
    head: AtomicU64,
    putters_waiting: AtomicU32,
    _get_pad: [AtomicU32; 13],
    done: AtomicU64,
    joiners_waiting: AtomicU32,
    /// [`OPEN`], [`SHUT_DOWN`] or [`SHUT_DOWN_NOW`]: Python's `shutdown()`, for every handle.
    shutdown: AtomicU32,
}

/// The queue takes puts.
const OPEN: u32 = 0;
/// `shutdown()`: puts fail; gets take what is left, then fail.
const SHUT_DOWN: u32 = 1;
/// `shutdown(immediate=True)`: puts and gets fail; what was left is dropped and `join` returns.
const SHUT_DOWN_NOW: u32 = 2;
/// How often a sleeping putter, getter or joiner looks at the shutdown word: a shutdown wakes
/// them, but a wake-up that comes just before one sleeps is missed (the words it sleeps on do
/// not change), so the sleep is bounded.
const SHUTDOWN_CHECK: Duration = Duration::from_millis(100);

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

/// What a putter knows when it places a frame.
struct View {
    tail: usize,
    head: usize,
    empty: bool,
    need: usize,
    wrapped_at: u64,
    /// Whether the putter waited long enough for space before `head` to jump past the wrap.
    may_escape: bool,
}

/// Why a put did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// No room (or the queue is at its maximum size) until the deadline.
    Full,
    /// The frame can never fit in the ring.
    TooLarge,
    /// The queue was shut down.
    ShutDown,
}

/// Why a get did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PopError {
    /// Nothing to take until the deadline.
    Empty,
    /// The ring holds a frame header that cannot be right (memory written by something else).
    Corrupt,
    /// The queue was shut down, and nothing is left to take (or it was shut down at once).
    ShutDown,
}

/// What one look under a side lock came to: done (with its result), or a word to wait on and
/// the function that was not called yet, for the next look.
enum Attempt<R, F> {
    Done(R),
    Wait(u64, F),
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

    /// Puts a frame of `len` bytes, which `fill` writes straight into shared memory, waiting
    /// for the put lock until `lock_deadline` and then for room until `deadline` (`None`: no
    /// limit). If `fill` fails, nothing is put and its error is returned.
    ///
    /// The lock is held only to look for room and to write: a putter waits for room without
    /// it, so that another putter's `try_put` or `put_timeout` is never held up by one that
    /// waits, in this process or another.
    pub(crate) fn push<E>(
        &self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
        lock_deadline: Option<Instant>,
        deadline: Option<Instant>,
    ) -> Result<Result<(), E>, PushError> {
        let need = HEADER + len;
        if need > self.data.len() - 2 * HEADER {
            return Err(PushError::TooLarge);
        }
        let state = &*self.state;
        let mut fill = fill;
        let mut may_escape = false;
        loop {
            if state.shutdown.load(Ordering::Acquire) != OPEN {
                return Err(PushError::ShutDown);
            }
            if raw::acquire(&state.put_lock, owner::process(), lock_deadline) == raw::Acquired::No {
                return Err(PushError::Full);
            }
            // SAFETY: this thread holds the put lock until the release below.
            let attempt = unsafe { self.try_push_locked(fill, need, may_escape) };
            raw::release(&state.put_lock);
            let head_word = match attempt {
                Attempt::Done(result) => return Ok(result),
                Attempt::Wait(word, unused) => {
                    fill = unused;
                    word
                }
            };
            let escape_at = Instant::now() + ESCAPE_AFTER;
            let wait_until = deadline.map_or(escape_at, |d| d.min(escape_at));
            if !wait_for_change(
                &state.head,
                head_word,
                &state.putters_waiting,
                Some(wait_until),
            ) {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(PushError::Full);
                }
                may_escape = true;
            }
        }
    }

    /// Puts the frame if there is room now, with `fill`; otherwise gives `fill` back with the
    /// `head` word it saw, to wait for a change of.
    ///
    /// # Safety
    ///
    /// The caller holds the put lock, so that no other putter in any process writes the free
    /// space at the same time.
    unsafe fn try_push_locked<E, F: FnOnce(&mut [u8]) -> Result<(), E>>(
        &self,
        fill: F,
        need: usize,
        may_escape: bool,
    ) -> Attempt<Result<(), E>, F> {
        let state = &*self.state;
        let (puts, tail) = unpack(state.tail.load(Ordering::Relaxed));
        // A stale `head` only understates the free space; look again before going cold.
        let mut head_word = state.seen_head.load(Ordering::Relaxed);
        let mut fresh = false;
        loop {
            let (gets, head) = unpack(head_word);
            let count = puts.wrapping_sub(gets);
            let room = self.maxsize == 0 || count < self.maxsize;
            let view = View {
                tail,
                head,
                empty: count == 0,
                need,
                wrapped_at: state.wrapped_at.load(Ordering::Relaxed),
                may_escape,
            };
            let at = room.then(|| self.place(&view)).flatten();
            let hot = at.is_some_and(|at| at != tail || at + need <= HOT_BYTES);
            if let Some(at) = at.filter(|_| hot || fresh) {
                // SAFETY: the caller holds the put lock (this function's contract), and `place`
                // chose `at` for the frame.
                return Attempt::Done(unsafe { self.commit(fill, puts, &view, at) });
            }
            if fresh {
                return Attempt::Wait(head_word, fill);
            }
            fresh = true;
            head_word = state.head.load(Ordering::Acquire);
            state.seen_head.store(head_word, Ordering::Relaxed);
        }
    }

    /// Fills the frame, writes its header (and a skip marker, for a place other than `tail`)
    /// and publishes it; if `fill` fails, publishes nothing.
    ///
    /// # Safety
    ///
    /// The caller holds the put lock, so that no other putter in any process writes the free
    /// space at the same time.
    /// And `at` is a place that [`place`](Ring::place) returned for `view`.
    unsafe fn commit<E>(
        &self,
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
        puts: u32,
        view: &View,
        at: usize,
    ) -> Result<(), E> {
        let state = &*self.state;
        let len = view.need - HEADER;
        // SAFETY: the put lock is held (our contract), and the frame at `at`, `place`'s choice,
        // lies in free space inside the block.
        fill(unsafe { self.free_space(at + HEADER, len) })?;
        if at != view.tail {
            let wrap = if at == 0 {
                view.tail as u64
            } else {
                ESCAPED | view.wrapped_at
            };
            state.wrapped_at.store(wrap, Ordering::Relaxed);
            // SAFETY: as above; `place` left room for a marker at `tail`.
            unsafe { self.write(view.tail, &(SKIP | at as u64).to_le_bytes()) };
        }
        // SAFETY: as above: the header of the frame at `at`.
        unsafe { self.write(at, &(len as u64).to_le_bytes()) };
        state
            .tail
            .store(pack(puts.wrapping_add(1), at + view.need), Ordering::SeqCst);
        if state.getters_waiting.load(Ordering::SeqCst) > 0 {
            futex::wake_low_half(&state.tail, 1);
        }
        Ok(())
    }

    /// Where a frame goes, given the putters' view; `None` if there is no room. A place other
    /// than `tail` means a skip marker at `tail` that sends getters there. Every frame leaves
    /// room for a marker after it, before the end or before `head`.
    fn place(&self, v: &View) -> Option<usize> {
        let end = self.data.len() - HEADER;
        let fits_before_head = |at: usize| at + v.need + HEADER <= v.head;
        if v.empty && v.need + HEADER <= v.tail {
            // Nothing is left to read, so the start is free: go back to the hot pages.
            return Some(0);
        }
        if v.tail < v.head {
            // Wrapped: frames lie from `head` to the wrap marker, then from 0 to `tail`. Fill the
            // space before `head`; when the getters are slow to free more, go on after the wrap
            // marker, where nothing lies.
            if fits_before_head(v.tail) {
                return Some(v.tail);
            }
            let after_wrap = (v.wrapped_at & !ESCAPED) as usize + HEADER;
            let can_escape = v.may_escape && after_wrap > v.head && after_wrap + v.need <= end;
            return can_escape.then_some(after_wrap);
        }
        let escaped = v.wrapped_at & ESCAPED != 0;
        if v.tail + v.need > HOT_BYTES && !escaped && fits_before_head(0) {
            Some(0)
        } else if v.tail + v.need <= end {
            Some(v.tail)
        } else {
            // After a jump, frames may still lie before `head`: wait for an empty ring.
            None
        }
    }

    /// Copies `bytes` into the data block at `offset`.
    ///
    /// # Safety
    ///
    /// The caller holds the put lock, so that no other putter in any process writes the free
    /// space at the same time.
    /// And `offset..offset + bytes.len()` is free space inside the block.
    unsafe fn write(&self, offset: usize, bytes: &[u8]) {
        // SAFETY: the caller's contract is `free_space`'s.
        unsafe { self.free_space(offset, bytes.len()) }.copy_from_slice(bytes);
    }

    /// The `len` bytes of free space at `offset`, for the putter holding the lock to write.
    ///
    /// # Safety
    ///
    /// The caller holds the put lock, so that no other putter in any process writes the free
    /// space at the same time.
    /// And `offset..offset + len` is free space inside the block (as `place` returns), which
    /// getters do not read until a store to `tail` publishes it; the slice is dropped before
    /// that store.
    #[allow(clippy::mut_from_ref)]
    unsafe fn free_space(&self, offset: usize, len: usize) -> &mut [u8] {
        debug_assert!(offset + len <= self.data.len());
        // SAFETY: the range lies inside the block and is free space (the caller's contract, as
        // `place` only returns offsets where the whole frame and a marker after it fit); no
        // getter reads it until the store to `tail` that publishes it, after this slice is gone,
        // and no other putter touches it, since the caller holds the put lock.
        unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr().add(offset), len) }
    }

    /// Takes the next frame and passes its payload to `take`, waiting for the get lock until
    /// `lock_deadline` and then for a frame until `deadline`.
    ///
    /// As for [`push`](Ring::push), the lock is held only to look and to take: a getter waits
    /// for a frame without it, so that another getter's `try_get` is never held up by it.
    pub(crate) fn pop<R>(
        &self,
        lock_deadline: Option<Instant>,
        deadline: Option<Instant>,
        take: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, PopError> {
        let state = &*self.state;
        let mut take = take;
        loop {
            if state.shutdown.load(Ordering::Acquire) == SHUT_DOWN_NOW {
                return Err(PopError::ShutDown);
            }
            if raw::acquire(&state.get_lock, owner::process(), lock_deadline) == raw::Acquired::No {
                return Err(PopError::Empty);
            }
            // SAFETY: this thread holds the get lock until the release below.
            let attempt = unsafe { self.try_pop_locked(take) };
            raw::release(&state.get_lock);
            match attempt {
                Attempt::Done(result) => return result,
                Attempt::Wait(tail_word, unused) => {
                    take = unused;
                    if state.shutdown.load(Ordering::Acquire) != OPEN {
                        return Err(PopError::ShutDown);
                    }
                    let waits = &state.getters_waiting;
                    if !wait_bounded(&state.tail, tail_word, waits, deadline) {
                        return Err(PopError::Empty);
                    }
                }
            }
        }
    }

    /// Takes the next frame if there is one now, with `take`; otherwise gives `take` back with
    /// the `tail` word it saw, to wait for a change of.
    ///
    /// # Safety
    ///
    /// The caller holds the get lock, so that no other getter in any process reads or frees the
    /// frames at `head` at the same time.
    unsafe fn try_pop_locked<R, F: FnOnce(&[u8]) -> R>(
        &self,
        take: F,
    ) -> Attempt<Result<R, PopError>, F> {
        let state = &*self.state;
        let (gets, head) = unpack(state.head.load(Ordering::Relaxed));
        // A stale `tail` only understates what was put; look again before waiting.
        let mut tail_word = state.seen_tail.load(Ordering::Relaxed);
        let mut fresh = false;
        loop {
            let (puts, _) = unpack(tail_word);
            if puts != gets {
                // SAFETY: the caller holds the get lock (this function's contract).
                return Attempt::Done(unsafe { self.take_at(head, gets, take) });
            }
            if fresh {
                return Attempt::Wait(tail_word, take);
            }
            fresh = true;
            tail_word = state.tail.load(Ordering::Acquire);
            state.seen_tail.store(tail_word, Ordering::Relaxed);
        }
    }

    /// Takes the frame at `head` (or behind the skip marker there), the `gets`-th.
    ///
    /// # Safety
    ///
    /// The caller holds the get lock, so that no other getter in any process reads or frees the
    /// frames at `head` at the same time.
    unsafe fn take_at<R>(
        &self,
        head: usize,
        gets: u32,
        take: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, PopError> {
        let state = &*self.state;
        // SAFETY (the three calls below): the caller holds the get lock (our contract), and the
        // frame at `head` was published before `tail`, which `pop_locked` read with Acquire.
        let at = match unsafe { self.read_len(head) }? {
            marker if marker & SKIP != 0 => (marker & !SKIP) as usize,
            _ => head,
        };
        let len = unsafe { self.read_len(at) }?;
        let payload = unsafe { self.frame(at, len) }?;
        let result = take(payload);
        let next = pack(gets.wrapping_add(1), at + HEADER + payload.len());
        state.head.store(next, Ordering::SeqCst);
        if state.putters_waiting.load(Ordering::SeqCst) > 0 {
            futex::wake_low_half(&state.head, 1);
        }
        Ok(result)
    }

    /// The header (a length or a skip marker) at `offset`.
    ///
    /// # Safety
    ///
    /// The caller holds the get lock, so that no other getter in any process reads or frees the
    /// frames at `head` at the same time.
    /// And `offset` is the start of a published frame or marker.
    unsafe fn read_len(&self, offset: usize) -> Result<u64, PopError> {
        let mut len = [0u8; HEADER];
        // SAFETY: the caller's contract is `bytes`'s.
        len.copy_from_slice(unsafe { self.bytes(offset, HEADER) }?);
        Ok(u64::from_le_bytes(len))
    }

    /// The `len` payload bytes of the frame whose header is at `offset`.
    ///
    /// # Safety
    ///
    /// The caller holds the get lock, so that no other getter in any process reads or frees the
    /// frames at `head` at the same time.
    /// And the frame at `offset` is published.
    unsafe fn frame(&self, offset: usize, len: u64) -> Result<&[u8], PopError> {
        let len = usize::try_from(len).map_err(|_| PopError::Corrupt)?;
        // SAFETY: the caller's contract is `bytes`'s.
        unsafe { self.bytes(offset + HEADER, len) }
    }

    /// `len` bytes of a published frame from `start`.
    ///
    /// # Safety
    ///
    /// The caller holds the get lock, so that no other getter in any process reads or frees the
    /// frames at `head` at the same time.
    /// And the bytes are part of a published frame: before `tail`, read with Acquire. The
    /// slice must be dropped before this getter's store to `head` frees them.
    unsafe fn bytes(&self, start: usize, len: usize) -> Result<&[u8], PopError> {
        if start
            .checked_add(len)
            .is_none_or(|end| end > self.data.len())
        {
            return Err(PopError::Corrupt);
        }
        // SAFETY: the range is inside the block (checked). It is part of a published frame (the
        // caller's contract), which no putter writes until this getter's store to `head` frees
        // it, and no other getter reads, since the caller holds the get lock.
        Ok(unsafe { std::slice::from_raw_parts(self.data.as_ptr().add(start), len) })
    }

    /// Python's `shutdown(immediate)`, for every handle of the queue in every process: puts
    /// fail from now on; gets take what is left and then fail, or, if `immediate`, fail at once,
    /// and `join` returns. Sleepers are woken to see it.
    pub(crate) fn shut_down(&self, immediate: bool) {
        let state = &*self.state;
        let to = if immediate { SHUT_DOWN_NOW } else { SHUT_DOWN };
        state.shutdown.fetch_max(to, Ordering::SeqCst);
        if immediate {
            // Drop what is left, as if taken (Python empties the queue): `head` moves to `tail`
            // under the get lock, so that no get is half-way through a frame.
            raw::acquire(&state.get_lock, owner::process(), None);
            state
                .head
                .store(state.tail.load(Ordering::Acquire), Ordering::SeqCst);
            raw::release(&state.get_lock);
        }
        for word in [&state.head, &state.tail, &state.done] {
            futex::wake_low_half(word, u32::MAX);
        }
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
            if done as u32 == puts || state.shutdown.load(Ordering::Acquire) == SHUT_DOWN_NOW {
                return true;
            }
            if !wait_bounded(&state.done, done, &state.joiners_waiting, deadline) {
                return false;
            }
        }
    }
}

/// [`wait_for_change`] for at most [`SHUTDOWN_CHECK`] at a time, until `deadline`: `true` when
/// the caller should look again (the word changed, or may have, or the shutdown word is due a
/// look), `false` once `deadline` has passed.
fn wait_bounded(
    word: &AtomicU64,
    seen: u64,
    waiting: &AtomicU32,
    deadline: Option<Instant>,
) -> bool {
    let check_at = Instant::now() + SHUTDOWN_CHECK;
    let until = deadline.map_or(check_at, |d| d.min(check_at));
    wait_for_change(word, seen, waiting, Some(until)) || deadline.is_none_or(|d| Instant::now() < d)
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
    // A put or get on the other side is usually a fraction of the watch away, and a sleep
    // costs the other side a wake-up call.
    if watch(Patience::QUEUE, deadline, || {
        word.load(Ordering::Relaxed) != seen
    }) {
        return true;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    impl Ring {
        /// Puts a copy of `bytes`.
        fn push_bytes(&self, bytes: &[u8], deadline: Option<Instant>) -> Result<(), PushError> {
            let copy = |dst: &mut [u8]| {
                dst.copy_from_slice(bytes);
                Ok::<(), ()>(())
            };
            self.push(bytes.len(), copy, None, deadline)
                .map(|filled| filled.unwrap_or(()))
        }
    }

    /// A payload of `len` bytes that says which one it is.
    fn payload(id: u32, len: usize) -> Vec<u8> {
        (0..len).map(|i| (id as usize * 31 + i) as u8).collect()
    }

    #[test]
    fn frames_of_mixed_sizes_come_out_whole_and_in_order_across_wraps() {
        let ring = Ring::new(0).unwrap();
        let mut expected = VecDeque::new();
        let mut seed = 12345u64;
        for id in 0..120u32 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Sizes from 0 to 3 MiB; every few frames the ring empties and starts again at 0.
            let len = ((seed >> 33) % (3 << 20)) as usize * (id % 3 != 0) as usize;
            ring.push_bytes(&payload(id, len), None).unwrap();
            expected.push_back((id, len));
            // Keep between 0 and 8 frames in flight, emptying it now and then.
            let keep = (seed >> 20) as usize % 9;
            while expected.len() > keep {
                let (id, len) = expected.pop_front().unwrap();
                let got = ring.pop(None, None, <[u8]>::to_vec).unwrap();
                assert_eq!(got, payload(id, len), "frame {id}");
            }
            assert_eq!(ring.len(), expected.len());
        }
    }

    #[test]
    fn a_full_ring_refuses_until_the_deadline_and_too_large_never_fits() {
        let ring = Ring::new(1).unwrap();
        ring.push_bytes(b"one", None).unwrap();
        let now = Some(Instant::now());
        assert_eq!(ring.push_bytes(b"two", now), Err(PushError::Full));
        assert_eq!(ring.pop(None, None, <[u8]>::to_vec), Ok(b"one".to_vec()));
        assert_eq!(ring.pop(None, now, <[u8]>::to_vec), Err(PopError::Empty));
        let huge = vec![0u8; RING_BYTES];
        assert_eq!(ring.push_bytes(&huge, None), Err(PushError::TooLarge));
    }

    #[test]
    fn after_a_wrap_a_stalled_getter_does_not_block_putters() {
        let ring = Ring::new(0).unwrap();
        let now = || Some(Instant::now());
        let mb = 1 << 20;
        for id in 0..2 {
            ring.push_bytes(&payload(id, mb), now()).unwrap();
            ring.pop(None, None, <[u8]>::to_vec).unwrap();
        }
        // Empty again: the next frame goes back to offset 0; then the getter stalls, and the
        // putter, after a short wait, goes on past the wrap marker.
        for id in 2..40 {
            ring.push_bytes(&payload(id, mb), None).unwrap();
        }
        for id in 2..40 {
            assert_eq!(ring.pop(None, now(), <[u8]>::to_vec), Ok(payload(id, mb)));
        }
    }
}
