//! The connection to Redis: how a pool or a node connects (and refuses an unsafe or evicting
//! Redis), reconnects within a deadline, reads stream entries, and publishes a result part
//! through the fenced script.

use super::auth::{check_reachable_safely, Signer};
use super::entry::{seal, ChunkHead, PartHead};
use super::error::ClusterError;
use super::keys::{unique_id, Keys, GROUP};
use redis::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a command may take before the connection counts as lost (a blocking read adds its
/// own block time).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes a result part only while the publisher still owns the chunk's entry (so a node that
/// was declared dead, and whose chunk was claimed, cannot answer a call twice), counts its calls,
/// and on the chunk's last part acknowledges and deletes the entry.
///
/// KEYS: tasks, reply stream, progress hash. ARGV: group, entry id, owner, part header,
/// outcomes, tag, calls in the part, `1` if last, the reply stream's TTL in ms.
const PUBLISH: &str = r"
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1, ARGV[3]) == 0 then
  return 0
end
redis.call('XADD', KEYS[2], '*', 'p', ARGV[4], 'o', ARGV[5], 'h', ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[9])
if ARGV[8] == '1' then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[1], ARGV[2])
  redis.call('HDEL', KEYS[3], ARGV[2])
else
  redis.call('HINCRBY', KEYS[3], ARGV[2], ARGV[7])
end
return 1
";

/// Queues a lost node's chunk again, as a new entry holding its unanswered calls, if the reaper
/// still owns the old one; deletes the old one.
///
/// KEYS: tasks, progress hash. ARGV: group, old entry id, owner, header, arguments, tag.
const REQUEUE: &str = r"
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1, ARGV[3]) == 0 then
  return 0
end
redis.call('XADD', KEYS[1], '*', 'm', ARGV[4], 'a', ARGV[5], 'h', ARGV[6])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
return 1
";

/// How long a reply stream outlives the last write to it: a dead caller's results expire.
pub(crate) const REPLY_TTL: Duration = Duration::from_secs(60);

/// How a pool or a node reaches its Redis.
#[derive(Clone)]
pub(crate) struct Engine {
    client: redis::Client,
    pub(crate) keys: Keys,
    pub(crate) signer: Signer,
    publish: redis::Script,
    requeue: redis::Script,
}

/// An entry of a stream: its id and fields.
#[derive(Debug)]
pub(crate) struct StreamEntry {
    pub(crate) id: String,
    pub(crate) fields: HashMap<String, Vec<u8>>,
}

impl StreamEntry {
    /// The field `name`, or nothing.
    pub(crate) fn field(&self, name: &str) -> &[u8] {
        self.fields.get(name).map_or(&[], Vec::as_slice)
    }
}

impl Engine {
    /// Connects to the Redis at `url` for pool `name`; refuses a Redis off loopback without a
    /// key (and any Redis without a key unless `insecure_loopback`), and a Redis that may evict.
    /// Creates the task stream and its group if they are not there.
    pub(crate) fn connect(
        url: &str,
        name: &str,
        key: Option<Vec<u8>>,
        insecure_loopback: bool,
    ) -> Result<(Engine, redis::Connection), ClusterError> {
        let client = redis::Client::open(url).map_err(|e| ClusterError::BadUrl(e.to_string()))?;
        let info = client.get_connection_info();
        check_reachable_safely(info, key.is_some())?;
        if key.is_none() && !insecure_loopback {
            return Err(ClusterError::NoKey {
                host: format!("{:?}", info.addr()),
            });
        }
        let engine = Engine {
            client,
            keys: Keys::new(name),
            signer: Signer::new(key),
            publish: redis::Script::new(PUBLISH),
            requeue: redis::Script::new(REQUEUE),
        };
        let mut con = engine.connection()?;
        refuse_eviction(&mut con)?;
        engine.prepare(&mut con)?;
        Ok((engine, con))
    }

    /// A new connection, with timeouts on every command.
    pub(crate) fn connection(&self) -> Result<redis::Connection, ClusterError> {
        let con = self.client.get_connection_with_timeout(COMMAND_TIMEOUT)?;
        con.set_read_timeout(Some(COMMAND_TIMEOUT))?;
        con.set_write_timeout(Some(COMMAND_TIMEOUT))?;
        Ok(con)
    }

