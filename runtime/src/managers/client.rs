//! A proxy's side of the conversation: which manager it belongs to, the connection each thread
//! of each process keeps to it, and the flag that makes every call fail at once after the
//! manager is gone or shut down.
//!
//! A connection is opened lazily, one per (manager, process, thread), and remembers the process
//! that opened it: a forked child finds its parent's in its copy of the thread's table and opens
//! its own, so two processes never interleave requests on one socket (cpython #101320). A
//! request is one frame and its answer another; the server runs requests one at a time.

use super::auth::{self, AuthKey};
use super::protocol::{address, ObjId, Op, Reply, Request};
use super::watch::Watch;
use super::ManagerError;
use crate::sys::fork_safe::ForkSafeLock;
use crate::sys::owner;
use crate::wire::frame::PartialFrame;
use crate::wire::{self, HEADER_LEN};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which manager a proxy belongs to: its server's pid and the random token in its socket's
/// name, and, for a proxy received over TCP, how to reach it from anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct ManagerRef {
    pub(crate) pid: i32,
    pub(crate) token: [u64; 2],
    pub(crate) remote: Option<Remote>,
}

/// A manager's TCP address and authkey. The key travels inside the proxy, so that a child
/// process the proxy is passed to can connect too (Python drops it: cpython #139801).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Remote {
    pub(crate) addr: SocketAddr,
    pub(crate) authkey: AuthKey,
}

/// What this process knows of a manager: it serves, it is gone, or this process shut it down.
const SERVING: u8 = 0;
const GONE: u8 = 1;
const SHUT_DOWN: u8 = 2;

/// The status of every manager this process has used, shared by all its threads.
static STATUS: ForkSafeLock<BTreeMap<[u64; 2], Arc<AtomicU8>>> = ForkSafeLock::new(BTreeMap::new());

/// A thread's connection to one manager.
struct Connection {
    /// The process that opened it: in a forked child, the parent's copy is never used.
    pid: u32,
    fd: OwnedFd,
    status: Arc<AtomicU8>,
    watch: Watch,
}

thread_local! {
    static CONNECTIONS: RefCell<HashMap<[u64; 2], Connection>> = RefCell::new(HashMap::new());
}

impl ManagerRef {
    fn status(&self) -> Arc<AtomicU8> {
        STATUS.with(|all| all.entry(self.token).or_default().clone())
    }

    /// The error every call gets once the manager is gone or shut down, if it is.
    fn refusal(&self, status: &AtomicU8) -> Option<ManagerError> {
        match status.load(Ordering::Acquire) {
            SERVING => None,
            SHUT_DOWN => Some(ManagerError::ShutDown),
            _ => Some(ManagerError::Gone { pid: self.pid }),
        }
    }

    /// Marks the manager shut down by this process, and closes this thread's connection.
    pub(crate) fn mark_shut_down(&self) {
        self.status().store(SHUT_DOWN, Ordering::Release);
        let _ = CONNECTIONS.try_with(|all| all.borrow_mut().remove(&self.token));
    }

    /// Whether this process shut the manager down.
    pub(crate) fn is_shut_down(&self) -> bool {
        self.status().load(Ordering::Acquire) == SHUT_DOWN
    }

    /// Sends `op` on object `obj` and decodes the answer as `R`.
    pub(crate) fn call<R: DeserializeOwned>(&self, obj: ObjId, op: &Op) -> Result<R, ManagerError> {
        let request = wire::encode_frame(&Request { obj, op })?;
        let answer = self.exchange(&request)?;
        let reply: Reply = wire::decode(&answer)?;
        Ok(wire::decode(&reply?)?)
    }

