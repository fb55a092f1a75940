//! Managers (Python's `multiprocessing.managers`): a server process that holds dicts, lists,
//! namespaces, locks, semaphores, barriers, events and queues, and typed proxies through which
//! any process that has one uses them.
//!
//! [`Manager::start`] starts the server, a daemonic child process, by the start method of this
//! process ([`Context::manager`] by a context's). Its methods make objects in it and return
//! proxies: [`DictProxy`], [`ListProxy`], [`NamespaceProxy`], [`LockProxy`],
//! [`ConditionProxy`], [`SemaphoreProxy`], [`BarrierProxy`], [`EventProxy`], [`QueueProxy`].
//! Waits (a lock's or a semaphore's acquire, a condition's, a barrier's or an event's wait, a
//! queue's get or join) are parked on the server, which enforces their timeouts. A proxy is a small serde handle: clone it, pass it to
//! a task or a pool's task, or store it inside another managed object, and it names the same
//! object. Every call is a request to the server, which runs one request at
//! a time, so each call is atomic; `fetch_add` and `update_with` make read-modify-writes atomic
//! as well. If the server dies, every call on every proxy, in every process, fails with
//! [`ManagerError::Gone`]; nothing hangs and nothing reconnects.

mod auth;
mod barrier;
mod client;
mod condition;
pub(crate) mod custom;
mod dict;
mod list;
mod namespace;
mod protocol;
mod queue;
mod remote;
mod server;
mod shareable_list;
mod shared_memory;
mod store;
mod sync;
mod table;
mod update;
mod waiting;
mod watch;

pub use crate::error::{ManagerError, ServerError};
pub use barrier::BarrierProxy;
pub use dict::DictProxy;
pub use list::ListProxy;
/// Serves a type of the user's own from a manager (Python's `BaseManager.register`): on the
/// type's `impl` block, it registers the constructors (`pub fn`s without `self` that return
/// `Self`) and the exposed methods (`pub fn`s that take `&self` or `&mut self`) by name, and
/// generates `<Type>Proxy`.
///
/// The proxy has a constructor `<Type>Proxy::new(&manager, args..)` for each constructor
/// (Python's `manager.Counter(0)`), and one method per exposed method, with the same
/// parameters, that returns `Result<R, ManagerError>`: a method that returns `Result<T, E>`
/// gives `Result<Result<T, E>, ManagerError>`. Other methods cannot be called through it.
/// Parameters and results must be owned serde types. Like every proxy, it is a `Clone` serde
/// handle: pass it to a task, or store it in a [`DictProxy`].
///
/// Each call runs on the server, one request at a time, so each is atomic. A panic in a method
/// comes back as [`ServerError::Panicked`] and the manager serves on; the object keeps
/// whatever state the method left it in. A slow method delays every client of its manager.
///
/// # Examples
///
/// ```
/// use multiproc::managers::{manager_object, Manager, ManagerError, ServerError};
/// use multiproc::prelude::*;
///
/// pub struct Counter {
///     total: i64,
/// }
///
/// #[manager_object]
/// impl Counter {
///     pub fn new(start: i64) -> Self {
///         Counter { total: start }
///     }
///
///     /// Adds `by`; the new total.
///     pub fn incr(&mut self, by: i64) -> i64 {
///         self.total += by;
///         self.total
///     }
///
///     pub fn checked_take(&mut self, n: i64) -> Result<i64, String> {
///         if n > self.total {
///             return Err(format!("only {} left", self.total));
///         }
///         self.total -= n;
///         Ok(self.total)
///     }
/// }
///
/// #[process_task]
/// fn bump(counter: CounterProxy) -> multiproc::Result<()> {
///     for _ in 0..10 {
///         counter.incr(1)?;
///     }
///     Ok(())
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let manager = Manager::start()?;
/// let counter = CounterProxy::new(&manager, 5)?;
/// let workers: Vec<_> = (0..2)
///     .map(|_| Process::new(task!(bump, counter.clone())).start())
///     .collect::<Result<_, _>>()?;
/// for worker in workers {
///     worker.join()??;
/// }
/// assert_eq!(counter.incr(0)?, 25);
/// assert_eq!(counter.checked_take(30)?, Err("only 25 left".to_string()));
/// assert_eq!(counter.checked_take(20)?, Ok(5));
/// # Ok(())
/// # }
/// ```
///
/// A method that is not `pub` is not on the proxy:
///
/// ```compile_fail
/// use multiproc::managers::{manager_object, Manager};
///
/// pub struct Secret(u64);
///
/// #[manager_object]
/// impl Secret {
///     pub fn new() -> Self {
///         Secret(7)
///     }
///
///     fn reveal(&self) -> u64 {
///         self.0
///     }
/// }
///
/// let manager = Manager::start().unwrap();
/// SecretProxy::new(&manager).unwrap().reveal(); // no method `reveal` on `SecretProxy`
/// ```
pub use multiproc_macros::manager_object;
pub use namespace::NamespaceProxy;
pub use protocol::{Number, NumberKind};
pub use queue::QueueProxy;
pub use remote::{ManagerBuilder, RemoteManager};
pub use shareable_list::{Item, ShareableList};
pub use shared_memory::SharedMemoryManager;
pub use sync::{ConditionProxy, EventProxy, LockProxy, SemaphoreProxy};

