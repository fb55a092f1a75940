//! The pool's door for chunks packed elsewhere, which the cluster pool uses and nothing on the
//! local hot path goes through: a node of a cluster hands the chunks it takes from the engine to
//! its local pool as they came ([`Pool::submit_packed`]), and a caller assembles the parts that
//! come back with the local pool's own sinks. What crosses the door is re-exported here, so the
//! pool's modules stay private.

pub(crate) use super::async_result::Cell;
pub(crate) use super::chunk::{ChunkFailure, ChunkOutcome, Part, Sink};
pub(crate) use super::gather::{Collect, Gather};
pub(crate) use super::imap::Stream;
pub(crate) use super::spare::Spare;

use super::channel::{self, FrameBytes, ResultFrame, ResultHeader};
use super::chunk::Job;
use super::Pool;
use std::sync::Arc;

impl Pool {
    /// Queues `count` calls of the task registered as `task`, their arguments already packed
    /// (as [`Task::pack_args`](crate::task::Task::pack_args) packs them) in `args`; their
    /// outcomes go to `sink` in parts, chunk index 0. A pool that is not running gives the
    /// arguments back.
    pub(crate) fn submit_packed(
        &self,
        task: &'static str,
        count: u32,
        args: Vec<u8>,
        sink: Arc<dyn Sink>,
    ) -> Result<(), Vec<u8>> {
        let job = Job {
            task,
            count,
            args,
            sink,
            index: 0,
        };
        self.shared.submit(job, false).map_err(|job| job.args)
    }
}

/// The encoded outcomes a result frame carries.
pub(crate) fn outcomes(frame: &ResultFrame) -> &[u8] {
    frame.outcomes()
}

/// A result frame holding `outcomes`, the outcomes of `count` calls from call `first` on, as a
/// sink reads it.
pub(crate) fn frame_of(first: u32, count: u32, outcomes: &[u8]) -> ResultFrame {
    let mut bytes = Vec::with_capacity(outcomes.len() + 32);
    channel::begin_results(&mut bytes);
    bytes.extend_from_slice(outcomes);
    let header = ResultHeader {
        seq: 0,
        first,
        count,
        micros: 0,
    };
    channel::finish_results(&mut bytes, header);
    // The prefix was written just above, so the frame always parses.
    ResultFrame::parse(FrameBytes::Copied(bytes)).expect("a frame with its prefix")
}
