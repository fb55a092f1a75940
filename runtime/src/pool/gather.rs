//! The sink of a map or an apply: [`Gather`] assembles the parts of a job's chunks into one
//! vector in input order, decoding each part in its turn straight onto the end of the result
//! and setting aside the parts that arrive before theirs, then completes the job's
//! [`Cell`](super::async_result::Cell) (Python's `MapResult`).

use super::async_result::Cell;
use super::chunk::{decode_values, ChunkOutcome, Part, Sink};
use crate::error::Error;
use crate::sys::mem::{self, Prefault};
use crate::task::Task;
use crate::util::lock;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// Gathers the chunks of a map (or the single chunk of an apply) and completes its cell when the
/// last one is in, with the values in input order or the first failure that arrived (Python's
/// `MapResult`). How many chunks there are is known once the submitter has sealed it.
///
/// Chunks mostly finish in order, so each part of one is decoded straight onto the end of the
/// result, which is allocated once; only a part that arrives before an earlier one (another
/// worker's chunk ahead of it is not in yet) waits on the side. The memory a part is decoded
/// into is prefaulted first where it is fresh and spans a few pages (see [`Prefault`]): the
/// kernel then maps the pages in a loop rather than one fault at a time.
pub(crate) struct Gather<T: Task, Out> {
    parts: Mutex<Parts<T::Output>>,
    /// Signalled at a delivery while a submitter that paces its chunks waits for one.
    progress: Condvar,
    /// Set while a delivery (on the result thread) waits for `parts`: a submitter prefaulting
    /// the vector's pages then leaves the lock to it.
    delivering: AtomicBool,
    cell: Arc<Cell<Out>>,
    collect: Collect<T::Output, Out>,
    /// The calls in each chunk but the last.
    chunksize: usize,
}

/// How a job's outputs, in input order, become its result: a map's vector of them, whose
/// failures name their item, or an apply's one output.
pub(crate) struct Collect<R, Out> {
    finish: fn(Vec<R>) -> Result<Out, Error>,
    numbered: bool,
}

impl<R> Collect<R, Vec<R>> {
    /// A map's outputs.
    pub(crate) fn items() -> Self {
        Collect {
            finish: Ok,
            numbered: true,
        }
    }
}

impl<R> Collect<R, R> {
    /// An apply's output.
    pub(crate) fn one() -> Self {
        Collect {
            finish: |mut outputs| {
                outputs.pop().ok_or_else(|| {
                    crate::wire::CodecError::Malformed("a task sent no result".to_owned()).into()
                })
            },
            numbered: false,
        }
    }
}

/// The most values a gather makes room for before the first arrives.
const PREALLOCATE: usize = 1 << 24;

struct Parts<R> {
    /// The values of the calls before `next`, in order.
    values: Vec<R>,
    /// The chunk and call whose values come next.
    next: (usize, u32),
    /// The index in `values`' capacity up to which the pages have been prefaulted, by a waiting
    /// submitter or a delivery.
    prefaulted: usize,
    /// Parts that arrived before their turn, by where they start.
    early: BTreeMap<(usize, u32), (Part, Vec<R>)>,
    /// The failure of the earliest call that failed so far, by chunk and call.
    first_error: Option<((usize, u32), Error)>,
    /// Chunks whose last part is in.
    delivered: usize,
    /// Whether the submitter waits on `progress` (a notification is a system call, so it is
    /// made only then).
    submitter_waits: bool,
    /// The number of chunks, once all are submitted.
    expected: Option<usize>,
    completed: bool,
}

/// Pages of the result vector a waiting submitter prefaults per hold of the lock: few, so that a
/// delivery waiting for the lock is not held up for long.
const AHEAD_PAGES: usize = 16;

impl<R> Parts<R> {
    fn with_capacity(values: usize) -> Self {
        let mut values = Vec::with_capacity(values);
        // Room already mapped in (memory the allocator had used) needs no prefaulting.
        let prefaulted =
            if Prefault::ResultVector.is_on() && mem::is_fresh(values.spare_capacity_mut()) {
                0
            } else {
                values.capacity()
            };
        Parts {
            values,
            next: (0, 0),
            prefaulted,
            early: BTreeMap::new(),
            first_error: None,
            delivered: 0,
            submitter_waits: false,
            expected: None,
            completed: false,
        }
    }

    /// Prefaults up to `pages` pages of the values' free room not prefaulted yet, so that each is
    /// ready when a chunk's values are decoded into it; returns whether
    /// any was left to prefault.
    fn prefault_ahead(&mut self, pages: usize) -> bool {
        let size = std::mem::size_of::<R>();
        if size == 0 {
            return false;
        }
        let from = self.prefaulted.saturating_sub(self.values.len());
        let stride = (mem::page_size() / size).max(1);
        let to = from.saturating_add(pages.saturating_mul(stride));
        self.prefault_room(Prefault::ResultVector, to)
    }

    /// For `by`, prefaults the pages of the values' free room up to its `to`th slot that are not
    /// prefaulted yet; returns whether any was left to prefault (never, if `by` is off).
    fn prefault_room(&mut self, by: Prefault, to: usize) -> bool {
        let len = self.values.len();
        let from = self.prefaulted.saturating_sub(len);
        let free = self.values.spare_capacity_mut();
        let to = to.min(free.len());
        if from >= to || !by.is_on() {
            return false;
        }
        mem::prefault(by, &mut free[from..to]);
        self.prefaulted = len + to;
        true
    }

    /// Moves the parts set aside whose turn has come onto the end of the values.
    fn catch_up(&mut self) {
        while let Some((part, mut values)) = self.early.remove(&self.next) {
            self.values.append(&mut values);
            self.next = part.next();
        }
    }
}