    /// A new connection, retried with backoff until `deadline`.
    pub(crate) fn reconnect(&self, deadline: Instant) -> Result<redis::Connection, ClusterError> {
        let mut pause = Duration::from_millis(20);
        loop {
            match self.connection().and_then(|mut con| {
                self.prepare(&mut con)?;
                Ok(con)
            }) {
                Ok(con) => return Ok(con),
                Err(e) if Instant::now() + pause >= deadline => {
                    return Err(ClusterError::EngineLost(e.to_string()))
                }
                Err(_) => std::thread::sleep(pause),
            }
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Creates the task stream and its group if missing, and reads the epoch marker (set now if
    /// missing): a Redis that comes back with another epoch lost the pool's queued work.
    pub(crate) fn prepare(&self, con: &mut redis::Connection) -> Result<String, ClusterError> {
        let created = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.keys.tasks())
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query::<()>(con);
        match created {
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            other => other?,
        }
        let epoch = self.keys.epoch();
        redis::cmd("SET")
            .arg(&epoch)
            .arg(unique_id())
            .arg("NX")
            .query::<()>(con)?;
        Ok(redis::cmd("GET").arg(&epoch).query::<String>(con)?)
    }

    /// Publishes a result part of the chunk in entry `id` to `reply`, as `owner` (see
    /// [`PUBLISH`]): its header and `outcomes`, which travel in the entry unless the header
    /// names pieces holding them. Returns whether `owner` still owned the entry.
    pub(crate) fn publish(
        &self,
        con: &mut redis::Connection,
        reply: &str,
        id: &str,
        owner: &str,
        head: &PartHead,
        outcomes: &[u8],
    ) -> Result<bool, ClusterError> {
        let signed = seal(&self.signer, head, outcomes);
        let outcomes = if head.pieces.is_some() {
            &[][..]
        } else {
            outcomes
        };
        let done: i64 = self
            .publish
            .key(self.keys.tasks())
            .key(reply)
            .key(self.keys.progress())
            .arg(GROUP)
            .arg(id)
            .arg(owner)
            .arg(signed.head)
            .arg(outcomes)
            .arg(signed.tag)
            .arg(head.count)
            .arg(if head.last { "1" } else { "0" })
            .arg(REPLY_TTL.as_millis() as u64)
            .invoke(con)?;
        Ok(done == 1)
    }
}

impl Engine {
    /// Replaces entry `id`, owned by `owner`, with a new entry of `head` and `args` (see
    /// [`REQUEUE`]), which travel in the entry unless the header names pieces holding them;
    /// returns whether `owner` still owned it.
    pub(crate) fn requeue(
        &self,
        con: &mut redis::Connection,
        id: &str,
        owner: &str,
        head: &ChunkHead,
        args: &[u8],
    ) -> Result<bool, ClusterError> {
        let signed = seal(&self.signer, head, args);
        let args = if head.pieces.is_some() { &[][..] } else { args };
        let done: i64 = self
            .requeue
            .key(self.keys.tasks())
            .key(self.keys.progress())
            .arg(GROUP)
            .arg(id)
            .arg(owner)
            .arg(signed.head)
            .arg(args)
            .arg(signed.tag)
            .invoke(con)?;
        Ok(done == 1)
    }
}

/// Refuses a Redis whose `maxmemory-policy` could evict keys. A Redis that does not let this
/// user read its configuration is taken as configured by someone who knows.
fn refuse_eviction(con: &mut redis::Connection) -> Result<(), ClusterError> {
    let Ok(reply) = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query::<Vec<String>>(con)
    else {
        return Ok(());
    };
    match reply.get(1) {
        Some(policy) if policy != "noeviction" => Err(ClusterError::Evicting {
            policy: policy.clone(),
        }),
        _ => Ok(()),
    }
}

/// The text of a reply value, if it is one.
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The entries in a list of `[id, [field, value, ...]]` (what `XRANGE` and `XCLAIM` return);
/// an entry deleted meanwhile (no fields) is left out.
pub(crate) fn entries(value: Value) -> Vec<StreamEntry> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    items.into_iter().filter_map(entry).collect()
}

fn entry(value: Value) -> Option<StreamEntry> {
    let Value::Array(mut pair) = value else {
        return None;
    };
    let Some(Value::Array(flat)) = pair.pop() else {
        return None;
    };
    let id = text(pair.first()?)?;
    let mut fields = HashMap::new();
    let mut flat = flat.into_iter();
    while let (Some(name), Some(Value::BulkString(bytes))) = (flat.next(), flat.next()) {
        fields.insert(text(&name)?, bytes);
    }
    Some(StreamEntry { id, fields })
}

/// The entries of the one stream an `XREAD` or `XREADGROUP` read (nothing on a timeout).
pub(crate) fn read_entries(value: Value) -> Vec<StreamEntry> {
    let Value::Array(streams) = value else {
        return Vec::new();
    };
    streams
        .into_iter()
        .flat_map(|stream| match stream {
            Value::Array(mut pair) => pair.pop().map(entries).unwrap_or_default(),
            _ => Vec::new(),
        })
        .collect()
}

/// Whether `e` means the connection is gone (rather than a refused command).
pub(crate) fn is_lost(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_unrecoverable_error()
}
