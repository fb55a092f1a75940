//! `multiproc` brings the programming model of Python's `multiprocessing` to Rust.
//!
//! A function annotated with [`#[process_task]`](process_task) becomes a task that runs in
//! another process, with its arguments checked by the compiler; [`task!`] names a task and binds
//! its arguments, positionally or by name. [`Process`] starts one in a child process and its
//! handle's `join` returns the task's result; a panic, an exit code or a signal in the child
//! becomes an [`Error`] in the caller.
//!
//! # Hello, world!
//!
//! ```
//! use multiproc::prelude::*;
//!
//! #[process_task]
//! fn dance(name: String, #[default(4)] num: u32) -> u32 {
//!     for _ in 0..num {
//!         println!("{name} dances");
//!     }
//!     num
//! }
//!
//! fn main() -> multiproc::Result<()> {
//!     let p = Process::new(task!(dance)).args(("Yuki".to_string(), 3)).name("dancer").start()?;
//!     let q = Process::new(task!(dance, name = "Nagato".to_string())).start()?;
//!     assert_eq!(p.join()?, 3);
//!     assert_eq!(q.join()?, 4);
//!     Ok(())
//! }
//! ```
//!
//! # Processes
//!
//! [`Process`] is Python's `multiprocessing.Process` before `start()`: a builder that takes a
//! target, then optionally a [`name`](Process::name) and the [`daemon`](Process::daemon) flag.
//! [`Process::start`] forks the child and returns a [`ProcessHandle`], Python's `Process` after
//! `start()`: [`join`](ProcessHandle::join) waits and returns the task's result,
//! [`join_timeout`](ProcessHandle::join_timeout) waits at most so long, and
//! [`exitcode`](ProcessHandle::exitcode), [`is_alive`](ProcessHandle::is_alive),
//! [`terminate`](ProcessHandle::terminate), [`kill`](ProcessHandle::kill) and
//! [`sentinel`](ProcessHandle::sentinel) keep their Python names. [`current_process`],
//! [`parent_process`], [`active_children`], [`cpu_count`] and [`exit`] (Python's `sys.exit` in
//! a child) complete the module.
//!
//! ```
//! use multiproc::prelude::*;
//! use std::time::Duration;
//!
//! #[process_task]
//! fn whoami() -> String {
//!     current_process().name().to_string()
//! }
//!
//! # fn main() -> multiproc::Result<()> {
//! let p = Process::new(task!(whoami)).name("worker-1").start()?;
//! assert_eq!(p.join()?, "worker-1");
//! assert_eq!(p.exitcode(), Some(0));
//!
//! // A child that runs too long can be stopped, as in Python.
//! let sleeper = Process::fork(|| std::thread::sleep(Duration::from_secs(60)))?;
//! sleeper.terminate()?;
//! assert!(matches!(sleeper.join(), Err(multiproc::Error::Signaled { signal: 15, .. })));
//! assert_eq!(sleeper.exitcode(), Some(-15));
//! # Ok(())
//! # }
//! ```
//!
//! # Tasks and `task!`
//!
//! Python passes a function object to another process by reference; Rust cannot, so a function
//! that runs in another process is marked [`#[process_task]`](process_task). It stays an
//! ordinary function, and a task named after its module path and name is registered, so that a
//! process that did not inherit the caller's memory (a pool worker, which receives many tasks)
//! can find it by name. [`task!`] names the task (`task!(f)`, Python's `target=f`, a
//! [`TaskRef`]) or binds its arguments (a [`Call`]): positionally (`task!(f, x, y)`), by name
//! (`task!(f, a = x, b = y)`, Python's `kwargs=`) or both, positional first. A parameter marked
//! `#[default(expr)]` may be left out. Every mistake (a missing argument, an unknown name, a
//! wrong type, an argument given twice) is a compile error at the caller's tokens.
//!
//! ```
//! use multiproc::prelude::*;
//!
//! #[process_task]
//! fn power(base: u64, #[default(2)] exp: u32) -> u64 {
//!     base.pow(exp)
//! }
//!
//! # fn main() -> multiproc::Result<()> {
//! let positional = Process::new(task!(power, 3, 3)).start()?;
//! let by_name = Process::new(task!(power, exp = 4, base = 2)).start()?;
//! let defaulted = Process::new(task!(power, 5)).start()?;
//! // `task!(f)` unbound, then Python's `args=(..)`; trailing defaults may be left off.
//! let args = Process::new(task!(power)).args((7,)).start()?;
//! assert_eq!(positional.join()?, 27);
//! assert_eq!(by_name.join()?, 16);
//! assert_eq!(defaulted.join()?, 25);
//! assert_eq!(args.join()?, 49);
//! // A bound call can also run here, in this process.
//! assert_eq!(task!(power, 10).run(), 100);
//! # Ok(())
//! # }
//! ```
//!
//! Parameters and results are owned serde types. A result always travels back encoded
//! (postcard), and so do the arguments of a pool's calls, since its workers did not inherit
//! them; plain old data (`bytemuck::Pod` values and `Vec`s of them) travels as its bytes.
//! Python's `class MyProcess(Process)` with a `run` method is a serde type with
//! `#[process_task] impl` [`Run`]:
//!
//! ```
//! use multiproc::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Countdown {
//!     from: u32,
//! }
//!
//! #[process_task]
//! impl Run for Countdown {
//!     fn run(self) {
//!         for n in (1..=self.from).rev() {
//!             println!("{n}");
//!         }
//!     }
//! }
//!
//! # fn main() -> multiproc::Result<()> {
//! let p = Process::new(Countdown { from: 3 }).start()?;
//! p.join()?;
//! assert_eq!(p.exitcode(), Some(0));
//! # Ok(())
//! # }
//! ```
//!
//! A closure can be the body too ([`Process::fork`], [`Process::from_fn`]), since the fork start
//! method runs the child in a copy of the parent's memory; a [`Pool`] runs tasks only.
//!
//! # Pools
//!
//! [`Pool`] is Python's `multiprocessing.Pool`: long-lived worker processes that run tasks by
//! name. `map`, `starmap`, `imap`, `imap_unordered` and `apply` keep their Python names, each
//! with an `_async` form that returns an [`AsyncResult`]. A task that panics fails only its own
//! call; a worker that dies fails the calls it had started, and a new worker takes its place.
//! Dropping a pool terminates it; `close` then `join` lets queued work finish first.
//!
//! ```
//! use multiproc::prelude::*;
//!
//! #[process_task]
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! # fn main() -> multiproc::Result<()> {
//! let pool = Pool::new(2)?;
//! assert_eq!(pool.map(task!(square), 1..=4)?, vec![1, 4, 9, 16]);
//! let pending = pool.apply_async(task!(square, 12));
//! assert_eq!(pending.get()?, 144);
//! let lazy: u64 = pool.imap(task!(square), 0..10).sum::<multiproc::Result<u64>>()?;
//! assert_eq!(lazy, 285);
//! pool.close();
//! pool.join()?;
//! # Ok(())
//! # }
//! ```
//!
//! # Shared memory
//!
//! An ordinary variable is copied into a forked child: the parent never sees the child's
//! writes. [`Value`] and [`Array`] (Python's `sharedctypes.Value` and `Array`) keep plain old
//! data in memory that every process maps, behind a cross-process lock. Their raw forms,
//! [`RawValue`] and [`RawArray`] (Python's `RawValue` and `RawArray`), have no lock: what they
//! promise for concurrent access is stated on the types themselves, and anything beyond it
//! needs a lock or the atomic operations they offer. [`SharedMemory`] is Python's
//! `shared_memory.SharedMemory`: a block of bytes named in `/dev/shm`, so that unrelated
//! processes can attach it. All of them are handles: clone one, or pass it to a task as an
//! argument, and both sides use the same memory.
//!
//! # Synchronisation
//!
//! [`Lock`], [`RLock`], [`Semaphore`], [`BoundedSemaphore`], [`Event`], [`Condition`] and
//! [`Barrier`] are Python's `multiprocessing.synchronize`, built on futexes in shared memory.
//! Locks hand out guards (`lock`, `try_lock`, `lock_timeout`), as `std::sync::Mutex` does, and
//! also keep Python's `acquire` and `release`.
//!
//! ```
//! use multiproc::prelude::*;
//! use std::time::Duration;
//!
//! #[process_task]
//! fn signal_ready(ready: Event) {
//!     ready.set();
//! }
//!
//! # fn main() -> multiproc::Result<()> {
//! let ready = Event::new()?;
//! let child = Process::new(task!(signal_ready, ready.clone())).start()?;
//! assert!(ready.wait_timeout(Duration::from_secs(10)));
//! child.join()?;
//!
//! let lock = Lock::new()?;
//! let guard = lock.lock()?;
//! assert!(lock.try_lock().is_err()); // held, even by this very process
//! drop(guard);
//! assert!(lock.try_lock().is_ok());
//! # Ok(())
//! # }
//! ```
//!
//! # Queues and pipes
//!
//! [`Queue`], [`JoinableQueue`] and [`SimpleQueue`] are Python's queues: many producers and
//! consumers, any serde item type, with `put`/`get` and their `try_` (Python's `_nowait`) and
//! `_timeout` forms, each with its own error type that gives a refused item back. [`Pipe`] makes
//! two [`Connection`]s (Python's `Pipe()`), and [`wait`] waits on several connections and
//! process sentinels at once (Python's `connection.wait`).
//!
//! ```
//! use multiproc::prelude::*;
//!
//! #[process_task]
//! fn echo(mut conn: Connection<String>) {
//!     // Not `while let Ok(..) = conn.recv()`: this child inherited the parent's end as well,
//!     // so it would never see end-of-file (see Pitfalls below). Say when to stop instead.
//!     loop {
//!         let message = conn.recv().expect("recv");
//!         if message == "bye" {
//!             break;
//!         }
//!         conn.send(&message.to_uppercase()).expect("send");
//!     }
//! }
//!
//! #[process_task]
//! fn produce(q: Queue<u32>) {
//!     for i in 0..3 {
//!         q.put(i).expect("put");
//!     }
//! }
//!
//! # fn main() -> multiproc::Result<()> {
//! let (mut here, there) = Pipe::<String>::duplex()?;
//! let echoer = Process::new(task!(echo, there)).start()?;
//! here.send(&"hello".to_string())?;
//! assert_eq!(here.recv()?, "HELLO");
//! here.send(&"bye".to_string())?;
//! echoer.join()?;
//!
//! let q = Queue::new()?;
//! let producer = Process::new(task!(produce, q.clone())).start()?;
//! let items: Vec<u32> = (0..3).map(|_| q.get()).collect::<Result<_, _>>()?;
//! assert_eq!(items, [0, 1, 2]);
//! producer.join()?;
//! # Ok(())
//! # }
//! ```
//!
//! # Managers
//!
//! A [`Manager`] (Python's `multiprocessing.Manager()`) is a server process that holds dicts,
//! lists, namespaces, locks, semaphores, barriers, events and queues for other processes:
//! [`managers::DictProxy`], [`managers::ListProxy`], [`managers::NamespaceProxy`] and the
//! others are typed serde handles to them, passed to tasks like any other argument. Each call
//! is one atomic request; `fetch_add` and `update_with` make a read-modify-write atomic too, and
//! a list stored in a dict is stored as a proxy, so pushing through it is seen by everyone. If
//! the server dies, every call fails with
//! [`managers::ManagerError::Gone`] instead of hanging.
//!
//! ```
//! use multiproc::managers::{DictProxy, Manager};
//! use multiproc::prelude::*;
//!
//! #[process_task]
//! fn count(hits: DictProxy<String, u64>) -> multiproc::Result<()> {
//!     hits.fetch_add(&"visits".to_string(), 1)?;
//!     Ok(())
//! }
//!
//! # fn main() -> multiproc::Result<()> {
//! let manager = Manager::start()?;
//! let hits = manager.dict()?;
//! let children: Vec<_> = (0..3)
//!     .map(|_| Process::new(task!(count, hits.clone())).start())
//!     .collect::<Result<_, _>>()?;
//! for child in children {
//!     child.join()??;
//! }
//! assert_eq!(hits.get(&"visits".to_string())?, Some(3));
//! # Ok(())
//! # }
//! ```
//!
//! # Errors
//!
//! [`Error`] is the crate's error type, and [`Result`] its `Result`. A failure in a child is
//! never swallowed and never a panic in the caller: a panic becomes [`Error::Panicked`] with
//! its message and location (Python's remote traceback), an exit code [`Error::Exited`], a signal [`Error::Signaled`], each naming the
//! process. Each module returns its own precise error ([`ConnectionError`], the queue errors,
//! [`sync::SyncError`], [`pool::PoolError`], [`shm::ShmError`]), and each converts into
//! [`Error`], so `?` works across the whole API, inside tasks too: a task may return
//! [`Result`], and its error comes back to the caller ([`error::RemoteError`]).
//!
//! ```
//! use multiproc::prelude::*;
//!
//! #[process_task]
//! fn divide(a: i64, b: i64) -> i64 {
//!     if b == 0 {
//!         panic!("division by zero");
//!     }
//!     a / b
//! }
//!
//! # fn main() -> multiproc::Result<()> {
//! let p = Process::new(task!(divide, 1, 0)).start()?;
//! match p.join() {
//!     Err(multiproc::Error::Panicked { message, .. }) => assert_eq!(message, "division by zero"),
//!     other => panic!("expected a panic, got {other:?}"),
//! }
//! assert_eq!(p.exitcode(), Some(1));
//! # Ok(())
//! # }
//! ```
//!
//! # Guarantees
//!
//! - **Happens-before.** Once [`ProcessHandle::join`] or [`AsyncResult::get`] returns, every
//!   write the child (or the worker, for that task) made to shared memory before it finished is
//!   visible to the caller, as `std::thread::JoinHandle::join` promises for a thread. Likewise a
//!   lock's release happens before the next acquire, in any process.
//! - **Failures come back as errors, never hangs**: see Errors above. A worker that dies does
//!   not hang its pool.
//! - **Children never outlive their parent by accident.** A daemonic child is killed when its
//!   parent dies, however it dies (`SIGKILL` included); non-daemonic children are joined when
//!   the parent exits normally, as in Python; a dropped [`ProcessHandle`] is reaped in the
//!   background, so no zombie is left.
//! - **A dead lock holder is reported, not waited for.** If a process dies holding a [`Lock`]
//!   or an [`RLock`], the next acquirer gets the lock with [`sync::OwnerDied`] (as
//!   `std::sync::Mutex` reports poisoning) and decides whether the data it guards is sound.
//! - **Queues survive killed processes**: an item half put is not in the queue, an item half
//!   taken is still there.
//!
//! # Platform
//!
//! Linux only: the crate is built on `fork`, futexes, memfd and pidfd (Linux 5.3 for
//! `pidfd_open`). Python's three start methods exist (`fork`, `spawn`, `forkserver`), with
//! `get_context` and `set_start_method`. Processes that exchange handles must run as the same
//! user.
//!
//! # Pitfalls
//!
//! `docs/PITFALLS.md` in the source repository explains these in full:
//!
//! - Forking while another thread holds a lock (a `Mutex` of yours, a logger's, a thread
//!   pool's) leaves that lock held for ever in the child; start processes before threads, or
//!   keep the child's code off those locks.
//! - A forked child inherits memory, open descriptors, the environment, the working directory
//!   and the standard streams.
//! - Closures run only under fork; tasks run by name, and values travel as bytes, so processes
//!   that exchange them must run the same build of the same program.
//! - The codec (postcard) is not self-describing: `#[serde(untagged)]`, `#[serde(flatten)]`,
//!   `serde_json::Value` and anything else that needs `deserialize_any` fail.
//! - A pipe reports end-of-file only when every copy of its writing end is closed, and forked
//!   children hold copies of the ends that were open when they started.
//!
//! # Modules
//!
//! The module map follows CPython's `Lib/multiprocessing`: [`process`] (Python's `process` and
//! `popen_fork`), [`pool`] (`pool`), [`queue`] (`queues`), [`connection`] (`connection`),
//! [`sync`] (`synchronize`: the locks, semaphores, `Event`, `Condition`, `Barrier`),
//! [`sharedctypes`] (`Value`, `Array`), [`shm`] (`heap` and `shared_memory`), [`managers`]
//! (`managers`), [`mod@task`] (what `#[process_task]` generates) and [`error`].
//!
//! The modules form layers, each using only those below it: the platform (`sys`: futexes,
//! owner words, pidfds, page hints, the wait policy) at the bottom; then [`shm`] and the codec;
//! [`mod@task`]; [`sync`]; [`connection`] and [`queue`]; [`error`]; [`process`];
//! [`sharedctypes`]; [`pool`]; and [`managers`] on top. Each layer returns its own error type, and
//! [`Error`] wraps them all, so `?` works across the whole API.

