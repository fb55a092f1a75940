//! Liveness: heartbeat keys with a TTL kept by Redis (so no clocks are compared), refreshed by a
//! thread on which no task runs, and the reaper, which every caller and node runs: it claims the
//! chunks of a node whose heartbeat expired and fails their unanswered calls with
//! [`ClusterError::WorkerLost`] naming the node. The claim moves the chunks' ownership, so the
//! fenced publish refuses the lost node's late results.

use super::blob::{self, INLINE_MAX};
use super::engine::{entries, text, Engine};
use super::entry::{open_entry, ChunkHead, PartHead, PartKind};
use super::error::ClusterError;
use super::keys::GROUP;
use super::pool::{Inner, CLOSED, TERMINATED};
use crate::util::lock;
use redis::Value;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often heartbeats are refreshed and the reaper runs.
pub(crate) const BEAT: Duration = Duration::from_secs(1);
/// How long a node's heartbeat lives without a refresh: a node silent this long is lost.
pub(crate) const NODE_TTL: Duration = Duration::from_secs(3);
/// How long a caller's heartbeat lives: nodes drop the chunks of a caller silent this long.
pub(crate) const CALLER_TTL: Duration = Duration::from_secs(10);
/// A chunk is claimed from a lost node only once it has been idle this long, so that two
/// reapers never both claim it.
const CLAIM_IDLE: Duration = Duration::from_millis(1000);

/// Sets the heartbeat of `id` to live `ttl`.
pub(crate) fn beat(
    engine: &Engine,
    con: &mut redis::Connection,
    id: &str,
    ttl: Duration,
) -> redis::RedisResult<()> {
    redis::cmd("SET")
        .arg(engine.keys.heartbeat(id))
        .arg(1)
        .arg("PX")
        .arg(ttl.as_millis() as u64)
        .query(con)
}

/// One caller heartbeat, also keeping its reply stream from expiring.
pub(crate) fn caller_beat_once(inner: &Inner) -> Result<(), ClusterError> {
    let mut con = inner.engine.connection()?;
    beat(&inner.engine, &mut con, &inner.id, CALLER_TTL)?;
    Ok(())
}

/// The caller's heartbeat thread: beats, keeps the reply stream alive and reaps, until the
/// pool's result thread is done.
pub(crate) fn run_caller(inner: std::sync::Arc<Inner>) {
    let mut con = None;
    loop {
        let phase = inner.phase.load(Ordering::Acquire);
        if phase == TERMINATED || (phase == CLOSED && lock(&inner.jobs).is_empty()) {
            return;
        }
        if con.is_none() {
            con = inner.engine.connection().ok();
        }
        if let Some(c) = con.as_mut() {
            let kept = beat(&inner.engine, c, &inner.id, CALLER_TTL).and_then(|()| {
                redis::cmd("PEXPIRE")
                    .arg(&inner.reply)
                    .arg(super::engine::REPLY_TTL.as_millis() as u64)
                    .query::<()>(c)
            });
            if kept.is_err() || reap(&inner.engine, c, &inner.id).is_err() {
                con = None;
            } else {
                let live = live_processes(&inner.engine, c);
                inner.live_processes.store(live, Ordering::Relaxed);
            }
        }
        std::thread::sleep(BEAT);
    }
}

