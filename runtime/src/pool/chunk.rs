//! A chunk's way out and back: the [`Job`] the pool queues and sends to a worker, the [`Part`]s
//! of its results that come back (or the [`ChunkFailure`] that ends it), and the [`Sink`] each
//! part is delivered to, with the decoders a sink reads the outcomes with. The result thread
//! turns what it collects into [`Delivery`]s and hands them out outside the state lock, so that a
//! callback may call back into the pool.

use super::channel::{ResultFrame, ResultHeader};
use super::spare::Spare;
use crate::error::Error;
use crate::error::PoolError;
use crate::task::Task;
use crate::wire;
use std::sync::Arc;

/// A chunk of one job: `count` calls of `task` with their arguments packed in `args`.
pub(crate) struct Job {
    pub(crate) task: &'static str,
    pub(crate) count: u32,
    pub(crate) args: Vec<u8>,
    pub(crate) sink: Arc<dyn Sink>,
    /// The chunk's place in its job.
    pub(crate) index: usize,
}

/// A finished (or failed) part of a chunk on its way to its sink.
pub(super) struct Delivery {
    sink: Arc<dyn Sink>,
    part: Part,
    /// The chunk's argument buffer, which goes back with its last part.
    args: Option<Vec<u8>>,
    pid: i32,
    outcome: ChunkOutcome,
}

impl Delivery {
    /// The calls of `job` that the result frame `frame` (under `header`) answers, which do not
    /// end it.
    pub(super) fn partial(job: &Job, header: ResultHeader, pid: i32, frame: ResultFrame) -> Self {
        let part = Part {
            index: job.index,
            first: header.first,
            count: header.count,
            last: false,
        };
        Delivery {
            sink: job.sink.clone(),
            part,
            args: None,
            pid,
            outcome: Ok(frame),
        }
    }

    /// The calls of `job` from its call `first` on, which end it.
    pub(super) fn rest(job: Job, first: u32, pid: i32, outcome: ChunkOutcome) -> Delivery {
        let part = Part {
            index: job.index,
            first,
            count: job.count.saturating_sub(first),
            last: true,
        };
        Delivery {
            sink: job.sink,
            part,
            args: Some(job.args),
            pid,
            outcome,
        }
    }

    /// Gives the chunk's argument buffer (if this ends it) back to `spare`, then the outcome to
    /// the job's sink (which may wake a paced submitter that packs its next chunk into that
    /// buffer).
    pub(super) fn deliver(self, spare: &Spare) {
        if let Some(args) = self.args {
            spare.give(args);
        }
        self.sink.deliver(self.part, self.pid, self.outcome);
    }
}

/// Why a whole chunk failed without running to its end.
#[derive(Debug, Clone)]
pub(crate) enum ChunkFailure {
    /// The worker holding it ended: killed by a signal (`code < 0`) or exited with `code`.
    Died { pid: i32, code: i32 },
    /// The pool was terminated.
    Terminated,
    /// The chunk was never sent: its arguments could not be encoded, or the pool was not running.
    Unsent(Arc<Error>),
}

impl ChunkFailure {
    pub(crate) fn to_error(&self) -> Error {
        match *self {
            ChunkFailure::Died { pid, code } if code < 0 => Error::Signaled { pid, signal: -code },
            ChunkFailure::Died { pid, code } => Error::Exited { pid, code },
            ChunkFailure::Terminated => PoolError::Terminated.into(),
            ChunkFailure::Unsent(ref error) => match **error {
                Error::Pool(ref pool) => pool.clone().into(),
                Error::Codec(ref codec) => codec.clone().into(),
                #[cfg(feature = "cluster")]
                Error::Cluster(ref cluster) => cluster.clone().into(),
                ref other => std::io::Error::other(other.to_string()).into(),
            },
        }
    }
}

/// What came back for a part of a chunk: the frame with the encoded outcomes of its calls, or
/// why they failed together.
pub(crate) type ChunkOutcome = Result<ResultFrame, ChunkFailure>;

