//! A node's way back: the sink its local pool delivers each part of a chunk to, and the
//! publisher thread that sends the parts to Redis through the fenced script, in order, so that
//! the local pool's result thread never waits on the network.

use super::blob::{self, Pieces, INLINE_MAX};
use super::engine::Engine;
use super::entry::{PartHead, PartKind};
use super::error::ClusterError;
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
    /// The pieces of the chunk's arguments, on its last part: deleted once it is published.
    args_pieces: Option<Pieces>,
}

/// Where the local pool delivers the parts of one chunk taken from the task stream.
pub(crate) struct ChunkSink {
    pub(crate) reply: Arc<str>,
    pub(crate) entry: Arc<str>,
    pub(crate) job: u64,
    pub(crate) index: u64,
    /// The chunk's call that the entry's first arguments are for.
    pub(crate) offset: u32,
    /// Where the chunk's arguments were stored, if in pieces.
    pub(crate) args_pieces: Option<Pieces>,
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
            pieces: None,
        };
        let outgoing = Outgoing {
            reply: self.reply.clone(),
            entry: self.entry.clone(),
            head,
            outcomes: bytes,
            args_pieces: if part.last {
                self.args_pieces.clone()
            } else {
                None
            },
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
    for mut part in parts {
        loop {
            if con.is_none() {
                con = engine
                    .reconnect(Instant::now() + Duration::from_secs(30))
                    .ok();
            }
            let Some(c) = con.as_mut() else { continue };
            match publish_one(&engine, c, &me, &mut part) {
                Ok(()) => break,
                Err(_) => con = None,
            }
        }
        if part.head.last {
            in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Publishes one part, its outcomes in pieces if they are large; then deletes what is no longer
/// needed: the pieces of a part the fence refused, the arguments' pieces after the last part.
fn publish_one(
    engine: &Engine,
    con: &mut redis::Connection,
    me: &str,
    part: &mut Outgoing,
) -> Result<(), ClusterError> {
    if part.outcomes.len() > INLINE_MAX && part.head.pieces.is_none() {
        let name = format!("{me}:{}:{}", part.entry, part.head.first);
        part.head.pieces = Some(blob::store(engine, con, &name, &part.outcomes)?);
    }
    let (reply, entry) = (&part.reply, &part.entry);
    let published = engine.publish(con, reply, entry, me, &part.head, &part.outcomes)?;
    if let (false, Some(pieces)) = (published, &part.head.pieces) {
        blob::delete(con, pieces)?;
    }
    if let (true, Some(pieces)) = (published, &part.args_pieces) {
        blob::delete(con, pieces)?;
    }
    Ok(())
}
