//! The result channel from a pool worker to its parent: a byte stream in shared memory, and the
//! doorbell that wakes the parent's result thread.
//!
//! A worker publishes each part of a chunk's results (at most about [`PART_BYTES`]) by copying it
//! into its [`Ring`] and moving the published-position counter: no system call while the parent
//! is awake. Only when the parent has announced that it is about to sleep does the worker ring
//! the [`Bell`] (one byte into a pipe the parent polls, together with the workers' pidfds). A
//! worker that finds no room for its results sleeps on a futex until the parent has freed some.
//! The parent decodes a message where it lies in the ring (a [`Mirror`] keeps even a wrapping one
//! in one piece), so a chunk's results are copied once, from the ring into the caller's values.
//! The ring also holds the number of the chunk the worker has started, so that when a worker
//! dies the parent knows exactly which chunks it held, and the number of chunks the parent has
//! written to the worker's task socket, which a worker that has just answered watches for its
//! next chunk before it sleeps on the socket.
//!
//! Both ends follow the single-producer, single-consumer discipline: only the worker writes data
//! and `tail`, only the parent reads data and writes `head`. The functions that rely on it are
//! `unsafe fn`s whose `# Safety` sections say so. The ordering between a sleeper's flag and the
//! other side's progress is sequentially consistent (Dekker's pattern), so no wake-up is lost.
//!
//! A worker started by exec (not forked) is sent its ring and the bell as serde values: their
//! shared memory and pipes travel as descriptors (`sys::transfer`), which it maps again.

use crate::shm::{Mirror, Shared, SharedState, ShmError};
use crate::sys::futex;
use crate::sys::mem::Prefault;
use crate::sys::transfer::Descriptor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Arc;

/// Bytes of result data a ring holds; a larger message streams through it. Small enough that
/// its pages are soon all in use and reused (a chunk's results faulting in fresh pages cost more
/// than the rare wait for the parent to read).
const RING_BYTES: usize = 1 << 18;

/// Bytes of outcomes a worker puts in one part of a chunk's results: half the ring, so it writes
/// the next part while the parent decodes the one before. (Smaller parts overlap more but cost
/// a frame and a delivery each.)
pub(crate) const PART_BYTES: usize = RING_BYTES / 2;

/// Where stream position `pos` falls in the ring's data.
fn offset(pos: u64) -> usize {
    (pos % RING_BYTES as u64) as usize
}

/// What the two sides of a ring share besides the data, on cache lines of its own: 128 bytes, as
/// crossbeam's `CachePadded`, since Intel's spatial prefetcher pulls cache lines in pairs, and
/// the next block of shared memory may be another worker's header.
#[repr(C, align(128))]
struct Header {
    /// Bytes released by the parent: the worker may write over everything before.
    head: AtomicU64,
    /// Bytes published by the worker.
    tail: AtomicU64,
    /// Bumped by the parent each time it frees space while the worker waits; the futex word.
    space: AtomicU32,
    /// Set by the worker before it sleeps for space.
    writer_waiting: AtomicU32,
    /// One more than the sequence number of the last chunk the worker started (0: none).
    started: AtomicU64,
    /// One more than the sequence number of the last chunk whose frame the parent has written
    /// in full to the worker's task socket (0: none).
    posted: AtomicU64,
}

// SAFETY: `Header` holds only atomic integers (no pointers), for which all-zero bytes are valid,
// and every byte of it is reached through them.
unsafe impl SharedState for Header {}

/// The worker-to-parent byte stream of one worker.
///
/// The data lives in a [`Mirror`], so the parent can decode a message of up to [`RING_BYTES`]
/// where it lies, even one that wraps around the end: it [`take`](Ring::take)s the message as a
/// [`Span`], which keeps the worker off those bytes until it is dropped. Bigger messages are
/// copied out as they stream through.
///
/// The header is a [`Shared`], which checks its size and alignment where it is made. The data
/// cannot be one: it is plain bytes, written by one side and read by the other as the header's
/// positions say, not atomics, and it must be a [`Mirror`] to be read in one piece. Its size is
/// checked once where it is made ([`new`](Ring::new)) or received (its `Deserialize`); every
/// offset into it is taken modulo [`RING_BYTES`].
pub(crate) struct Ring {
    header: Shared<Header>,
    data: Mirror,
    /// Parent side: bytes taken, as spans or copied out (between `head` and `tail`).
    read: AtomicU64,
}