impl<T: Task, Out> Gather<T, Out> {
    /// A gather of `len` values in all, in chunks of `chunksize` (room for at most
    /// [`PREALLOCATE`] is made at once; beyond that the vector grows as values arrive).
    pub(crate) fn new(
        cell: Arc<Cell<Out>>,
        len: usize,
        chunksize: usize,
        collect: Collect<T::Output, Out>,
    ) -> Arc<Self> {
        Arc::new(Gather {
            parts: Mutex::new(Parts::with_capacity(len.min(PREALLOCATE))),
            progress: Condvar::new(),
            delivering: AtomicBool::new(false),
            cell,
            collect,
            chunksize,
        })
    }

    /// Waits until at least `chunks` chunks have been delivered.
    ///
    /// Meanwhile the submitter prefaults the pages of the result vector's free room, a few per
    /// hold of the lock (the `result_vector` use). A large map's vector is fresh memory: mapping
    /// its pages would otherwise all fall to the result thread as it decodes, the pool's busiest
    /// thread, while this one sleeps.
    pub(crate) fn wait_delivered(&self, chunks: usize) {
        let mut parts = lock(&self.parts);
        while parts.delivered < chunks {
            let prefaulting = !self.delivering.load(Ordering::Relaxed);
            if prefaulting && parts.prefault_ahead(AHEAD_PAGES) {
                drop(parts);
                parts = lock(&self.parts);
                continue;
            }
            parts.submitter_waits = true;
            parts = self
                .progress
                .wait(parts)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        parts.submitter_waits = false;
    }

    /// Every chunk is submitted: `chunks` in all (none: the result is ready at once).
    pub(crate) fn seal(&self, chunks: usize) {
        let mut parts = lock(&self.parts);
        parts.expected = Some(chunks);
        self.complete_if_done(parts);
    }

    fn complete_if_done(&self, mut parts: std::sync::MutexGuard<'_, Parts<T::Output>>) {
        if parts.completed || parts.expected != Some(parts.delivered) {
            return;
        }
        parts.completed = true;
        let outcome = match parts.first_error.take() {
            Some((_, error)) => Err(error),
            None => (self.collect.finish)(std::mem::take(&mut parts.values)),
        };
        drop(parts);
        self.cell.complete(outcome);
    }
}

impl<T: Task, Out> Gather<T, Out> {
    /// The index in the input of the first call of `part`.
    fn first_item(&self, part: Part) -> usize {
        part.index * self.chunksize + part.first as usize
    }
}

impl<T: Task, Out: Send> Sink for Gather<T, Out> {
    fn deliver(&self, part: Part, pid: i32, outcome: ChunkOutcome) {
        self.delivering.store(true, Ordering::Relaxed);
        let mut parts = lock(&self.parts);
        self.delivering.store(false, Ordering::Relaxed);
        let in_turn = parts.next == (part.index, part.first);
        let mut values = if in_turn {
            parts.prefault_room(Prefault::ResultVector, part.count as usize);
            std::mem::take(&mut parts.values)
        } else {
            Vec::with_capacity(part.count as usize)
        };
        let first_item = self.collect.numbered.then(|| self.first_item(part));
        let error = decode_values::<T>(part.count, pid, first_item, outcome, &mut values).err();
        if in_turn {
            parts.values = values;
            parts.next = part.next();
            parts.catch_up();
        } else {
            parts.early.insert((part.index, part.first), (part, values));
        }
        if let Some((call, error)) = error.map(|boxed| *boxed) {
            let at = (part.index, part.first + call);
            if parts
                .first_error
                .as_ref()
                .is_none_or(|(first, _)| at < *first)
            {
                parts.first_error = Some((at, error));
            }
        }
        if part.last {
            parts.delivered += 1;
            // The submitter waits for whole chunks.
            if parts.submitter_waits {
                self.progress.notify_one();
            }
        }
        self.complete_if_done(parts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_set_aside_join_the_values_in_input_order() {
        let mut parts = Parts::<u64>::with_capacity(0);
        parts.early.insert((2, 0), (Part::whole(2, 2), vec![4, 5]));
        parts.early.insert((1, 0), (Part::whole(1, 2), vec![2, 3]));
        parts.catch_up();
        assert!(parts.values.is_empty(), "chunk 0 is not in yet");
        parts.values.extend([0, 1]);
        parts.next = Part::whole(0, 2).next();
        parts.catch_up();
        assert_eq!(parts.values, [0, 1, 2, 3, 4, 5]);
        assert_eq!(parts.next, (3, 0));
        assert!(parts.early.is_empty());
    }

    #[test]
    fn a_waiting_submitter_prefaults_the_free_room_a_few_pages_at_a_time_to_its_end() {
        if !Prefault::ResultVector.is_on() {
            eprintln!("skipped: {} turns `result_vector` off", mem::SWITCH);
            return;
        }
        let per_page = mem::page_size() / 8;
        let mut parts = Parts::<u64>::with_capacity(10 * per_page);
        // As for fresh memory, whatever the allocator gave.
        parts.prefaulted = 0;
        parts.values.extend(0..per_page as u64 / 2);
        let pages = std::iter::from_fn(|| parts.prefault_ahead(3).then_some(())).count();
        // The free room starts half a page in: 10 page strides cover it, 3 at a time.
        assert_eq!(pages, 4);
        assert_eq!(parts.prefaulted, parts.values.capacity());
        assert!(!parts.prefault_ahead(3));
        assert_eq!(
            parts.values.len(),
            per_page / 2,
            "prefaulting adds no values"
        );
        assert!(
            !Parts::<()>::with_capacity(1000).prefault_ahead(3),
            "no pages to prefault"
        );
    }
}