    /// Sends one request frame on this thread's connection and returns the answer's payload.
    fn exchange(&self, request: &[u8]) -> Result<Vec<u8>, ManagerError> {
        let gone = |e: io::Error| ManagerError::from_io(self.pid, e);
        CONNECTIONS
            .try_with(|all| {
                let mut all = all.borrow_mut();
                let me = owner::pid();
                if all.get(&self.token).is_none_or(|conn| conn.pid != me) {
                    let status = self.status();
                    if let Some(refused) = self.refusal(&status) {
                        return Err(refused);
                    }
                    let conn = self.connect(status)?;
                    // Connections to managers gone or shut down since this thread last used
                    // them are closed here, so that a thread that outlives many managers does
                    // not keep a descriptor for each.
                    all.retain(|_, c| c.status.load(Ordering::Acquire) == SERVING);
                    all.insert(self.token, conn);
                }
                let Some(conn) = all.get_mut(&self.token) else {
                    return Err(gone(io::ErrorKind::NotConnected.into()));
                };
                if let Some(refused) = self.refusal(&conn.status) {
                    all.remove(&self.token);
                    return Err(refused);
                }
                let answer = round_trip(conn, request, self.pid);
                if let Err(e) = &answer {
                    if let ManagerError::Gone { .. } = e {
                        conn.status.store(GONE, Ordering::Release);
                    }
                    all.remove(&self.token);
                }
                answer
            })
            .map_err(|e| gone(io::Error::other(e)))?
    }

    /// A new connection to the server: over TCP, authenticated, for a remote proxy; else
    /// over its Unix socket, checked to be the server's and of this user.
    fn connect(&self, status: Arc<AtomicU8>) -> Result<Connection, ManagerError> {
        let fd = match self.remote {
            Some(remote) => {
                let (fd, id) = auth::connect(remote.addr, &remote.authkey)?;
                if (id.pid, id.token) != (self.pid, self.token) {
                    return Err(ManagerError::Gone { pid: self.pid });
                }
                fd
            }
            None => self.connect_local(&status)?,
        };
        Ok(Connection {
            pid: owner::pid(),
            fd,
            status,
            watch: Watch::default(),
        })
    }

    /// A new connection to the server's Unix socket, checked to be the server's and of this
    /// user.
    fn connect_local(&self, status: &AtomicU8) -> Result<OwnedFd, ManagerError> {
        let fail = |e: io::Error| ManagerError::from_io(self.pid, e);
        let stream = socket::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| fail(e.into()))?;
        let address = address(self.pid, self.token).map_err(fail)?;
        if let Err(e) = socket::connect(stream.as_raw_fd(), &address) {
            let e = io::Error::from(e);
            if e.kind() == io::ErrorKind::ConnectionRefused {
                status.store(GONE, Ordering::Release);
            }
            return Err(fail(e));
        }
        let peer = socket::getsockopt(&stream, socket::sockopt::PeerCredentials)
            .map_err(|e| fail(e.into()))?;
        // SAFETY: geteuid has no preconditions.
        if peer.pid() != self.pid || peer.uid() != unsafe { libc::geteuid() } {
            return Err(fail(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "the socket is served by process {} of user {}, not by the manager",
                    peer.pid(),
                    peer.uid()
                ),
            )));
        }
        Ok(stream)
    }

    /// The manager at `remote`, reached over TCP, as its handshake says who it is; this thread
    /// keeps the connection for its next calls.
    pub(crate) fn connect_remote(remote: Remote) -> Result<ManagerRef, ManagerError> {
        let (fd, id) = auth::connect(remote.addr, &remote.authkey)?;
        let manager = ManagerRef {
            pid: id.pid,
            token: id.token,
            remote: Some(remote),
        };
        manager.keep(fd);
        Ok(manager)
    }

    /// Makes `fd`, a connection just opened to the server, this thread's connection to it.
    fn keep(&self, fd: OwnedFd) {
        let conn = Connection {
            pid: owner::pid(),
            fd,
            status: self.status(),
            watch: Watch::default(),
        };
        let _ = CONNECTIONS.try_with(|all| all.borrow_mut().insert(self.token, conn));
    }

    /// Waits until the server just started listens, or `alive` says it died, or `patience`
    /// runs out; then this thread holds a connection to it.
    pub(crate) fn wait_until_listening(
        &self,
        alive: impl Fn() -> bool,
        patience: Duration,
    ) -> Result<(), ManagerError> {
        let deadline = Instant::now() + patience;
        let mut pause = Duration::from_micros(20);
        loop {
            let attempt = self.connect(Arc::default());
            match attempt {
                Ok(conn) => {
                    self.keep(conn.fd);
                    return Ok(());
                }
                Err(ManagerError::Gone { .. }) if alive() && Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(2));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The most bytes read at once while a reply's header is incomplete: a small reply arrives
/// whole, with its header, in one read (nothing follows a reply: a connection carries one
/// request at a time).
const FIRST_READ: usize = 64 * 1024;

/// Sends `request` and reads the answer's payload: a connection that ends or breaks is the
/// server gone. The thread watches for the answer while that pays (see `watch.rs`), then
/// sleeps in `read` until it comes.
fn round_trip(conn: &mut Connection, request: &[u8], pid: i32) -> Result<Vec<u8>, ManagerError> {
    let fail = |e: io::Error| ManagerError::from_io(pid, e);
    let fd = conn.fd.as_fd();
    let mut sent = 0;
    while sent < request.len() {
        match crate::sys::send_vectored(fd, &[IoSlice::new(&request[sent..])]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(fail(e)),
        }
    }
    conn.watch.answer(fd);
    let mut frame = PartialFrame::reading_ahead(FIRST_READ);
    while !frame.is_complete() {
        // A blocking socket: `None` (would block) does not happen, and is harmless if it did.
        if frame.read_some(fd, usize::MAX).map_err(fail)? == Some(0) {
            return Err(fail(io::ErrorKind::UnexpectedEof.into()));
        }
    }
    let mut bytes = frame.take();
    bytes.drain(..HEADER_LEN);
    Ok(bytes)
}

/// What a proxy is: an object of a manager. It travels as itself, so a proxy passed to a task or
/// stored in another managed object names the same object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Handle {
    pub(crate) manager: ManagerRef,
    pub(crate) obj: ObjId,
}

impl Handle {
    pub(crate) fn call<R: DeserializeOwned>(&self, op: &Op) -> Result<R, ManagerError> {
        self.manager.call(self.obj, op)
    }
}

/// A key or value as the server stores it.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ManagerError> {
    Ok(wire::encode(value)?)
}