impl Ring {
    pub(crate) fn new() -> Result<Self, ShmError> {
        let data = Mirror::create(RING_BYTES)?;
        if data.len() != RING_BYTES {
            return Err(ShmError::BadSize(data.len()));
        }
        Ok(Ring {
            header: Shared::new()?,
            data,
            read: AtomicU64::new(0),
        })
    }

    fn header(&self) -> &Header {
        &self.header
    }

    /// Where stream position `pos` lies: thanks to the mirror, the next [`RING_BYTES`] bytes
    /// follow it in one piece.
    fn at(&self, pos: u64) -> *mut u8 {
        self.data.as_ptr().wrapping_add(offset(pos))
    }

    /// Worker side: prefaults all of the ring's pages as the worker starts (the `ring` use of
    /// [`Prefault`]). The ring is the worker's for life and its first [`RING_BYTES`] of results
    /// pass through every page, so mapping them in one call here, before any task, spares those
    /// results a page fault per page, where the call costs less than the faults it replaces. The
    /// pool's start takes that much longer instead.
    pub(crate) fn prefault(&self) {
        self.data.prefault_first_view(Prefault::Ring);
    }

    /// Worker side: records that the chunk `seq` is about to run.
    pub(crate) fn mark_started(&self, seq: u64) {
        self.header().started.store(seq + 1, SeqCst);
    }

    /// Parent side: how many chunks (by sequence number) the worker has started.
    pub(crate) fn started(&self) -> u64 {
        self.header().started.load(SeqCst)
    }

    /// Parent side: records that the frame of chunk `seq` is in the task socket.
    pub(crate) fn mark_posted(&self, seq: u64) {
        self.header().posted.store(seq + 1, SeqCst);
    }

    /// Worker side: whether the chunk after `seq` is in the task socket.
    pub(crate) fn is_posted_after(&self, seq: u64) -> bool {
        self.header().posted.load(SeqCst) > seq + 1
    }

    /// Worker side: appends `bytes` to the stream and rings `bell`. A message that fits in the
    /// ring is published whole, once there is room for all of it; a bigger one streams through,
    /// published piece by piece as the parent frees room.
    ///
    /// # Safety
    ///
    /// No other thread or process writes to this ring meanwhile: a ring has one writer, its
    /// worker's only thread.
    pub(crate) unsafe fn write(&self, mut bytes: &[u8], bell: &Bell) {
        let header = self.header();
        let whole = bytes.len() <= RING_BYTES;
        while !bytes.is_empty() {
            let tail = header.tail.load(SeqCst);
            let free = RING_BYTES - (tail - header.head.load(SeqCst)) as usize;
            let n = free.min(bytes.len());
            if n == 0 || (whole && n < bytes.len()) {
                self.wait_for_space(bytes.len().min(RING_BYTES));
                continue;
            }
            // SAFETY: this is the ring's only writer (this function's contract); `tail` is the
            // published position, which only this writer moves, and `n` is at most the free room
            // after it: the parent has released those bytes and reads none of them until `tail`
            // moves past them below.
            unsafe { self.write_free(tail, &bytes[..n]) };
            header.tail.store(tail + n as u64, SeqCst);
            bytes = &bytes[n..];
            bell.ring();
        }
    }

    /// Worker side: copies `bytes` (at most [`RING_BYTES`]) into the free room at stream
    /// position `pos`, through the first view only: the part past its end goes to its start. The
    /// worker then maps each page of the ring once, not once per view.
    ///
    /// # Safety
    ///
    /// The caller is the ring's only writer, `pos` is the published position (`tail`), and the
    /// `bytes.len()` bytes after it are free room (released by the parent), so that nobody else
    /// reads or writes them until `tail` moves past them.
    unsafe fn write_free(&self, pos: u64, bytes: &[u8]) {
        let (to_end, wrapped) = bytes.split_at(bytes.len().min(RING_BYTES - offset(pos)));
        // SAFETY: `offset(pos) + to_end.len()` and `wrapped.len()` are at most RING_BYTES (the
        // first view's length, checked in `new`), so both copies land inside the first view; the
        // bytes there are free room, which nobody else touches until `tail` moves (the contract).
        unsafe {
            std::ptr::copy_nonoverlapping(to_end.as_ptr(), self.at(pos), to_end.len());
            std::ptr::copy_nonoverlapping(wrapped.as_ptr(), self.data.as_ptr(), wrapped.len());
        }
    }

