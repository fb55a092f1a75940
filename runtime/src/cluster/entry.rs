//! What travels through Redis: a chunk (the task stream's entry: a [`ChunkHead`] and the packed
//! arguments) and a result part (the reply stream's entry: a [`PartHead`] and the encoded
//! outcomes), each signed with the pool's key, and the task fingerprint a chunk carries.

use super::auth::Signer;
use super::blob::{self, Pieces};
use super::engine::StreamEntry;
use super::error::ClusterError;
use crate::task::registry::TaskEntry;
use crate::wire;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The header of a chunk: who asked, which chunk of which job, and what to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ChunkHead {
    /// The caller's id; its reply stream and heartbeat are named after it.
    pub(crate) caller: String,
    pub(crate) job: u64,
    pub(crate) index: u64,
    pub(crate) task: String,
    pub(crate) count: u32,
    /// The task's fingerprint in the caller's build (see [`fingerprint`]).
    pub(crate) fingerprint: [u8; 16],
    /// The chunk's call the entry's first packed arguments are for: 0, or the calls a lost node
    /// had answered when the chunk was queued again.
    pub(crate) offset: u32,
    /// How many times the chunk was queued again after a node was lost.
    pub(crate) attempt: u32,
    /// How many times it may be ([`Lost::Retry`](super::Lost::Retry)); 0 fails it at once.
    pub(crate) retries: u32,
    /// Where the arguments are, when too large to travel in the entry.
    pub(crate) pieces: Option<Pieces>,
}

/// What a result part holds: the outcomes of its calls, or why they all failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum PartKind {
    /// The outcomes follow, one per call, as the local pool writes them.
    Outcomes,
    /// The node's local worker process holding the calls ended: killed by signal `-code`, or
    /// exited with `code`.
    Died { pid: i32, code: i32 },
    /// The calls failed together.
    Failed(ClusterError),
}

/// The header of a result part: calls `first .. first + count` of chunk `index` of job `job`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PartHead {
    pub(crate) job: u64,
    pub(crate) index: u64,
    pub(crate) first: u32,
    pub(crate) count: u32,
    /// Whether the part ends its chunk.
    pub(crate) last: bool,
    /// The local worker process that ran the calls (0 when none did).
    pub(crate) pid: i32,
    pub(crate) kind: PartKind,
    /// Where the outcomes are, when too large to travel in the entry.
    pub(crate) pieces: Option<Pieces>,
}

/// A signed entry: its header and body, encoded, and their tag.
pub(crate) struct Signed {
    pub(crate) head: Vec<u8>,
    pub(crate) tag: Vec<u8>,
}

/// Encodes `head` and signs it together with `body`.
pub(crate) fn seal<H: Serialize>(signer: &Signer, head: &H, body: &[u8]) -> Signed {
    // The headers hold only strings, numbers and cluster errors, which always encode.
    let head = wire::encode(head).expect("a header always encodes");
    let tag = signer.sign(&[&head, body]);
    Signed { head, tag }
}

/// The header of a signed entry, if its tag is good and it decodes.
pub(crate) fn open<H: serde::de::DeserializeOwned>(
    signer: &Signer,
    head: &[u8],
    body: &[u8],
    tag: &[u8],
) -> Option<H> {
    if !signer.verify(&[head, body], tag) {
        return None;
    }
    wire::decode(head).ok()
}

/// A header that may say where its entry's body is stored in pieces.
pub(crate) trait Head: serde::de::DeserializeOwned {
    fn pieces(&self) -> Option<&Pieces>;
}

impl Head for ChunkHead {
    fn pieces(&self) -> Option<&Pieces> {
        self.pieces.as_ref()
    }
}

impl Head for PartHead {
    fn pieces(&self) -> Option<&Pieces> {
        self.pieces.as_ref()
    }
}

/// The header and body of a signed entry (header in field `head`, body inline in field `body`
/// or in the pieces its header names, tag in `h`), if the tag is good; the pieces are loaded,
/// not deleted. Errors only when Redis fails.
pub(crate) fn open_entry<H: Head>(
    signer: &Signer,
    con: &mut redis::Connection,
    entry: &mut StreamEntry,
    head: &str,
    body: &str,
) -> Result<Option<(H, Vec<u8>)>, ClusterError> {
    let inline = entry.fields.remove(body).unwrap_or_default();
    let head_bytes = entry.field(head).to_vec();
    let tag = entry.field("h").to_vec();
    // Unverified: only to find the pieces, whose body the tag then covers.
    let stored = wire::decode::<H>(&head_bytes)
        .ok()
        .and_then(|h| h.pieces().cloned());
    let body = match stored {
        Some(pieces) => match blob::load(con, &pieces)? {
            Some(body) => body,
            None => return Ok(None),
        },
        None => inline,
    };
    Ok(open::<H>(signer, &head_bytes, &body, &tag).map(|head| (head, body)))
}

/// The fingerprint of a task in this build: its name, argument and output types and sizes, this
/// crate's version and the target. Two builds with the same fingerprint read each other's packed
/// values.
pub(crate) fn fingerprint(entry: &TaskEntry) -> [u8; 16] {
    let mut hash = Sha256::new();
    for part in [
        entry.name(),
        &entry.signature(),
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS,
        if cfg!(target_endian = "little") {
            "le"
        } else {
            "be"
        },
    ] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    let mut out = [0; 16];
    out.copy_from_slice(&hash.finalize()[..16]);
    out
}
