//! A node's way back: the sink its local pool delivers each part of a chunk to, and the
//! publisher thread that sends the parts to Redis through the fenced script, in order, so that
//! the local pool's result thread never waits on the network.

use super::engine::Engine;
use super::entry::{PartHead, PartKind};
use crate::pool::remote::{outcomes, ChunkFailure, ChunkOutcome, Part, Sink};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A part on its way to Redis.
pub(crate) struct Outgoing {
    /// The caller's reply stream.
    reply: Arc<str>,
    /// The chunk's entry id in the task stream.
    entry: Arc<str>,
    head: PartHead,
    outcomes: Vec<u8>,
}

/// Where the local pool delivers the parts of one chunk taken from the task stream.
pub(crate) struct ChunkSink {
    pub(crate) reply: Arc<str>,
    pub(crate) entry: Arc<str>,
    pub(crate) job: u64,
    pub(crate) index: u64,
    /// The chunk's call that the entry's first arguments are for.
    pub(crate) offset: u32,
    pub(crate) out: Mutex<Sender<Outgoing>>,
}

impl Sink for ChunkSink {
    fn deliver(&self, part: Part, pid: i32, outcome: ChunkOutcome) {
        let (kind, bytes) = match &outcome {
            Ok(frame) => (PartKind::Outcomes, outcomes(frame).to_vec()),
            Err(ChunkFailure::Died { pid, code }) => (
                PartKind::Died {
                    pid: *pid,
                    code: *code,
                },
                Vec::new(),
            ),
            Err(other) => (
                PartKind::Failed(super::ClusterError::Engine(other.to_error().to_string())),
                Vec::new(),
            ),
        };
        let head = PartHead {
            job: self.job,
            index: self.index,
            first: self.offset + part.first,
            count: part.count,
            last: part.last,
            pid,
            kind,
        };
        let outgoing = Outgoing {
            reply: self.reply.clone(),
            entry: self.entry.clone(),
            head,
            outcomes: bytes,
        };
        // The publisher ends only with the node, whose pool is gone by then.
        let _ = crate::util::lock(&self.out).send(outgoing);
    }
}

/// The publisher thread: sends each part as `me`, reconnecting when the connection drops; a
/// part the fence refuses (the chunk was claimed from this node) is dropped. Counts down
/// `in_flight` at each chunk's last part.
pub(crate) fn publish(
    engine: Engine,
    me: String,
    parts: Receiver<Outgoing>,
    in_flight: Arc<AtomicUsize>,
) {
    let mut con = None;
    for part in parts {
        loop {
            if con.is_none() {
                con = engine
                    .reconnect(Instant::now() + Duration::from_secs(30))
                    .ok();
            }
            let Some(c) = con.as_mut() else { continue };
            match engine.publish(c, &part.reply, &part.entry, &me, &part.head, &part.outcomes) {
                Ok(_) => break,
                Err(_) => con = None,
            }
        }
        if part.head.last {
            in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
