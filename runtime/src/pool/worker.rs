//! A pool worker: a daemonic child process that runs chunks of tasks by name until told to stop.
//!
//! The worker is started through the foundation's [`Process`] (so it is registered, reaped, and
//! dies with its parent), and from then on touches only what it was given: its end of its task
//! socket, its result [`Ring`] and the pool's [`Bell`], all of which belong to this pool alone. It
//! never takes a lock of the parent's, so it is safe to fork while the parent's result thread
//! runs. Tasks are found in the registry by name.
//!
//! The worker itself is a task, [`WorkerTask`], registered as `multiproc::pool::worker`: a forked
//! worker runs it from the memory it inherited, with nothing encoded; a worker started by exec
//! (spawn) receives it as its arguments, with the ring, the bell and the socket as descriptors.

use super::channel::{self, ResultHeader, ToWorker};
use super::ring::{Bell, Ring, PART_BYTES};
use crate::error::Error;
use crate::process::ProcessHandle;
use crate::sys::backoff::{watch, Patience};
use crate::sys::transfer::Descriptor;
use crate::task::registry::{self, TaskEntry};
use crate::task::Task;
use crate::wire;
use crate::wire::frame::ReadBuf;
use crate::{Process, StartMethod};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

/// A task call already encoded: what a worker runs once as it starts (Python's `initializer`
/// and `initargs`). It travels as the task's name and the encoded arguments.
#[derive(Clone)]
pub(crate) struct EncodedCall {
    pub(crate) entry: &'static TaskEntry,
    pub(crate) args: Vec<u8>,
}

impl Serialize for EncodedCall {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (self.entry.name(), &self.args).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for EncodedCall {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (name, args) = <(String, Vec<u8>)>::deserialize(deserializer)?;
        let entry =
            registry::lookup(&name).map_err(|e| serde::de::Error::custom(Error::from(e)))?;
        Ok(EncodedCall { entry, args })
    }
}

/// What every worker of one pool is started with.
#[derive(Clone)]
pub(crate) struct WorkerConfig {
    pub(crate) initializer: Option<EncodedCall>,
    /// Python's `maxtasksperchild`: chunks a worker runs before it exits and is replaced.
    pub(crate) max_chunks: Option<u64>,
    pub(crate) bell: Arc<Bell>,
    /// How workers start; `None`: as this process starts its children.
    pub(crate) method: Option<StartMethod>,
}

/// Starts a worker on its end of the given task socket and on the result ring.
pub(crate) fn start(
    config: &WorkerConfig,
    tasks: OwnedFd,
    ring: Arc<Ring>,
) -> Result<ProcessHandle<()>, Error> {
    // Fill the registry's table now, in the parent: a worker forked while another thread was
    // still building it would find it half-built for ever.
    let _ = registry::lookup("");
    // Likewise the prefault switch: the worker must not read the environment.
    crate::sys::mem::read_switch();
    let worker = WorkerTask {
        config: config.clone(),
        tasks,
        ring,
    };
    let process = Process::new(worker).daemon(true);
    match config.method {
        Some(method) => process.with_method(method).start(),
        None => process.start(),
    }
}

/// A worker's body and all it needs (`multiproc::pool::worker`). A forked worker runs it in
/// place ([`Target::invoke`]); one started by exec gets it as the task's arguments.
pub(crate) struct WorkerTask {
    config: WorkerConfig,
    tasks: OwnedFd,
    ring: Arc<Ring>,
}

/// What a worker started by exec receives, in [`WorkerTask`]'s `Serialize` order.
type WireWorker = (
    Option<EncodedCall>,
    Option<u64>,
    Bell,
    Ring,
    Descriptor<OwnedFd>,
);

impl Serialize for WorkerTask {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let config = &self.config;
        let tasks = Descriptor(self.tasks.as_fd());
        let parts = (
            &config.initializer,
            config.max_chunks,
            &*config.bell,
            &*self.ring,
            tasks,
        );
        parts.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for WorkerTask {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (initializer, max_chunks, bell, ring, Descriptor(tasks)) =
            WireWorker::deserialize(deserializer)?;
        let config = WorkerConfig {
            initializer,
            max_chunks,
            bell: Arc::new(bell),
            // A worker starts no processes.
            method: None,
        };
        Ok(WorkerTask {
            config,
            tasks,
            ring: Arc::new(ring),
        })
    }
}