    /// Worker side: sleeps until the ring has room for `want` bytes.
    fn wait_for_space(&self, want: usize) {
        let header = self.header();
        let seen = header.space.load(SeqCst);
        header.writer_waiting.store(1, SeqCst);
        let used = header.tail.load(SeqCst) - header.head.load(SeqCst);
        if RING_BYTES - (used as usize) < want {
            futex::wait(&header.space, seen, None);
        }
        header.writer_waiting.store(0, SeqCst);
    }

    /// Parent side: whether published bytes wait to be taken.
    pub(crate) fn has_data(&self) -> bool {
        self.header().tail.load(SeqCst) != self.read.load(Relaxed)
    }

    /// Parent side: copies the first `out.len()` published bytes not yet taken into `out`,
    /// without taking them; `false` if fewer are published.
    ///
    /// # Safety
    ///
    /// No other thread reads from this ring meanwhile (see [`take`](Ring::take)).
    pub(crate) unsafe fn peek(&self, out: &mut [u8]) -> bool {
        let read = self.read.load(Relaxed);
        if self.published(read) < out.len() || out.len() > RING_BYTES {
            return false;
        }
        // SAFETY: the bytes are published and not yet taken, so not released (only this reader
        // releases, by the contract): the worker leaves them alone. At most RING_BYTES from
        // `at(read)` lie inside the two views.
        unsafe { std::ptr::copy_nonoverlapping(self.at(read), out.as_mut_ptr(), out.len()) };
        true
    }

    fn published(&self, read: u64) -> usize {
        (self.header().tail.load(SeqCst) - read) as usize
    }

    /// Parent side: takes the next `len` published bytes (at most [`RING_BYTES`]) where they
    /// lie; `None` until all of them are published.
    ///
    /// # Safety
    ///
    /// A ring has one reader: no other thread peeks, takes or reads from it meanwhile. And the
    /// spans it takes are dropped in the order they were taken: dropping one frees the room of
    /// every byte before its end, which the worker may then write over.
    pub(crate) unsafe fn take(self: &Arc<Self>, len: usize) -> Option<Span> {
        let read = self.read.load(Relaxed);
        if len > RING_BYTES || self.published(read) < len {
            return None;
        }
        self.read.store(read + len as u64, Relaxed);
        Some(Span {
            ring: self.clone(),
            start: read,
            len,
        })
    }

    /// Parent side: appends up to `max` published bytes to `out` and frees their room at once;
    /// for messages bigger than the ring, which must be copied out as they stream in. Reads
    /// nothing while a [`Span`] is out (the room must be freed in order). Returns how many bytes
    /// were read.
    ///
    /// # Safety
    ///
    /// No other thread reads from this ring meanwhile (see [`take`](Ring::take)).
    pub(crate) unsafe fn read_into(&self, out: &mut Vec<u8>, max: usize) -> usize {
        let read = self.read.load(Relaxed);
        if self.header().head.load(SeqCst) != read {
            return 0;
        }
        let len = self.published(read).min(max);
        // SAFETY: published, not taken, and not released (no span is out, and only this reader
        // releases, by the contract), so the worker leaves them alone; at most RING_BYTES (all
        // the ring holds) from `at(read)`, inside the two views.
        out.extend_from_slice(unsafe { std::slice::from_raw_parts(self.at(read), len) });
        self.read.store(read + len as u64, Relaxed);
        self.release(read + len as u64);
        len
    }

    /// Parent side: frees the room up to stream position `to`, waking the worker if it waits.
    fn release(&self, to: u64) {
        let header = self.header();
        header.head.fetch_max(to, SeqCst);
        if header.writer_waiting.load(SeqCst) == 1 {
            header.space.fetch_add(1, SeqCst);
            futex::wake_all(&header.space);
        }
    }

    /// The most bytes a message may have to be taken as a [`Span`].
    pub(crate) const fn capacity() -> usize {
        RING_BYTES
    }
}

/// A ring as it travels to a worker started by exec: its header, and its data's memfd.
impl Serialize for Ring {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&self.header, Descriptor(self.data.fd())).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Ring {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (header, Descriptor(fd)) =
            <(Shared<Header>, Descriptor<OwnedFd>)>::deserialize(deserializer)?;
        // `open` refuses a memfd of any size but RING_BYTES, which every offset relies on.
        let data = Mirror::open(fd, RING_BYTES).map_err(serde::de::Error::custom)?;
        Ok(Ring {
            header,
            data,
            read: AtomicU64::new(0),
        })
    }
}

