//! The keys a cluster pool keeps in Redis. All carry the hash tag `{name}`, so that one pool's
//! keys (and the scripts that touch several) live on one shard of a Redis Cluster:
//!
//! | key | type | content |
//! | --- | --- | --- |
//! | `mp:{name}:tasks` | stream, group `workers` | one entry per chunk: `m` header, `a` packed arguments, `h` HMAC |
//! | `mp:{name}:r:<caller>` | stream, with a TTL | the caller's result parts: `p` header, `o` outcomes, `h` HMAC |
//! | `mp:{name}:prog` | hash | entry id → calls answered so far |
//! | `mp:{name}:hb:<id>` | string with a TTL | a node's or a caller's heartbeat |
//! | `mp:{name}:workers` | hash | node → its local processes |
//! | `mp:{name}:blob:<name>:<i>` | strings with a TTL | pieces of a body over 4 MiB |
//! | `mp:{name}:epoch` | string | set once; a Redis that comes back without it lost the pool's work |

/// The consumer group of the task stream, which every node reads in.
pub(crate) const GROUP: &str = "workers";

/// The key names of one cluster pool.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// The keys of the pool called `name`.
    pub(crate) fn new(name: &str) -> Keys {
        Keys {
            prefix: format!("mp:{{{name}}}:"),
        }
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// The stream of chunks.
    pub(crate) fn tasks(&self) -> String {
        self.key("tasks")
    }

    /// The stream of results of caller `caller`.
    pub(crate) fn reply(&self, caller: &str) -> String {
        self.key(&format!("r:{caller}"))
    }

    /// The calls answered so far of each chunk in progress.
    pub(crate) fn progress(&self) -> String {
        self.key("prog")
    }

    /// The heartbeat of node or caller `id`.
    pub(crate) fn heartbeat(&self, id: &str) -> String {
        self.key(&format!("hb:{id}"))
    }

    /// The registry of nodes and their processes.
    pub(crate) fn workers(&self) -> String {
        self.key("workers")
    }

    /// The pieces of a large body, named `name`.
    pub(crate) fn blob(&self, name: &str) -> String {
        self.key(&format!("blob:{name}"))
    }

    /// The marker of this Redis's life with the pool's data.
    pub(crate) fn epoch(&self) -> String {
        self.key("epoch")
    }
}

/// A name for this process in the cluster that no other process takes: host, pid, and a number
/// drawn from the clock.
pub(crate) fn unique_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{host}:{}:{nanos:x}", std::process::id())
}