/// A stored key or value, as the proxy's type.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ManagerError> {
    Ok(wire::decode(bytes)?)
}

/// Stored values, as the proxy's type.
pub(crate) fn decode_all<T: DeserializeOwned>(all: Vec<Vec<u8>>) -> Result<Vec<T>, ManagerError> {
    all.iter().map(|bytes| decode(bytes)).collect()
}

/// The traits every proxy type has, whatever its type parameters: `Clone`, `Debug`, equality
/// (the same object of the same manager), and serde as its [`Handle`].
macro_rules! proxy_traits {
    ($name:ident $(< $($t:ident),+ >)?) => {
        impl$(<$($t),+>)? Clone for $name$(<$($t),+>)? {
            fn clone(&self) -> Self {
                Self::from_handle(self.handle)
            }
        }

        impl$(<$($t),+>)? std::fmt::Debug for $name$(<$($t),+>)? {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("manager", &self.handle.manager.pid)
                    .field("object", &self.handle.obj)
                    .finish()
            }
        }

        impl$(<$($t),+>)? PartialEq for $name$(<$($t),+>)? {
            fn eq(&self, other: &Self) -> bool {
                self.handle == other.handle
            }
        }

        impl$(<$($t),+>)? Eq for $name$(<$($t),+>)? {}

        impl$(<$($t),+>)? serde::Serialize for $name$(<$($t),+>)? {
            fn serialize<Ser: serde::Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
                self.handle.serialize(serializer)
            }
        }

        impl<'de, $($($t),+)?> serde::Deserialize<'de> for $name$(<$($t),+>)? {
            fn deserialize<De: serde::Deserializer<'de>>(deserializer: De) -> Result<Self, De::Error> {
                let handle = $crate::managers::client::Handle::deserialize(deserializer)?;
                Ok(Self::from_handle(handle))
            }
        }

        impl$(<$($t),+>)? $name$(<$($t),+>)? {
            pub(crate) fn from_handle(handle: $crate::managers::client::Handle) -> Self {
                $name { handle, types: std::marker::PhantomData }
            }
        }
    };
}

pub(crate) use proxy_traits;