/// Published bytes the parent took from a ring: they stay put, and the worker writes around
/// them, until the span is dropped. Spans of one ring are dropped in the order they were taken
/// (the result thread delivers each chunk before the next), so dropping one frees the room of
/// every byte before its end.
pub(crate) struct Span {
    ring: Arc<Ring>,
    start: u64,
    len: usize,
}

impl Span {
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: taken from published bytes (`len <= RING_BYTES`, so inside the two views)
        // that are not released before this span drops: `take`'s contract has spans dropped in
        // order (so no later span frees them first), and `read_into` frees nothing while a span
        // is out.
        unsafe { std::slice::from_raw_parts(self.ring.at(self.start), self.len) }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        self.ring.release(self.start + self.len as u64);
    }
}

impl std::fmt::Debug for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Span")
            .field("start", &self.start)
            .field("len", &self.len)
            .finish()
    }
}

/// The doorbell's flag in shared memory, on cache lines of its own (as [`Header`]): the result
/// thread and every worker write it.
#[repr(C, align(128))]
struct BellFlag {
    /// Set by the result thread while it is about to sleep or asleep.
    sleeping: AtomicU32,
}

// SAFETY: one atomic integer (no pointer), valid as all-zero bytes and reached only through it.
unsafe impl SharedState for BellFlag {}

/// The doorbell of a pool's result thread: a flag in shared memory that says it is about to
/// sleep, and a pipe it polls. Workers (after publishing results) and the pool's callers (after
/// leaving work for it) ring it; only a ring that finds the flag set costs a system call.
pub(crate) struct Bell {
    flag: Shared<BellFlag>,
    read: File,
    write: File,
}

impl Bell {
    pub(crate) fn new() -> Result<Self, ShmError> {
        let (read, write): (OwnedFd, OwnedFd) = crate::sys::nonblocking_pipe()?;
        Ok(Bell {
            flag: Shared::new()?,
            read: File::from(read),
            write: File::from(write),
        })
    }

    fn sleeping(&self) -> &AtomicU32 {
        &self.flag.sleeping
    }

    /// Wakes the result thread if it is asleep or about to sleep.
    pub(crate) fn ring(&self) {
        if self.sleeping().swap(0, SeqCst) == 1 {
            // A full pipe already holds a wake-up.
            let _ = (&self.write).write(&[1]);
        }
    }

    /// Result thread: announces that it is about to sleep. It must then re-check for work before
    /// it polls [`fd`](Bell::fd).
    pub(crate) fn prepare_sleep(&self) {
        self.sleeping().store(1, SeqCst);
    }

    /// Result thread: awake again; empties the pipe if it was `rang`.
    pub(crate) fn woke(&self, rang: bool) {
        self.sleeping().store(0, SeqCst);
        let mut buf = [0u8; 64];
        while rang && matches!((&self.read).read(&mut buf), Ok(n) if n == buf.len()) {}
    }

    /// The descriptor to poll for a ring.
    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.read.as_fd()
    }
}

