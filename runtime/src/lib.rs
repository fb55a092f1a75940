//! `multiproc` brings the programming model of Python's `multiprocessing` to Rust.
//!
//! A function annotated with [`#[process_task]`](process_task) becomes a task that runs in
//! another process, with its arguments checked by the compiler; [`task!`] names a task and binds
//! its arguments, positionally or by name. [`Process`] starts one in a child process and its
//! handle's `join` returns the task's result; a panic, an exit code or a signal in the child
//! becomes an [`Error`] in the caller.
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
//! The module map follows CPython's `Lib/multiprocessing`: [`process`] (Python's `process` and
//! `popen_fork`), [`pool`] (`pool`), [`queue`] (`queues`), [`connection`] (`connection`),
//! [`sync`] (`synchronize`: the locks, semaphores, `Event`, `Condition`, `Barrier`),
//! [`sharedctypes`] (`Value`, `Array`), [`shm`] (`heap` and `shared_memory`), [`mod@task`] (what
//! `#[process_task]` generates) and [`error`].
//!
//! The modules form layers, each using only those below it: the platform (`sys`: futexes,
//! owner words, pidfds, page hints, the wait policy) at the bottom; then [`shm`] and the codec;
//! [`mod@task`]; [`sync`]; [`connection`] and [`queue`]; [`error`]; [`process`];
//! [`sharedctypes`]; and [`pool`] on top. Each layer returns its own error type, and
//! [`Error`] wraps them all, so `?` works across the whole API.

#![warn(missing_docs, unreachable_pub)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "multiproc supports Linux only for now (it is built on fork, futex, memfd and pidfd); \
     see the README's platform section"
);

extern crate self as multiproc;

pub mod connection;
pub mod error;
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
pub use multiproc_macros::{process_task, task};
pub use pool::{AsyncResult, Pool};
pub use process::{
    active_children, cpu_count, current_process, exit, parent_process, Process, ProcessHandle,
};
pub use queue::{JoinableQueue, Queue, SimpleQueue};
pub use sharedctypes::{Array, RawArray, RawValue, Value};
pub use shm::SharedMemory;
pub use sync::{Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore};
pub use task::{Call, Run, Target, Task, TaskRef};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the tutorials use: `use multiproc::prelude::*;`.
pub mod prelude {
    pub use crate::{
        active_children, cpu_count, current_process, parent_process, process_task, task, wait,
        Array, Barrier, BoundedSemaphore, Condition, Connection, Event, JoinableQueue, Lock, Pipe,
        Pool, Process, ProcessHandle, Queue, RLock, RawArray, RawValue, Run, Semaphore,
        SimpleQueue, Value,
    };
}

/// What the macros' generated code refers to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::task::bind::{NotGiven, OrDefault, PositionalArg, Set, Unset};
    pub use crate::task::registry::TaskEntry;
    pub use crate::task::{Call, OneArg, TakesArgs, Target, Task, TaskRef};

    /// How a task's values are laid out in a pool's chunks, picked at compile time.
    pub mod pack {
        pub use crate::task::pack::*;
    }
    pub use crate::wire::CodecError;
    pub use inventory;
    pub use serde;
}

/// The README's examples run as doctests, so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