/// The fields of a reply that lists `name value` pairs.
fn pairs(value: Value) -> Vec<(String, Value)> {
    let items = match value {
        Value::Array(items) => items,
        Value::Map(map) => {
            return map
                .into_iter()
                .filter_map(|(k, v)| Some((text(&k)?, v)))
                .collect()
        }
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    let mut items = items.into_iter();
    while let (Some(name), Some(value)) = (items.next(), items.next()) {
        if let Some(name) = text(&name) {
            out.push((name, value));
        }
    }
    out
}

/// Whether the heartbeat of `id` is alive.
pub(crate) fn alive(
    engine: &Engine,
    con: &mut redis::Connection,
    id: &str,
) -> redis::RedisResult<bool> {
    redis::cmd("EXISTS")
        .arg(engine.keys.heartbeat(id))
        .query(con)
}

/// The consumers of the task stream's group: name, pending entries, idle milliseconds.
fn consumers(
    engine: &Engine,
    con: &mut redis::Connection,
) -> redis::RedisResult<Vec<(String, i64, i64)>> {
    let reply: Value = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(engine.keys.tasks())
        .arg(GROUP)
        .query(con)?;
    let Value::Array(list) = reply else {
        return Ok(Vec::new());
    };
    Ok(list
        .into_iter()
        .map(|c| {
            let (mut name, mut pending, mut idle) = (String::new(), 0, 0);
            for (key, value) in pairs(c) {
                match (key.as_str(), value) {
                    ("name", v) => name = text(&v).unwrap_or_default(),
                    ("pending", Value::Int(n)) => pending = n,
                    ("idle", Value::Int(n)) => idle = n,
                    _ => {}
                }
            }
            (name, pending, idle)
        })
        .collect())
}

/// Claims, as `me`, the chunks of every consumer whose heartbeat expired and fails their
/// unanswered calls with [`ClusterError::WorkerLost`]; forgets such consumers once they hold
/// nothing.
pub(crate) fn reap(
    engine: &Engine,
    con: &mut redis::Connection,
    me: &str,
) -> Result<(), ClusterError> {
    for (node, pending, idle) in consumers(engine, con)? {
        if node == me || alive(engine, con, &node)? {
            continue;
        }
        if pending == 0 {
            if idle > CALLER_TTL.as_millis() as i64 {
                redis::cmd("XGROUP")
                    .arg("DELCONSUMER")
                    .arg(engine.keys.tasks())
                    .arg(GROUP)
                    .arg(&node)
                    .query::<()>(con)?;
                redis::cmd("HDEL")
                    .arg(engine.keys.workers())
                    .arg(&node)
                    .query::<()>(con)?;
            }
            continue;
        }
        fail_lost(engine, con, me, &node)?;
    }
    Ok(())
}

/// Claims the chunks `node` holds and fails their unanswered calls, naming it.
fn fail_lost(
    engine: &Engine,
    con: &mut redis::Connection,
    me: &str,
    node: &str,
) -> Result<(), ClusterError> {
    let held: Value = redis::cmd("XPENDING")
        .arg(engine.keys.tasks())
        .arg(GROUP)
        .arg("-")
        .arg("+")
        .arg(100)
        .arg(node)
        .query(con)?;
    let Value::Array(held) = held else {
        return Ok(());
    };
    let ids: Vec<String> = held
        .iter()
        .filter_map(|e| match e {
            Value::Array(fields) => fields.first().and_then(text),
            _ => None,
        })
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let claimed: Value = redis::cmd("XCLAIM")
        .arg(engine.keys.tasks())
        .arg(GROUP)
        .arg(me)
        .arg(CLAIM_IDLE.as_millis() as u64)
        .arg(&ids)
        .query(con)?;
    for mut entry in entries(claimed) {
        let opened = open_entry::<ChunkHead>(&engine.signer, con, &mut entry, "m", "a")?;
        let Some((head, args)) = opened else {
            super::worker::discard(engine, con, &entry.id, None)?;
            continue;
        };
        let answered: Option<u32> = redis::cmd("HGET")
            .arg(engine.keys.progress())
            .arg(&entry.id)
            .query(con)?;
        let first = (head.offset + answered.unwrap_or(0)).min(head.count);
        let retried = head.attempt < head.retries && first < head.count;
        if retried && retry(engine, con, me, &entry.id, &head, &args, first)? {
            continue;
        }
        let part = PartHead {
            job: head.job,
            index: head.index,
            first,
            count: head.count - first,
            last: true,
            pid: 0,
            kind: PartKind::Failed(ClusterError::WorkerLost {
                node: node.to_owned(),
            }),
            pieces: None,
        };
        let reply = engine.keys.reply(&head.caller);
        engine.publish(con, &reply, &entry.id, me, &part, &[])?;
        if let Some(pieces) = &head.pieces {
            blob::delete(con, pieces)?;
        }
    }
    Ok(())
}

/// Queues the calls of chunk `head` (entry `id`, arguments `args`) from call `first` on again,
/// as a new entry; `false` if its arguments cannot be split there (the calls then fail).
fn retry(
    engine: &Engine,
    con: &mut redis::Connection,
    me: &str,
    id: &str,
    head: &ChunkHead,
    args: &[u8],
    first: u32,
) -> Result<bool, ClusterError> {
    let Ok(task) = crate::task::registry::lookup(&head.task) else {
        return Ok(false);
    };
    let mut rest = args;
    if task.skip_args(&mut rest, first - head.offset).is_err() {
        return Ok(false);
    }
    let mut again = ChunkHead {
        offset: first,
        attempt: head.attempt + 1,
        pieces: None,
        ..head.clone()
    };
    if rest.len() > INLINE_MAX {
        let name = format!("{id}:{}", again.attempt);
        again.pieces = Some(blob::store(engine, con, &name, rest)?);
    }
    engine.requeue(con, id, me, &again, rest)?;
    if let Some(pieces) = &head.pieces {
        blob::delete(con, pieces)?;
    }
    Ok(true)
}

/// The worker processes of the nodes whose heartbeat is alive.
pub(crate) fn live_processes(engine: &Engine, con: &mut redis::Connection) -> usize {
    let Ok(nodes) = redis::cmd("HGETALL")
        .arg(engine.keys.workers())
        .query::<Vec<(String, usize)>>(con)
    else {
        return 0;
    };
    nodes
        .into_iter()
        .filter(|(node, _)| alive(engine, con, node).unwrap_or(false))
        .map(|(_, processes)| processes)
        .sum()
}
