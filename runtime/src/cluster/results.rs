//! The caller's result thread: it reads the caller's reply stream, hands each result part to
//! its job's sink (so callbacks run here, as on the local pool's result thread), and fails the
//! calls in flight when the pool is terminated or the engine is lost for good (no hang).

use super::blob;
use super::engine::{is_lost, read_entries, StreamEntry};
use super::entry::{open_entry, PartHead};
use super::error::ClusterError;
use super::jobs::Delivery;
use super::pool::{Inner, CLOSED, TERMINATED};
use crate::error::{Error, PoolError};
use crate::util::lock;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one read waits for results before the thread looks at the pool's phase again.
const BLOCK: Duration = Duration::from_millis(100);
/// Result parts read at once.
const BATCH: usize = 1024;

/// The result thread: returns once the pool is terminated, or closed with nothing in flight.
pub(crate) fn run(inner: Arc<Inner>, mut con: redis::Connection) {
    let mut last = "0".to_owned();
    loop {
        match inner.phase.load(Ordering::Acquire) {
            TERMINATED => return terminate(&inner, &mut con),
            CLOSED if lock(&inner.jobs).is_empty() => return,
            _ => {}
        }
        let read = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&inner.reply)
            .arg(&last)
            .query::<redis::Value>(&mut con);
        let entries = match read {
            Ok(value) => read_entries(value),
            Err(e) if is_lost(&e) => match recover(&inner, &e.to_string()) {
                Some(back) => {
                    con = back;
                    continue;
                }
                None => return fail_all(&inner, &PoolError::Terminated.into()),
            },
            Err(e) => {
                fail_all(&inner, &ClusterError::from(e).into());
                std::thread::sleep(BLOCK);
                continue;
            }
        };
        let before = last.clone();
        for entry in entries {
            let id = entry.id.clone();
            match accept(&inner, &mut con, entry) {
                Ok(delivery) => delivery.into_iter().for_each(Delivery::deliver),
                // Redis failed as pieces were read: the next read notices, and starts here.
                Err(_) => break,
            }
            last = id;
        }
        if last != before {
            // Results read are not needed again; a failure here only leaves them to the TTL.
            let _ = redis::cmd("XTRIM")
                .arg(&inner.reply)
                .arg("MINID")
                .arg(after(&last))
                .query::<()>(&mut con);
        }
    }
}

/// The delivery of the part in `entry` if it is good: signed with the key, and next in its
/// chunk (a forged, duplicate or late part is dropped). Its pieces, if any, are read and
/// deleted. An error if Redis failed.
fn accept(
    inner: &Inner,
    con: &mut redis::Connection,
    mut entry: StreamEntry,
) -> Result<Option<Delivery>, ClusterError> {
    let opened = open_entry::<PartHead>(&inner.engine.signer, con, &mut entry, "p", "o")?;
    let Some((head, outcomes)) = opened else {
        return Ok(None);
    };
    if let Some(pieces) = &head.pieces {
        blob::delete(con, pieces)?;
    }
    Ok(lock(&inner.jobs).accept(head, &outcomes))
}

/// The stream id right after `id` (`ms-seq`), so that trimming to it drops `id` too.
fn after(id: &str) -> String {
    match id.split_once('-').map(|(ms, seq)| (ms, seq.parse::<u64>())) {
        Some((ms, Ok(seq))) => format!("{ms}-{}", seq.saturating_add(1)),
        _ => id.to_owned(),
    }
}

/// Reconnects after the connection was lost (`why`): until the deadline, then every call in
/// flight fails with [`ClusterError::EngineLost`]; a Redis that came back without the pool's
/// data (another epoch) fails them at once. `None` once the pool is terminated, or closed with
/// nothing in flight.
fn recover(inner: &Inner, why: &str) -> Option<redis::Connection> {
    loop {
        match inner.phase.load(Ordering::Acquire) {
            TERMINATED => return None,
            CLOSED if lock(&inner.jobs).is_empty() => return None,
            _ => {}
        }
        let deadline = Instant::now() + inner.deadline;
        let mut con = match inner.engine.reconnect(deadline) {
            Ok(con) => con,
            Err(e) => {
                fail_all(inner, &e.into());
                continue;
            }
        };
        let epoch = inner.engine.prepare(&mut con);
        let mut known = lock(&inner.epoch);
        match epoch {
            Ok(epoch) if epoch == *known => return Some(con),
            Ok(epoch) => {
                *known = epoch;
                drop(known);
                let lost = format!("Redis restarted without the pool's queued work ({why})");
                fail_all(inner, &ClusterError::EngineLost(lost).into());
                return Some(con);
            }
            Err(_) => continue,
        }
    }
}

/// Fails every call in flight with `error`.
fn fail_all(inner: &Inner, error: &Error) {
    let (done, _) = lock(&inner.jobs).fail_all(error);
    done.into_iter().for_each(Delivery::deliver);
}

/// Fails every call in flight as terminated and deletes this caller's queued chunks.
fn terminate(inner: &Inner, con: &mut redis::Connection) {
    let (done, entries) = lock(&inner.jobs).fail_all(&PoolError::Terminated.into());
    if !entries.is_empty() {
        // A node that took a chunk already finishes it; its results then expire unread.
        let _ = redis::cmd("XDEL")
            .arg(inner.engine.keys.tasks())
            .arg(&entries)
            .query::<()>(con);
        // The pieces of this caller's large arguments go too (a node reading them meanwhile
        // finds them missing and drops the chunk); what a failure here leaves, the TTL takes.
        let _ = blob::delete_all(con, &inner.engine.keys.blob(&format!("{}:*", inner.id)));
    }
    done.into_iter().for_each(Delivery::deliver);
}