use crate::error::Error;
use crate::process::{Context, ProcessHandle, StartMethod};
use crate::sys::owner;
use crate::Process;
use client::{Handle, ManagerRef, Remote};
use protocol::{ObjId, Op, MANAGER};
use serde::de::DeserializeOwned;
use serde::Serialize;
use server::ServerTask;
use std::time::Duration;

/// How long a server just started has to start listening.
const START_PATIENCE: Duration = Duration::from_secs(30);

/// How long [`Manager::shutdown`] waits for the server to exit after asking, and then again
/// after `SIGTERM`, before it kills it (Python's `shutdown_timeout`).
const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(1);

/// A manager: its server process and the way to make objects in it (Python's
/// `multiprocessing.Manager()`, a `SyncManager`).
///
/// Only the process that started it holds a `Manager`; others get proxies. Dropping it shuts the
/// server down, as Python's `with Manager() as m:` does on leaving the block.
///
/// # Examples
///
/// Several processes fill one dict and one list (tutorial 004's pattern):
///
/// ```
/// use multiproc::managers::{DictProxy, ListProxy, Manager};
/// use multiproc::prelude::*;
///
/// #[process_task]
/// fn fill(id: u32, d: DictProxy<u32, String>, l: ListProxy<u32>) -> multiproc::Result<()> {
///     d.insert(id, format!("worker {id}"))?;
///     l.push(id * id)?;
///     Ok(())
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let manager = Manager::start()?;
/// let d = manager.dict()?;
/// let l = manager.list()?;
/// let workers: Vec<_> = (0..3)
///     .map(|id| Process::new(task!(fill, id, d.clone(), l.clone())).start())
///     .collect::<Result<_, _>>()?;
/// for worker in workers {
///     worker.join()??;
/// }
/// assert_eq!(d.len()?, 3);
/// let mut squares = l.to_vec()?;
/// squares.sort();
/// assert_eq!(squares, [0, 1, 4]);
/// manager.shutdown()?;
/// # Ok(())
/// # }
/// ```
pub struct Manager {
    manager: ManagerRef,
    server: ProcessHandle<()>,
    /// The TCP address the server listens on, if it does, and its key.
    tcp: Option<Remote>,
    /// The process that started it: a forked copy of this value never shuts it down.
    owner: u32,
}

impl Manager {
    /// Starts a manager's server by this process's start method (Python's `Manager()`, or
    /// `SyncManager().start()`), and waits until it serves.
    ///
    /// # Errors
    ///
    /// The crate's [`Error`] if the server process cannot start, or [`ManagerError`] inside it
    /// if it dies before it serves.
    pub fn start() -> Result<Manager, Error> {
        Self::start_by(None, None)
    }