/// Which calls of a job a delivery answers: `count` calls of chunk `index`, from the chunk's call
/// `first` on; `last` if they end the chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Part {
    pub(crate) index: usize,
    pub(crate) first: u32,
    pub(crate) count: u32,
    pub(crate) last: bool,
}

impl Part {
    /// All `count` calls of chunk `index`.
    pub(crate) fn whole(index: usize, count: u32) -> Part {
        Part {
            index,
            first: 0,
            count,
            last: true,
        }
    }

    /// Where the part after this one starts: (chunk, call).
    pub(super) fn next(self) -> (usize, u32) {
        if self.last {
            (self.index + 1, 0)
        } else {
            (self.index, self.first + self.count)
        }
    }
}

/// Where the results of one job (a map, an apply, an imap) go.
pub(crate) trait Sink: Send + Sync {
    /// The calls of `part`, run by worker `pid`, finished. The parts of a chunk come in order.
    ///
    /// A sink is done with `outcome` when this returns (it drops it): its frame may lie in a
    /// worker's ring, whose room is freed in the order the frames were taken.
    fn deliver(&self, part: Part, pid: i32, outcome: ChunkOutcome);
}

/// Calls `each` with the outcome of every call of task `T` in a part of a chunk, in order; a
/// call's failure names its item, the part's first being the input's `first_item`.
pub(crate) fn decode_outcomes<T: Task>(
    count: u32,
    pid: i32,
    first_item: usize,
    outcome: ChunkOutcome,
    mut each: impl FnMut(Result<T::Output, Error>),
) {
    let frame = match outcome {
        Ok(frame) => frame,
        Err(failure) => return (0..count).for_each(|_| each(Err(failure.to_error()))),
    };
    match wire::OutcomeReader::new(frame.outcomes()) {
        Ok(mut reader) => {
            read_outcomes::<T>(&mut reader, count, pid, Some(first_item), |_, one| {
                each(one)
            })
        }
        Err(e) => (0..count).for_each(|_| each(Err(e.clone().into()))),
    }
}

/// Decodes the outputs of a part of a chunk of task `T` onto the end of `values`, all at once
/// when every call succeeded; returns the first failure if some did (`values` then misses their
/// outputs), with the place in the part of the call that failed (boxed: errors are rare and
/// large). `first_item` is the index in the input of the part's first call, for a map, whose
/// failures then name their item.
pub(crate) fn decode_values<T: Task>(
    count: u32,
    pid: i32,
    first_item: Option<usize>,
    outcome: ChunkOutcome,
    values: &mut Vec<T::Output>,
) -> Result<(), Box<(u32, Error)>> {
    let frame = outcome.map_err(|failure| Box::new((0, failure.to_error())))?;
    let reader = wire::OutcomeReader::new(frame.outcomes());
    let mut reader = reader.map_err(|e| Box::new((0, e.into())))?;
    let all = reader.take_all_values(|input| T::unpack_outputs(input, count as usize, values));
    if let Some(done) = all {
        return done.map_err(|e| Box::new((0, e.into())));
    }
    let mut first = Ok(());
    read_outcomes::<T>(&mut reader, count, pid, first_item, |call, one| match one {
        Ok(value) => values.push(value),
        Err(e) => {
            if first.is_ok() {
                first = Err(Box::new((call, e)));
            }
        }
    });
    first
}

/// Calls `each` with the place in the part and the outcome of each of the `count` calls that
/// `reader` holds, in order; a value that does not decode fails it and every call after it. A
/// call's failure names the task, and its item if the part's first is `first_item`.
fn read_outcomes<T: Task>(
    reader: &mut wire::OutcomeReader<'_>,
    count: u32,
    pid: i32,
    first_item: Option<usize>,
    mut each: impl FnMut(u32, Result<T::Output, Error>),
) {
    for done in 0..count {
        match reader.next_outcome(T::unpack_output) {
            Ok(one) => each(
                done,
                one.map_err(|failure| {
                    let item = first_item.map(|first| first + done as usize);
                    Error::from_task_failure(pid, failure).in_call(T::NAME, item)
                }),
            ),
            Err(e) => {
                (done..count).for_each(|call| each(call, Err(e.clone().into())));
                return;
            }
        }
    }
}