#![warn(missing_docs, unreachable_pub)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "multiproc supports Linux only for now (it is built on fork, futex, memfd and pidfd); \
     see the README's platform section"
);

extern crate self as multiproc;

#[cfg(feature = "cluster")]
pub mod cluster;
pub mod connection;
pub mod error;
pub mod managers;
pub mod pool;
pub mod process;
pub mod queue;
pub mod sharedctypes;
pub mod shm;
pub mod sync;
mod sys;
pub mod task;
mod util;
pub(crate) mod wire;

pub use connection::{wait, Connection, ConnectionError, Pipe, Waitable};
pub use error::Error;
pub use managers::Manager;
/// # Examples
///
/// A task is an ordinary function as well; the attribute registers it under its module path
/// and name, so that another process can run it:
///
/// ```
/// use multiproc::prelude::*;
/// use multiproc::task::Task;
///
/// #[process_task]
/// fn add(a: i64, #[default(1)] b: i64) -> i64 {
///     a + b
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// assert_eq!(add(2, 3), 5); // still callable here
/// let p = Process::new(task!(add, 2)).start()?;
/// assert_eq!(p.join()?, 3);
/// assert!(task!(add).name().ends_with("add"));
/// # Ok(())
/// # }
/// ```
///
/// On an `impl Run for MyType` block it makes a serde type a process body, Python's
/// `class MyProcess(Process)` (see [`Run`]).
pub use multiproc_macros::process_task;
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
///
/// #[process_task]
/// fn label(name: String, #[default(1)] copies: usize) -> String {
///     name.repeat(copies)
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// // Unbound: Python's `target=label`, for `args`, or for a pool's `map`.
/// let unbound = task!(label);
/// let p = Process::new(unbound).args(("ab".to_string(), 2)).start()?;
/// assert_eq!(p.join()?, "abab");
///
/// // Bound positionally, by name, or both (positional first); defaults may be left out.
/// assert_eq!(task!(label, "x".to_string(), 3).run(), "xxx");
/// assert_eq!(task!(label, copies = 2, name = "y".to_string()).run(), "yy");
/// assert_eq!(task!(label, "z".to_string(), copies = 1).run(), "z");
/// assert_eq!(task!(label, "w".to_string()).run(), "w");
/// # Ok(())
/// # }
/// ```
///
/// Leaving a parameter without a default unbound gives a [`Partial`] (Python's
/// `functools.partial(f, ..)`), which a pool maps over the one parameter it leaves; positional
/// arguments bind the first parameters, so `task!(label, "x".to_string())` leaves `copies`:
///
/// ```
/// use multiproc::prelude::*;
///
/// #[process_task]
/// fn label(name: String, copies: usize) -> String {
///     name.repeat(copies)
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let pool = Pool::new(2)?;
/// let names = ["a", "b"].map(String::from);
/// assert_eq!(pool.map(task!(label, copies = 2), names)?, vec!["aa", "bb"]);
/// assert_eq!(pool.map(task!(label, "x".to_string()), [1, 3])?, vec!["x", "xxx"]);
/// # Ok(())
/// # }
/// ```
///
/// A wrong call does not compile, and the message names the parameter; so does a partial used
/// where a call is needed:
///
/// ```compile_fail
/// use multiproc::prelude::*;
///
/// #[process_task]
/// fn label(name: String, copies: usize) -> String {
///     name.repeat(copies)
/// }
///
/// let pool = Pool::new(1).unwrap();
/// pool.apply(task!(label, copies = 2)); // missing argument `name` for task `label`
/// ```
///
/// A map over a partial that leaves two parameters unbound does not compile either: "`task!(f,
/// ..)` leaves more than one parameter unbound, and `map` needs exactly one", naming them.
pub use multiproc_macros::task;
pub use pool::{AsyncResult, Pool};
pub use process::{
    active_children, cpu_count, current_process, exit, get_all_start_methods, get_context,
    get_start_method, parent_process, set_start_method, set_start_method_force, Context, Process,
    ProcessHandle, StartMethod,
};
pub use queue::{JoinableQueue, Queue, SimpleQueue};
pub use sharedctypes::{Array, RawArray, RawValue, Value};
pub use shm::SharedMemory;
pub use sync::{Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore};
pub use task::{Call, IntoCall, MapTask, Partial, Run, Target, Task, TaskRef};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the tutorials use: `use multiproc::prelude::*;`.
pub mod prelude {
    pub use crate::{
        active_children, cpu_count, current_process, exit, parent_process, process_task, task,
        wait, Array, Barrier, BoundedSemaphore, Condition, Connection, Event, JoinableQueue, Lock,
        Pipe, Pool, Process, ProcessHandle, Queue, RLock, RawArray, RawValue, Run, Semaphore,
        SimpleQueue, Value,
    };
}