    fn start_by(method: Option<StartMethod>, tcp: Option<Remote>) -> Result<Manager, Error> {
        let token = [crate::sys::random_u64(), crate::sys::random_u64()];
        let process = Process::new(ServerTask { token, tcp })
            .name("Manager")
            .daemon(true);
        let server = match method {
            Some(method) => process.with_method(method).start()?,
            None => process.start()?,
        };
        let manager = ManagerRef {
            pid: server.pid(),
            token,
            remote: None,
        };
        let listening = manager
            .wait_until_listening(|| server.is_alive(), START_PATIENCE)
            .and_then(|()| remote::listening_address(manager));
        let bound = match listening {
            Ok(bound) => bound,
            Err(e) => {
                let _ = server.kill();
                let _ = server.join();
                return Err(e.into());
            }
        };
        Ok(Manager {
            manager,
            server,
            tcp: tcp
                .zip(bound)
                .map(|(remote, addr)| Remote { addr, ..remote }),
            owner: owner::pid(),
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> i32 {
        self.manager.pid
    }

    /// A new, empty dict in the manager (Python's `manager.dict()`).
    ///
    /// # Errors
    ///
    /// [`ManagerError::Gone`] or [`ManagerError::ShutDown`].
    pub fn dict<K, V>(&self) -> Result<DictProxy<K, V>, ManagerError> {
        Ok(DictProxy::from_handle(self.create(&Op::NewDict)?))
    }

    /// A new, empty list in the manager (Python's `manager.list()`).
    ///
    /// # Errors
    ///
    /// As [`dict`](Manager::dict).
    pub fn list<T>(&self) -> Result<ListProxy<T>, ManagerError> {
        Ok(ListProxy::from_handle(self.create(&Op::NewList)?))
    }

    /// A new namespace in the manager holding `value` (Python's `manager.Namespace()`).
    ///
    /// # Errors
    ///
    /// As [`dict`](Manager::dict), or a value that does not encode.
    pub fn namespace<S: Serialize + DeserializeOwned>(
        &self,
        value: S,
    ) -> Result<NamespaceProxy<S>, ManagerError> {
        let value = client::encode(&value)?;
        let handle = self.create(&Op::NewNamespace { value })?;
        Ok(NamespaceProxy::from_handle(handle))
    }

    /// A new, free lock in the manager (Python's `manager.Lock()`).
    ///
    /// # Errors
    ///
    /// As [`dict`](Manager::dict).
    pub fn lock(&self) -> Result<LockProxy, ManagerError> {
        let op = Op::NewLock { reentrant: false };
        Ok(LockProxy::from_handle(self.create(&op)?))
    }

    /// A new, free reentrant lock in the manager (Python's `manager.RLock()`): the process and
    /// thread that hold it may take it again, and only they may release it, once per take.
    ///
    /// # Errors
    ///
    /// As [`dict`](Manager::dict).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::managers::Manager;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let manager = Manager::start()?;
    /// let lock = manager.rlock()?;
    /// lock.acquire()?;
    /// lock.acquire()?;
    /// lock.release()?;
    /// assert!(lock.is_locked()?);
    /// lock.release()?;
    /// assert!(!lock.is_locked()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn rlock(&self) -> Result<LockProxy, ManagerError> {
        let op = Op::NewLock { reentrant: true };
        Ok(LockProxy::from_handle(self.create(&op)?))
    }

    /// A new semaphore of `value` units in the manager (Python's `manager.Semaphore(value)`).
    ///
    /// # Errors
    ///
    /// As [`dict`](Manager::dict).
    pub fn semaphore(&self, value: usize) -> Result<SemaphoreProxy, ManagerError> {
        self.new_semaphore(value, false)
    }

    /// A new semaphore of `value` units that refuses a release past `value` (Python's
    /// `manager.BoundedSemaphore(value)`).
    ///
    /// # Errors
    ///
    /// As [`dict`](Manager::dict).
    pub fn bounded_semaphore(&self, value: usize) -> Result<SemaphoreProxy, ManagerError> {
        self.new_semaphore(value, true)
    }

    fn new_semaphore(&self, value: usize, bounded: bool) -> Result<SemaphoreProxy, ManagerError> {
        let op = Op::NewSemaphore {
            value: value as u64,
            bounded,
        };
        Ok(SemaphoreProxy::from_handle(self.create(&op)?))
    }

    /// A new condition variable in the manager, with a lock of its own (Python's
    /// `manager.Condition()`).
    ///
    /// # Errors
    ///
    /// As [`dict`](Manager::dict).
    pub fn condition(&self) -> Result<ConditionProxy, ManagerError> {
        Ok(ConditionProxy::from_handle(self.create(&Op::NewCondition)?))
    }

    /// A new barrier for `parties` in the manager (Python's `manager.Barrier(parties)`).
    ///
    /// # Errors
    ///
    /// As [`dict`](Manager::dict).
    pub fn barrier(&self, parties: usize) -> Result<BarrierProxy, ManagerError> {
        let op = Op::NewBarrier {
            parties: parties as u64,
        };
        Ok(BarrierProxy::from_handle(self.create(&op)?))
    }

    /// A new value in the manager (Python's `manager.Value(typecode, value)`): a namespace
    /// holding `value`, whose `get`, `set` and `update_with` are Python's `v.value` read,
    /// written and changed under a lock.
    ///
    /// # Errors
    ///
    /// As [`namespace`](Manager::namespace).
    pub fn value<T: Serialize + DeserializeOwned>(
        &self,
        value: T,
    ) -> Result<NamespaceProxy<T>, ManagerError> {
        self.namespace(value)
    }

    /// A new, clear event in the manager (Python's `manager.Event()`).
    ///
    /// # Errors
    ///
    /// As [`dict`](Manager::dict).
    pub fn event(&self) -> Result<EventProxy, ManagerError> {
        Ok(EventProxy::from_handle(self.create(&Op::NewEvent)?))
    }

    /// A new, empty, unbounded queue in the manager (Python's `manager.Queue()`).
    ///
    /// # Errors
    ///
    /// As [`dict`](Manager::dict).
    pub fn queue<T>(&self) -> Result<QueueProxy<T>, ManagerError> {
        Ok(QueueProxy::from_handle(self.create(&Op::NewQueue)?))
    }

    fn create(&self, op: &Op) -> Result<Handle, ManagerError> {
        let obj: ObjId = self.manager.call(MANAGER, op)?;
        Ok(Handle {
            manager: self.manager,
            obj,
        })
    }

    /// Stops the server (Python's `manager.shutdown()`): asks it to exit, waits a second,
    /// then sends `SIGTERM`, waits again, then `SIGKILL`. Every later call on its proxies fails
    /// with [`ManagerError::ShutDown`] in this process, and [`ManagerError::Gone`] in others.
    /// Calling it again does nothing.
    ///
    /// # Errors
    ///
    /// The crate's [`Error`] if the server could not be signalled.
    pub fn shutdown(&self) -> Result<(), Error> {
        if self.manager.is_shut_down() {
            return Ok(());
        }
        // A server already gone needs no asking.
        let _ = self.manager.call::<()>(MANAGER, &Op::Shutdown);
        self.manager.mark_shut_down();
        if self.exited_within(SHUTDOWN_PATIENCE) {
            return Ok(());
        }
        self.server.terminate()?;
        if self.exited_within(SHUTDOWN_PATIENCE) {
            return Ok(());
        }
        self.server.kill()?;
        let _ = self.server.join();
        Ok(())
    }

    /// Whether the server exited (however it ended) within `patience`.
    fn exited_within(&self, patience: Duration) -> bool {
        !matches!(self.server.join_timeout(patience), Ok(None))
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        if owner::pid() == self.owner {
            let _ = self.shutdown();
        }
    }
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("pid", &self.manager.pid)
            .field("shut_down", &self.manager.is_shut_down())
            .finish()
    }
}

/// The replies to every whole request in `stream`, against a fresh table (see
/// `__private::answer_manager_requests`).
pub(crate) fn answer_stream(stream: &[u8]) -> Vec<u8> {
    let mut replies = Vec::new();
    let fuzzer = waiting::Caller { id: 1, pid: 0 };
    server::answer_requests(fuzzer, stream, &mut table::Table::default(), &mut replies);
    replies
}

impl Context {
    /// Starts a manager whose server starts by this context's method (Python's
    /// `ctx.Manager()`).
    ///
    /// # Errors
    ///
    /// As [`Manager::start`].
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{get_context, StartMethod};
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let manager = get_context(StartMethod::Spawn)?.manager()?;
    /// let l = manager.list::<u8>()?;
    /// l.extend([1, 2])?;
    /// assert_eq!(l.to_vec()?, [1, 2]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn manager(&self) -> Result<Manager, Error> {
        Manager::start_by(Some(self.start_method()), None)
    }
}
