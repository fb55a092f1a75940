//! Bodies too large for one stream entry (arguments of a chunk, outcomes of a part, over
//! [`INLINE_MAX`]) travel as pieces of [`PIECE`] bytes in plain keys with a TTL, named in the
//! entry's signed header; the tag covers the whole body, checked once it is put back together.
//! Whoever is done with the pieces deletes them, so Redis's memory returns to its baseline; the
//! TTL bounds what a process that dies leaves behind.

use super::engine::Engine;
use super::error::ClusterError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The largest body that travels inside its entry.
pub(crate) const INLINE_MAX: usize = 4 << 20;
/// The size of a piece.
const PIECE: usize = 8 << 20;
/// How long pieces live if nobody deletes them.
const PIECE_TTL: Duration = Duration::from_secs(3600);

/// Where a body's pieces are: keys `<key>:0` to `<key>:<count - 1>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pieces {
    key: String,
    count: u32,
    len: u64,
}

impl Pieces {
    fn piece(&self, i: u32) -> String {
        format!("{}:{i}", self.key)
    }
}

/// Stores `body` in pieces named after `name`.
pub(crate) fn store(
    engine: &Engine,
    con: &mut redis::Connection,
    name: &str,
    body: &[u8],
) -> Result<Pieces, ClusterError> {
    let pieces = Pieces {
        key: engine.keys.blob(name),
        count: body.len().div_ceil(PIECE) as u32,
        len: body.len() as u64,
    };
    for (i, piece) in body.chunks(PIECE).enumerate() {
        redis::cmd("SET")
            .arg(pieces.piece(i as u32))
            .arg(piece)
            .arg("PX")
            .arg(PIECE_TTL.as_millis() as u64)
            .query::<()>(con)?;
    }
    Ok(pieces)
}

/// The body stored in `pieces`; `None` if pieces are missing (expired, or never stored: a
/// forged header) or do not add up to its length, or if that length cannot be allocated.
pub(crate) fn load(
    con: &mut redis::Connection,
    pieces: &Pieces,
) -> Result<Option<Vec<u8>>, ClusterError> {
    let Ok(len) = usize::try_from(pieces.len) else {
        return Ok(None);
    };
    let mut body = Vec::new();
    if body.try_reserve_exact(len).is_err() {
        return Ok(None);
    }
    for i in 0..pieces.count {
        let piece: Option<Vec<u8>> = redis::cmd("GET").arg(pieces.piece(i)).query(con)?;
        match piece {
            Some(piece) if body.len() + piece.len() <= len => body.extend_from_slice(&piece),
            _ => return Ok(None),
        }
    }
    Ok((body.len() == len).then_some(body))
}

/// Deletes every piece whose key matches `pattern` (a `SCAN` pattern).
pub(crate) fn delete_all(con: &mut redis::Connection, pattern: &str) -> Result<(), ClusterError> {
    let keys: Result<Vec<String>, _> = redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(1000)
        .clone()
        .iter(con)?
        .collect();
    for batch in keys?.chunks(512) {
        redis::cmd("DEL").arg(batch).query::<()>(con)?;
    }
    Ok(())
}

/// Deletes the pieces.
pub(crate) fn delete(con: &mut redis::Connection, pieces: &Pieces) -> Result<(), ClusterError> {
    let keys: Vec<String> = (0..pieces.count).map(|i| pieces.piece(i)).collect();
    if !keys.is_empty() {
        redis::cmd("DEL").arg(keys).query::<()>(con)?;
    }
    Ok(())
}
