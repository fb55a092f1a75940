//! Worker mode: a node that serves a cluster pool runs the same binary, takes chunks from the
//! task stream into a local [`Pool`](crate::Pool) of processes (so a local worker's death is
//! handled as on one machine), and sends their results back through the fenced script. A
//! heartbeat thread keeps the node alive in Redis and runs the reaper.

use super::beat::{self, BEAT, NODE_TTL};
use super::blob::{self, Pieces};
use super::engine::{is_lost, read_entries, Engine, StreamEntry};
use super::entry::{fingerprint, open_entry, ChunkHead, PartHead, PartKind};
use super::error::ClusterError;
use super::keys::{unique_id, GROUP};
use super::node::{publish, ChunkSink};
use crate::error::Error;
use crate::task::registry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one read of the task stream waits.
const BLOCK: Duration = Duration::from_millis(500);
/// Chunks a node holds per local process: the one running and the next.
const DEPTH: usize = 2;

/// Builds a worker node (Ray's `ray start --address`): where Redis is, which pool to serve,
/// how many local processes, and which tasks it runs. Its `Debug` form leaves the key and the
/// URL's password out.
#[derive(Clone)]
pub struct WorkerBuilder {
    url: String,
    name: String,
    processes: usize,
    key: Option<Vec<u8>>,
    insecure_loopback: bool,
    allow: Option<Vec<String>>,
}

impl std::fmt::Debug for WorkerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerBuilder")
            .field("pool", &self.name)
            .field("processes", &self.processes)
            .field("key", &self.key.as_ref().map(|_| "<hidden>"))
            .field("allow", &self.allow)
            .finish_non_exhaustive()
    }
}

/// A worker node: [`Worker::builder`] then [`run`](WorkerBuilder::run).
///
/// # Examples
///
/// ```no_run
/// use multiproc::cluster::Worker;
///
/// # fn main() -> multiproc::Result<()> {
/// Worker::builder("redis://127.0.0.1:6379").pool("demo").processes(4).key("s3cret").run()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Worker;

impl Worker {
    /// A builder for a node serving the pool at `url`.
    pub fn builder(url: &str) -> WorkerBuilder {
        WorkerBuilder {
            url: url.to_owned(),
            name: "default".to_owned(),
            processes: crate::cpu_count(),
            key: None,
            insecure_loopback: false,
            allow: None,
        }
    }
}