/// A bell as it travels to a worker started by exec: its flag and both ends of its pipe.
impl Serialize for Bell {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (read, write) = (
            Descriptor(self.read.as_fd()),
            Descriptor(self.write.as_fd()),
        );
        (&self.flag, read, write).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Bell {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        type Wire = (Shared<BellFlag>, Descriptor<File>, Descriptor<File>);
        let (flag, Descriptor(read), Descriptor(write)) = Wire::deserialize(deserializer)?;
        Ok(Bell { flag, read, write })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message of `len` bytes: its length, then bytes that say where they are.
    fn message(len: usize) -> Vec<u8> {
        let mut bytes = (len as u64).to_le_bytes().to_vec();
        bytes.extend((8..len).map(|i| (i * 7 % 251) as u8));
        bytes
    }

    /// Reads the next message as the pool's result thread does: in place if it fits, copied out
    /// as it streams in if not.
    fn read_message(ring: &Arc<Ring>) -> Vec<u8> {
        let mut head = [0; 8];
        // SAFETY (here and below): the calling test thread is the ring's one reader, and it
        // drops each span before it takes the next.
        while !unsafe { ring.peek(&mut head) } {
            std::thread::yield_now();
        }
        let len = u64::from_le_bytes(head) as usize;
        if len <= Ring::capacity() {
            loop {
                // SAFETY: as above.
                if let Some(span) = unsafe { ring.take(len) } {
                    return span.as_slice().to_vec();
                }
                std::thread::yield_now();
            }
        }
        let mut out = Vec::new();
        while out.len() < len {
            let want = len - out.len();
            // SAFETY: as above.
            unsafe { ring.read_into(&mut out, want) };
        }
        out
    }

    #[test]
    fn messages_wrap_around_and_stream_through_intact() {
        let ring = Arc::new(Ring::new().unwrap());
        let bell = Arc::new(Bell::new().unwrap());
        let sizes = [
            8,
            100,
            RING_BYTES / 2 + 3,
            RING_BYTES,
            9,
            RING_BYTES * 3 + 5,
            4096,
            17,
        ];
        let writer = {
            let ring = ring.clone();
            std::thread::spawn(move || {
                for len in sizes.iter().cycle().take(40) {
                    // SAFETY: this thread is the ring's one writer.
                    unsafe { ring.write(&message(*len), &bell) };
                }
            })
        };
        for len in sizes.iter().cycle().take(40) {
            assert_eq!(read_message(&ring), message(*len));
        }
        writer.join().unwrap();
        assert!(!ring.has_data());
    }

    /// The resident size, in KiB, that `/proc/self/smaps` gives for the mapping starting at `at`.
    fn resident_kib(at: *mut u8) -> usize {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let start = format!("{:x}-", at as usize);
        let mut lines = smaps.lines().skip_while(|line| !line.starts_with(&start));
        let rss = lines.find(|line| line.starts_with("Rss:")).unwrap();
        rss.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn a_worker_maps_every_page_of_its_ring_in_one_go() {
        if let Some(why) = crate::sys::mem::unavailable(Prefault::Ring) {
            eprintln!("skipped: {why}");
            return;
        }
        let ring = Ring::new().unwrap();
        assert_eq!(resident_kib(ring.data.as_ptr()), 0);
        ring.prefault();
        assert_eq!(resident_kib(ring.data.as_ptr()), RING_BYTES / 1024);
    }

    #[test]
    fn a_ring_and_bell_sent_by_descriptor_reach_the_same_memory_and_pipe() {
        use crate::sys::transfer;
        let (ring, bell) = (Arc::new(Ring::new().unwrap()), Bell::new().unwrap());
        let (bytes, fds) = transfer::collecting(|| crate::wire::encode(&(&*ring, &bell)));
        let bytes = bytes.unwrap();
        let received = transfer::receiving(fds, || crate::wire::decode(&bytes));
        let (far_ring, far_bell): (Ring, Bell) = received.unwrap();
        assert_ne!(far_ring.data.as_ptr(), ring.data.as_ptr(), "mapped again");
        bell.prepare_sleep();
        // SAFETY: the received ring's one writer is this test thread; the original is read
        // below by the same thread, after the write.
        unsafe { far_ring.write(&message(RING_BYTES / 2 + 3), &far_bell) };
        assert_eq!(read_message(&ring), message(RING_BYTES / 2 + 3));
        let mut rang = [0u8; 1];
        assert_eq!((&bell.read).read(&mut rang).unwrap(), 1, "the bell rang");
    }

    #[test]
    fn a_span_keeps_its_bytes_until_dropped() {
        let ring = Arc::new(Ring::new().unwrap());
        let bell = Bell::new().unwrap();
        // SAFETY: the test thread writes this message and the thread below the next one, after
        // it: one writer at a time. The test thread is the one reader, and takes one span.
        unsafe { ring.write(&message(RING_BYTES - 8), &bell) };
        // SAFETY: as above.
        let span = unsafe { ring.take(RING_BYTES - 8) }.unwrap();
        // The ring is nearly full while the span is out: bytes that do not fit wait.
        assert_eq!(ring.header().head.load(SeqCst), 0);
        let writer = {
            let ring = ring.clone();
            // SAFETY: as above.
            std::thread::spawn(move || unsafe { ring.write(&message(64), &bell) })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!ring.has_data());
        assert_eq!(span.as_slice(), message(RING_BYTES - 8));
        drop(span);
        writer.join().unwrap();
        assert_eq!(read_message(&ring), message(64));
    }
}
