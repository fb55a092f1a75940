//! The caller's table of jobs in flight: for each, its sink and, per chunk sent, how many of its
//! calls are answered. A result part is delivered only if it starts where its chunk's answered
//! calls end, so no call is ever answered twice; what is still unanswered when the engine is
//! lost or the pool terminated is failed from there.

use super::entry::{PartHead, PartKind};
use super::error::ClusterError;
use crate::error::{Error, PoolError};
use crate::pool::remote::{frame_of, ChunkFailure, ChunkOutcome, Part, Sink};
use std::collections::HashMap;
use std::sync::Arc;

/// A chunk sent and not fully answered.
struct Chunk {
    /// The entry id Redis gave it (empty until the send returns).
    entry: String,
    answered: u32,
    count: u32,
}

/// One job's sink and unanswered chunks.
struct Job {
    sink: Arc<dyn Sink>,
    chunks: HashMap<u64, Chunk>,
    /// Whether every chunk of the job has been sent.
    sealed: bool,
}

/// A delivery to make outside the table's lock.
pub(crate) struct Delivery {
    sink: Arc<dyn Sink>,
    part: Part,
    pid: i32,
    outcome: ChunkOutcome,
}

impl Delivery {
    pub(crate) fn deliver(self) {
        self.sink.deliver(self.part, self.pid, self.outcome);
    }
}

/// The jobs of one caller.
#[derive(Default)]
pub(crate) struct Jobs {
    jobs: HashMap<u64, Job>,
}

impl Jobs {
    /// Registers job `job`, whose parts go to `sink`.
    pub(crate) fn open(&mut self, job: u64, sink: Arc<dyn Sink>) {
        let chunks = HashMap::new();
        let sealed = false;
        self.jobs.insert(
            job,
            Job {
                sink,
                chunks,
                sealed,
            },
        );
    }

    /// Registers chunk `index` of `job`, of `count` calls, about to be sent.
    pub(crate) fn add_chunk(&mut self, job: u64, index: u64, count: u32) {
        if let Some(job) = self.jobs.get_mut(&job) {
            let entry = String::new();
            let chunk = Chunk {
                entry,
                answered: 0,
                count,
            };
            job.chunks.insert(index, chunk);
        }
    }

    /// Records the entry id chunk `index` of `job` was sent as.
    pub(crate) fn sent(&mut self, job: u64, index: u64, entry: String) {
        let chunk = self
            .jobs
            .get_mut(&job)
            .and_then(|j| j.chunks.get_mut(&index));
        if let Some(chunk) = chunk {
            chunk.entry = entry;
        }
    }

    /// Every chunk of `job` is sent.
    pub(crate) fn seal(&mut self, job: u64) {
        if let Some(state) = self.jobs.get_mut(&job) {
            state.sealed = true;
        }
        self.retire(job);
    }

    fn retire(&mut self, job: u64) {
        if self
            .jobs
            .get(&job)
            .is_some_and(|j| j.sealed && j.chunks.is_empty())
        {
            self.jobs.remove(&job);
        }
    }

    /// Whether no job is in flight.
    pub(crate) fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// The delivery of part `head` (with its outcomes), if it is the next of its chunk.
    pub(crate) fn accept(&mut self, head: PartHead, outcomes: &[u8]) -> Option<Delivery> {
        let job = self.jobs.get_mut(&head.job)?;
        let chunk = job.chunks.get_mut(&head.index)?;
        let end = head.first.checked_add(head.count)?;
        if head.first != chunk.answered || end > chunk.count || head.last != (end == chunk.count) {
            return None;
        }
        chunk.answered = end;
        let outcome = match head.kind {
            PartKind::Outcomes => Ok(frame_of(head.first, head.count, outcomes)),
            PartKind::Died { pid, code } => Err(ChunkFailure::Died { pid, code }),
            PartKind::Failed(e) => Err(ChunkFailure::Unsent(Arc::new(e.into()))),
        };
        let delivery = Delivery {
            sink: job.sink.clone(),
            part: Part {
                index: head.index as usize,
                first: head.first,
                count: head.count,
                last: head.last,
            },
            pid: head.pid,
            outcome,
        };
        if head.last {
            job.chunks.remove(&head.index);
            self.retire(head.job);
        }
        Some(delivery)
    }

    /// Fails the unanswered calls of chunk `index` of `job` with `error` (a chunk that could
    /// not be sent).
    pub(crate) fn accept_failure(
        &mut self,
        job: u64,
        index: u64,
        error: &Error,
    ) -> Option<Delivery> {
        let state = self.jobs.get_mut(&job)?;
        let chunk = state.chunks.remove(&index)?;
        let delivery = fail_chunk(&state.sink, index, &chunk, error);
        self.retire(job);
        Some(delivery)
    }

    /// Fails every unanswered call with `error`; returns the deliveries and the entry ids of the
    /// chunks failed.
    pub(crate) fn fail_all(&mut self, error: &Error) -> (Vec<Delivery>, Vec<String>) {
        let mut done = Vec::new();
        let mut entries = Vec::new();
        for job in self.jobs.values_mut() {
            for (index, chunk) in job.chunks.drain() {
                done.push(fail_chunk(&job.sink, index, &chunk, error));
                entries.push(chunk.entry);
            }
        }
        self.jobs.retain(|_, job| !job.sealed);
        entries.retain(|e| !e.is_empty());
        (done, entries)
    }
}

/// The delivery that fails the unanswered calls of `chunk` (chunk `index` of a job) with `error`.
fn fail_chunk(sink: &Arc<dyn Sink>, index: u64, chunk: &Chunk, error: &Error) -> Delivery {
    let failure = match error {
        Error::Pool(PoolError::Terminated) => ChunkFailure::Terminated,
        Error::Cluster(e) => ChunkFailure::Unsent(Arc::new(e.clone().into())),
        other => ChunkFailure::Unsent(Arc::new(ClusterError::Engine(other.to_string()).into())),
    };
    Delivery {
        sink: sink.clone(),
        part: Part {
            index: index as usize,
            first: chunk.answered,
            count: chunk.count - chunk.answered,
            last: true,
        },
        pid: 0,
        outcome: Err(failure),
    }
}