impl WorkerBuilder {
    /// The pool served (default `default`), as the callers name it.
    pub fn pool(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// Local worker processes (default: the CPU count).
    pub fn processes(mut self, processes: usize) -> Self {
        self.processes = processes;
        self
    }

    /// The key that signs chunks and results (the callers' key).
    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Runs without a key, on a Redis on loopback only.
    pub fn insecure_loopback(mut self) -> Self {
        self.insecure_loopback = true;
        self
    }

    /// Runs only the tasks named (their registered names, as `task!(f).name()` gives them);
    /// other chunks fail with [`ClusterError::NotAllowed`]. Default: every registered task.
    pub fn allow<S: AsRef<str>>(mut self, names: &[S]) -> Self {
        self.allow = Some(names.iter().map(|n| n.as_ref().to_owned()).collect());
        self
    }

    /// Serves the pool until the process is killed.
    ///
    /// # Errors
    ///
    /// As [`PoolBuilder::build`](super::PoolBuilder::build), and the local pool's start errors.
    pub fn run(self) -> Result<(), Error> {
        let (engine, con) =
            Engine::connect(&self.url, &self.name, self.key, self.insecure_loopback)?;
        let local = crate::Pool::new(self.processes)?;
        let node = Node {
            id: unique_id(),
            engine,
            local,
            allow: self.allow,
            processes: self.processes,
            in_flight: Arc::new(AtomicUsize::new(0)),
            callers_seen: Mutex::new(HashMap::new()),
        };
        node.serve(con)
    }
}

/// A running node.
struct Node {
    id: String,
    engine: Engine,
    local: crate::Pool,
    allow: Option<Vec<String>>,
    processes: usize,
    in_flight: Arc<AtomicUsize>,
    /// Callers whose heartbeat was seen alive, and when.
    callers_seen: Mutex<HashMap<String, Instant>>,
}

impl Node {
    fn serve(self, mut con: redis::Connection) -> Result<(), Error> {
        beat::beat(&self.engine, &mut con, &self.id, NODE_TTL)?;
        self.register(&mut con)?;
        let (tx, rx) = mpsc::channel();
        let out = Mutex::new(tx);
        let (engine, me, count) = (self.engine.clone(), self.id.clone(), self.in_flight.clone());
        std::thread::Builder::new()
            .name("multiproc-node-publish".into())
            .spawn(move || publish(engine, me, rx, count))?;
        let (engine, me) = (self.engine.clone(), self.id.clone());
        let processes = self.processes;
        std::thread::Builder::new()
            .name("multiproc-node-heartbeat".into())
            .spawn(move || node_beat(engine, me, processes))?;
        loop {
            let room =
                (DEPTH * self.processes).saturating_sub(self.in_flight.load(Ordering::Acquire));
            if room == 0 {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
            let read = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(GROUP)
                .arg(&self.id)
                .arg("COUNT")
                .arg(room)
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(self.engine.keys.tasks())
                .arg(">")
                .query::<redis::Value>(&mut con);
            match read {
                Ok(value) => {
                    for entry in read_entries(value) {
                        self.take(&mut con, entry, &out)?;
                    }
                }
                // A node serves on through a Redis that restarts, loads its data (`LOADING`) or
                // lost the group (`NOGROUP`): it connects again, and gives up after an hour.
                Err(e) => {
                    if !is_lost(&e) {
                        eprintln!("multiproc: node {}: {e}; connecting again", self.id);
                        std::thread::sleep(BLOCK);
                    }
                    con = self
                        .engine
                        .reconnect(Instant::now() + Duration::from_secs(3600))?;
                    self.register(&mut con)?;
                }
            }
        }
    }

    /// Registers this node's processes, which callers sum for the default chunksize.
    fn register(&self, con: &mut redis::Connection) -> Result<(), Error> {
        redis::cmd("HSET")
            .arg(self.engine.keys.workers())
            .arg(&self.id)
            .arg(self.processes)
            .query::<()>(con)?;
        Ok(())
    }

    /// Checks one chunk and hands it to the local pool, or refuses it: a bad signature is
    /// dropped unrun; a dead caller's chunk is dropped; a task this build does not have (or has
    /// with another fingerprint) or does not allow fails its calls.
    fn take(
        &self,
        con: &mut redis::Connection,
        mut entry: StreamEntry,
        out: &Mutex<mpsc::Sender<super::node::Outgoing>>,
    ) -> Result<(), Error> {
        let opened = open_entry::<ChunkHead>(&self.engine.signer, con, &mut entry, "m", "a")?;
        let Some((head, args)) = opened else {
            eprintln!(
                "multiproc: node {}: rejected entry {} without a valid HMAC",
                self.id, entry.id
            );
            return Ok(discard(&self.engine, con, &entry.id, None)?);
        };
        if !self.caller_alive(con, &head.caller)? {
            return Ok(discard(&self.engine, con, &entry.id, head.pieces.as_ref())?);
        }
        let reply = self.engine.keys.reply(&head.caller);
        let task = match self.check(&head) {
            Ok(task) => task,
            Err(refusal) => {
                let part = PartHead {
                    job: head.job,
                    index: head.index,
                    first: head.offset,
                    count: head.count - head.offset,
                    last: true,
                    pid: 0,
                    kind: PartKind::Failed(refusal),
                    pieces: None,
                };
                self.engine
                    .publish(con, &reply, &entry.id, &self.id, &part, &[])?;
                if let Some(pieces) = &head.pieces {
                    blob::delete(con, pieces)?;
                }
                return Ok(());
            }
        };
        let sink = Arc::new(ChunkSink {
            reply: reply.into(),
            entry: entry.id.into(),
            job: head.job,
            index: head.index,
            offset: head.offset,
            args_pieces: head.pieces,
            out: Mutex::new(crate::util::lock(out).clone()),
        });
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let count = head.count - head.offset;
        if self.local.submit_packed(task, count, args, sink).is_err() {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Whether caller `caller`'s heartbeat is alive; a caller seen alive within the last beat
    /// is taken as alive without asking again (its heartbeat lives ten beats).
    fn caller_alive(&self, con: &mut redis::Connection, caller: &str) -> Result<bool, Error> {
        let mut seen = crate::util::lock(&self.callers_seen);
        if seen.get(caller).is_some_and(|at| at.elapsed() < BEAT) {
            return Ok(true);
        }
        let alive = beat::alive(&self.engine, con, caller)?;
        if alive {
            seen.retain(|_, at| at.elapsed() < BEAT);
            seen.insert(caller.to_owned(), Instant::now());
        }
        Ok(alive)
    }

    /// The task's registered name if this node runs it.
    fn check(&self, head: &ChunkHead) -> Result<&'static str, ClusterError> {
        let mismatch = |reason: &str| ClusterError::TaskMismatch {
            node: self.id.clone(),
            task: head.task.clone(),
            reason: reason.to_owned(),
        };
        if head.offset > head.count {
            return Err(mismatch("the chunk's header is inconsistent"));
        }
        let entry = registry::lookup(&head.task)
            .map_err(|_| mismatch("no task of that name is registered in the node's build"))?;
        if fingerprint(entry) != head.fingerprint {
            return Err(mismatch(
                "its fingerprint differs (argument or result types, crate version or target): \
                 the node runs another build",
            ));
        }
        if self
            .allow
            .as_ref()
            .is_some_and(|allow| !allow.contains(&head.task))
        {
            return Err(ClusterError::NotAllowed {
                node: self.id.clone(),
                task: head.task.clone(),
            });
        }
        Ok(entry.name())
    }
}

/// Drops entry `id` unrun: acknowledged and deleted, with the pieces of its arguments.
pub(crate) fn discard(
    engine: &Engine,
    con: &mut redis::Connection,
    id: &str,
    pieces: Option<&Pieces>,
) -> Result<(), ClusterError> {
    if let Some(pieces) = pieces {
        blob::delete(con, pieces)?;
    }
    let tasks = engine.keys.tasks();
    redis::cmd("XACK")
        .arg(&tasks)
        .arg(GROUP)
        .arg(id)
        .query::<()>(con)?;
    redis::cmd("XDEL").arg(&tasks).arg(id).query::<()>(con)?;
    Ok(())
}

/// The node's heartbeat thread, on which no task runs: beats, re-registers and reaps.
fn node_beat(engine: Engine, me: String, processes: usize) {
    let mut con = None;
    loop {
        if con.is_none() {
            con = engine.connection().ok();
        }
        if let Some(c) = con.as_mut() {
            let ok = beat::beat(&engine, c, &me, NODE_TTL).is_ok()
                && redis::cmd("HSET")
                    .arg(engine.keys.workers())
                    .arg(&me)
                    .arg(processes)
                    .query::<()>(c)
                    .is_ok()
                && beat::reap(&engine, c, &me).is_ok();
            if !ok {
                con = None;
            }
        }
        std::thread::sleep(BEAT);
    }
}

/// Worker mode from the environment: when `MULTIPROC_WORKER` holds a Redis URL, this process
/// serves as a worker node and never returns (it exits when serving fails); otherwise this
/// returns at once. `MULTIPROC_POOL` names the pool (default `default`),
/// `MULTIPROC_PROCESSES` the local processes (default: the CPU count), `MULTIPROC_CLUSTER_KEY`
/// the HMAC key; `MULTIPROC_INSECURE_LOOPBACK=1` runs without one on loopback. Call it first
/// thing in `main`.
///
/// # Errors
///
/// Never returns an error today; the `Result` leaves room for checks before serving.
pub fn serve_if_worker() -> Result<(), Error> {
    let Some(url) = std::env::var("MULTIPROC_WORKER")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        return Ok(());
    };
    let mut builder = Worker::builder(&url);
    if let Ok(name) = std::env::var("MULTIPROC_POOL") {
        builder = builder.pool(&name);
    }
    if let Some(n) = std::env::var("MULTIPROC_PROCESSES")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        builder = builder.processes(n);
    }
    if let Some(key) = std::env::var_os("MULTIPROC_CLUSTER_KEY") {
        builder = builder.key(key.into_encoded_bytes());
    }
    if std::env::var("MULTIPROC_INSECURE_LOOPBACK").as_deref() == Ok("1") {
        builder = builder.insecure_loopback();
    }
    let outcome = builder.run();
    if let Err(e) = outcome {
        eprintln!("multiproc: worker node stopped: {e}");
        std::process::exit(1);
    }
    std::process::exit(0)
}