impl Task for WorkerTask {
    const NAME: &'static str = "multiproc::pool::worker";
    type Args = WorkerTask;
    type Output = ();

    fn call(worker: WorkerTask) {
        run(worker.config, worker.tasks, &worker.ring)
    }
}

crate::task::internal_task!(WorkerTask);

/// The worker's loop: read frames, run chunks, publish results; return to exit.
fn run(config: WorkerConfig, tasks: OwnedFd, ring: &Ring) {
    // A worker renewed after a few chunks (`maxtasksperchild`) may never fill its ring.
    if config.max_chunks.is_none() {
        ring.prefault();
    }
    if let Some(init) = &config.initializer {
        if let Err(failure) = init.entry.invoke(&init.args) {
            eprintln!(
                "pool worker initializer `{}` failed: {failure}",
                init.entry.name()
            );
            crate::exit(1);
        }
    }
    // From here on a panic is a task's, which the caller gets as its error (the initializer's is
    // printed, as it ends the worker).
    crate::task::panic::quiet_here();
    let tasks = File::from(tasks);
    let mut input = ReadBuf::in_place();
    let mut results = Vec::new();
    let out = Publish {
        ring,
        bell: &config.bell,
    };
    let mut last: Option<&'static TaskEntry> = None;
    let mut done = 0u64;
    // The end of the task socket (the parent gone) or a frame that is not a chunk ends the worker.
    while let Ok(frame) = input.next_frame(&tasks, u64::MAX) {
        let Ok((message, args)) = wire::decode_next::<ToWorker<'_>>(frame.as_slice()) else {
            return;
        };
        let ToWorker::Run { seq, task, count } = message else {
            return;
        };
        let entry = match last {
            Some(entry) if entry.name() == task => entry,
            _ => match registry::lookup(task) {
                Ok(entry) => entry,
                Err(_) => return,
            },
        };
        last = Some(entry);
        ring.mark_started(seq);
        run_chunk(entry, seq, args, count, &mut results, &out);
        done += 1;
        if config.max_chunks.is_some_and(|max| done >= max) {
            return;
        }
        // A caller that runs one task at a time sends the next as soon as it has this one's
        // result: watching for it spares this worker a sleep and the caller a wake-up call.
        watch(Patience::POOL, None, || ring.is_posted_after(seq));
    }
}

/// Where a worker's results go: its ring, and the bell that wakes the parent.
struct Publish<'a> {
    ring: &'a Ring,
    bell: &'a Bell,
}

/// Runs one chunk, publishing its results in parts of about [`PART_BYTES`] as each is ready, so
/// the parent decodes the first while the worker runs the rest, and the results buffer stays
/// small whatever the chunk's size. Builds each part in `buf`.
fn run_chunk(
    entry: &TaskEntry,
    seq: u64,
    args: &[u8],
    count: u32,
    buf: &mut Vec<u8>,
    out: &Publish<'_>,
) {
    let began = Instant::now();
    let mut args = args;
    let mut first = 0;
    loop {
        channel::begin_results(buf);
        let ran = entry.invoke_batch(&mut args, count - first, PART_BYTES, buf);
        let micros = u32::try_from(began.elapsed().as_micros()).unwrap_or(u32::MAX);
        let header = ResultHeader {
            seq,
            first,
            count: ran,
            micros,
        };
        channel::finish_results(buf, header);
        // SAFETY: this worker's thread is its ring's one writer: the ring was made for this
        // worker alone (a replacement gets a new one), the parent only reads it, and nothing
        // else in this process (a task included) is given it.
        unsafe { out.ring.write(buf, out.bell) };
        first += ran;
        // Each batch runs at least one call, so the loop ends.
        if first >= count {
            return;
        }
    }
}