/// What the macros' generated code refers to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::task::bind::{
        finish, Bound, BoundOr, Builder, Complete, Finished, Incomplete, NotGiven, OrDefault,
        PartialArgs, PositionalArg, Set, Slot, Status, Unset,
    };
    pub use crate::task::registry::TaskEntry;
    pub use crate::task::{Call, OneArg, TakesArgs, Target, Task, TaskRef};

    /// How a task's values are laid out in a pool's chunks, picked at compile time.
    pub mod pack {
        pub use crate::task::pack::*;
    }
    pub use crate::wire::CodecError;
    pub use inventory;

    /// What `#[manager_object]`'s generated code builds on.
    pub mod managers {
        pub use crate::managers::custom::{
            decode_args, encode_output, CallError, ObjectEntry, ObjectHandle, Served,
        };
        pub use crate::managers::{Manager, ManagerError};
    }

    /// A `Run` value encoded for a child that runs it by name.
    pub fn encode_args<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
        crate::wire::encode(value)
    }
    pub use serde;

    /// The replies of a manager's server to `stream`, a connection's raw bytes, answered
    /// against a fresh object table: the request decoder, for the fuzz target.
    pub fn answer_manager_requests(stream: &[u8]) -> Vec<u8> {
        crate::managers::answer_stream(stream)
    }
}

/// The README's examples run as doctests, so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
