//! The result channel from a pool worker to its parent: a byte stream in shared memory, and the
//! doorbell that wakes the parent's result thread.
//!
//! A worker publishes each chunk's results by copying them into its [`Ring`] and moving the
//! published-position counter: no system call while the parent is awake. Only when the parent
//! has announced that it is about to sleep does the worker ring the [`Bell`] (one byte into a
//! pipe the parent polls, together with the workers' pidfds). A worker that finds the ring full
//! sleeps on a futex until the parent has read. The ring also holds the number of the chunk the
//! worker has started, so that when a worker dies the parent knows exactly which chunks it held.
//!
//! Both ends follow the single-producer, single-consumer discipline: only the worker writes data
//! and `tail`, only the parent reads data and writes `head`. The ordering between a sleeper's
//! flag and the other side's progress is sequentially consistent (Dekker's pattern), so no
//! wake-up is lost.

use crate::shm::{Segment, ShmError};
use crate::sync::futex;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;

/// Bytes of result data a ring holds; a larger message streams through it. Small enough that
/// its pages are soon all in use and reused (a chunk's results faulting in fresh pages cost more
/// than the rare wait for the parent to read).
const RING_BYTES: usize = 1 << 18;

/// What the two sides of a ring share besides the data.
#[repr(C)]
struct Header {
    /// Bytes read by the parent.
    head: AtomicU64,
    /// Bytes published by the worker.
    tail: AtomicU64,
    /// Bumped by the parent each time it frees space while the worker waits; the futex word.
    space: AtomicU32,
    /// Set by the worker before it sleeps for space.
    writer_waiting: AtomicU32,
    /// One more than the sequence number of the last chunk the worker started (0: none).
    started: AtomicU64,
}

/// The worker-to-parent byte stream of one worker.
pub(crate) struct Ring {
    segment: Arc<Segment>,
}

impl Ring {
    pub(crate) fn new() -> Result<Self, ShmError> {
        Ok(Ring {
            segment: Segment::create(std::mem::size_of::<Header>() + RING_BYTES)?,
        })
    }

    fn header(&self) -> &Header {
        // SAFETY: the segment starts with a zero-filled, page-aligned Header (all-zero atomics
        // are valid), which lives as long as `self.segment`.
        unsafe { &*self.segment.as_ptr().cast::<Header>() }
    }

    fn data(&self) -> *mut u8 {
        // SAFETY: the data area follows the header inside the same segment.
        unsafe { self.segment.as_ptr().add(std::mem::size_of::<Header>()) }
    }

    /// Worker side: records that the chunk `seq` is about to run.
    pub(crate) fn mark_started(&self, seq: u64) {
        self.header().started.store(seq + 1, SeqCst);
    }

    /// Parent side: how many chunks (by sequence number) the worker has started.
    pub(crate) fn started(&self) -> u64 {
        self.header().started.load(SeqCst)
    }

    /// Worker side: appends `bytes` to the stream, publishing as it goes and ringing `bell`;
    /// waits for the parent when the ring is full.
    pub(crate) fn write(&self, mut bytes: &[u8], bell: &Bell) {
        let header = self.header();
        while !bytes.is_empty() {
            let tail = header.tail.load(SeqCst);
            let used = (tail - header.head.load(SeqCst)) as usize;
            let n = (RING_BYTES - used).min(bytes.len());
            if n == 0 {
                self.wait_for_space();
                continue;
            }
            self.copy_in(tail, &bytes[..n]);
            header.tail.store(tail + n as u64, SeqCst);
            bytes = &bytes[n..];
            bell.ring();
        }
    }

    fn copy_in(&self, tail: u64, bytes: &[u8]) {
        let start = (tail % RING_BYTES as u64) as usize;
        let first = bytes.len().min(RING_BYTES - start);
        // SAFETY: both ranges lie inside the data area, which only this (single) writer
        // touches between the parent's last `head` and the worker's `tail`.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.data().add(start), first);
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr().add(first),
                self.data(),
                bytes.len() - first,
            );
        }
    }

    fn wait_for_space(&self) {
        let header = self.header();
        let seen = header.space.load(SeqCst);
        header.writer_waiting.store(1, SeqCst);
        if header.tail.load(SeqCst) - header.head.load(SeqCst) == RING_BYTES as u64 {
            futex::wait(&header.space, seen, None);
        }
        header.writer_waiting.store(0, SeqCst);
    }

    /// Parent side: whether unread bytes are waiting.
    pub(crate) fn has_data(&self) -> bool {
        let header = self.header();
        header.tail.load(SeqCst) != header.head.load(SeqCst)
    }

    /// Parent side: appends up to `max` published bytes to `out`; wakes the worker if it waits
    /// for space. Returns how many bytes were read.
    pub(crate) fn read_into(&self, out: &mut Vec<u8>, max: usize) -> usize {
        let header = self.header();
        let head = header.head.load(SeqCst);
        let published = (header.tail.load(SeqCst) - head) as usize;
        let len = published.min(max);
        if len == 0 {
            return 0;
        }
        let start = (head % RING_BYTES as u64) as usize;
        let first = len.min(RING_BYTES - start);
        // SAFETY: the worker published these bytes (`tail` was stored after they were written)
        // and will not overwrite them before `head` moves past them.
        unsafe {
            let data = self.data();
            out.extend_from_slice(std::slice::from_raw_parts(data.add(start), first));
            out.extend_from_slice(std::slice::from_raw_parts(data, len - first));
        }
        header.head.store(head + len as u64, SeqCst);
        if header.writer_waiting.load(SeqCst) == 1 {
            header.space.fetch_add(1, SeqCst);
            futex::wake_all(&header.space);
        }
        len
    }
}

/// The doorbell of a pool's result thread: a flag in shared memory that says it is about to
/// sleep, and a pipe it polls. Workers (after publishing results) and the pool's callers (after
/// leaving work for it) ring it; only a ring that finds the flag set costs a system call.
pub(crate) struct Bell {
    flag: Arc<Segment>,
    read: File,
    write: File,
}

impl Bell {
    pub(crate) fn new() -> Result<Self, ShmError> {
        let (read, write): (OwnedFd, OwnedFd) = crate::sys::nonblocking_pipe()?;
        Ok(Bell {
            flag: Segment::create(std::mem::size_of::<AtomicU32>())?,
            read: File::from(read),
            write: File::from(write),
        })
    }

    fn sleeping(&self) -> &AtomicU32 {
        // SAFETY: the segment holds one zero-filled, page-aligned u32 for its lifetime.
        unsafe { &*self.flag.as_ptr().cast::<AtomicU32>() }
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
        use std::os::fd::AsFd;
        self.read.as_fd()
    }
}
