//! Managers other machines use (Python's `BaseManager(address=(host, port), authkey=..)`): a
//! [`ManagerBuilder`] starts a server that also listens on TCP, [`Manager::connect`] reaches it
//! from anywhere with the authkey, and objects pass between them by name.
//!
//! Python registers a typeid on both sides (`register("get_jobs", ..)`, then `m.get_jobs()`);
//! here the side that holds a proxy publishes it under a name ([`Manager::publish`]), and any
//! side looks it up as the same proxy type ([`RemoteManager::lookup`]). The names live in the
//! server, in a dict every manager starts with. A proxy looked up over TCP carries the address
//! and the authkey, so it works in the child processes it is passed to.

use super::auth::AuthKey;
use super::client::{decode, encode, Handle, ManagerRef, Remote};
use super::protocol::ObjId;
use super::{DictProxy, Manager, ManagerError, NamespaceProxy, ServerError};
use crate::error::Error;
use crate::process::StartMethod;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::net::{SocketAddr, TcpListener};

/// The number of the namespace holding the TCP address a manager listens on, if any.
pub(crate) const ADDRESS_OBJ: ObjId = 1;

/// The number of the dict of published names: name to (proxy type, object number).
pub(crate) const REGISTRY_OBJ: ObjId = 2;

/// How to start a [`Manager`] (Python's `BaseManager(address=.., authkey=..)` before
/// `start()`): on TCP or not, with which authkey and start method.
///
/// # Examples
///
/// ```
/// use multiproc::managers::{DictProxy, Manager};
///
/// # fn main() -> multiproc::Result<()> {
/// let manager = Manager::builder()
///     .listen(([127, 0, 0, 1], 0))
///     .authkey(b"secret")
///     .start()?;
/// let jobs = manager.dict::<String, u32>()?;
/// manager.publish("jobs", &jobs)?;
///
/// // Elsewhere (another program, another host):
/// let addr = manager.address().expect("it listens on TCP");
/// let client = Manager::connect(addr, b"secret")?;
/// let remote_jobs: DictProxy<String, u32> = client.lookup("jobs")?;
/// remote_jobs.insert("build".to_string(), 3)?;
/// assert_eq!(jobs.get(&"build".to_string())?, Some(3));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until `start`"]
pub struct ManagerBuilder {
    listen: Option<SocketAddr>,
    authkey: Option<Vec<u8>>,
    method: Option<StartMethod>,
}

impl ManagerBuilder {
    /// Also listens on the TCP address `addr` (Python's `address=(host, port)`); port 0 picks a
    /// free port, which [`Manager::address`] tells.
    pub fn listen(mut self, addr: impl Into<SocketAddr>) -> Self {
        self.listen = Some(addr.into());
        self
    }

    /// The key TCP clients must know, 1 to 32 bytes (Python's `authkey`). Without one, a
    /// manager listening on a loopback address makes a random key ([`Manager::authkey`]), and
    /// one listening on any other address is refused.
    pub fn authkey(mut self, key: impl AsRef<[u8]>) -> Self {
        self.authkey = Some(key.as_ref().to_vec());
        self
    }

    /// Starts the server by `method` rather than this process's start method.
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Starts the server, and waits until it serves (Python's `manager.start()`).
    ///
    /// # Errors
    ///
    /// [`ManagerError::InsecureAddress`] for a non-loopback address without an authkey,
    /// [`ManagerError::Authentication`] for a key of the wrong length,
    /// [`ManagerError::Unreachable`] if the address cannot be listened on; else as
    /// [`Manager::start`].
    pub fn start(self) -> Result<Manager, Error> {
        let tcp = match self.listen {
            Some(addr) => Some(Remote {
                addr,
                authkey: checked_key(addr, self.authkey.as_deref())?,
            }),
            None => None,
        };
        if let Some(remote) = tcp.filter(|r| r.addr.port() != 0) {
            // A port in use is told here, plainly, rather than as a server that died.
            drop(
                TcpListener::bind(remote.addr).map_err(|source| ManagerError::Unreachable {
                    addr: remote.addr,
                    source,
                })?,
            );
        }
        Manager::start_by(self.method, tcp)
    }
}

/// The key a manager listening on `addr` uses.
fn checked_key(addr: SocketAddr, key: Option<&[u8]>) -> Result<AuthKey, ManagerError> {
    match key {
        Some(key) => AuthKey::new(key),
        None if addr.ip().is_loopback() => {
            AuthKey::random().map_err(|source| ManagerError::Unreachable { addr, source })
        }
        None => Err(ManagerError::InsecureAddress { addr }),
    }
}

/// The TCP address a manager's server listens on, as it told in its address namespace.
pub(crate) fn listening_address(manager: ManagerRef) -> Result<Option<SocketAddr>, ManagerError> {
    let handle = Handle {
        manager,
        obj: ADDRESS_OBJ,
    };
    NamespaceProxy::<Option<SocketAddr>>::from_handle(handle).get()
}

/// The dict of published names of `manager`.
fn registry(manager: ManagerRef) -> DictProxy<String, (String, ObjId)> {
    DictProxy::from_handle(Handle {
        manager,
        obj: REGISTRY_OBJ,
    })
}

/// Publishes `proxy`, an object of `manager`, under `name`.
pub(crate) fn publish<P: Serialize>(
    manager: ManagerRef,
    name: &str,
    proxy: &P,
) -> Result<(), ManagerError> {
    // A proxy travels as its handle.
    let handle: Handle = decode(&encode(proxy)?)?;
    if handle.manager.token != manager.token {
        return Err(ManagerError::Server(ServerError::NoSuchObject {
            obj: handle.obj,
        }));
    }
    let kind = std::any::type_name::<P>().to_string();
    registry(manager).insert(name.to_string(), (kind, handle.obj))?;
    Ok(())
}

/// The proxy published under `name` in `manager`, as a `P` reaching it through `manager`.
pub(crate) fn lookup<P: DeserializeOwned>(
    manager: ManagerRef,
    name: &str,
) -> Result<P, ManagerError> {
    let asked = std::any::type_name::<P>();
    match registry(manager).get(&name.to_string())? {
        Some((kind, obj)) if kind == asked => decode(&encode(&Handle { manager, obj })?),
        _ => Err(ManagerError::NotPublished {
            name: name.to_string(),
            asked: asked.to_string(),
        }),
    }
}

/// A connection to a manager another process started, maybe on another host (Python's
/// `BaseManager(address, authkey).connect()`): it looks up the objects the manager
/// publishes, and publishes more. Dropping it leaves the manager running.
///
/// # Examples
///
/// See [`ManagerBuilder`].
#[derive(Debug, Clone)]
pub struct RemoteManager {
    manager: ManagerRef,
    addr: SocketAddr,
}

impl Manager {
    /// How to start a manager on TCP, or with another start method.
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder::default()
    }

    /// Connects to the manager listening at `addr` that knows `authkey` (Python's
    /// `manager.connect()`), after the mutual HMAC-SHA256 challenge.
    ///
    /// # Errors
    ///
    /// [`ManagerError::Authentication`] if either side does not know the key (the manager
    /// serves on), [`ManagerError::Unreachable`] if nothing answers at `addr`.
    pub fn connect(
        addr: impl Into<SocketAddr>,
        authkey: impl AsRef<[u8]>,
    ) -> Result<RemoteManager, ManagerError> {
        let addr = addr.into();
        let authkey = AuthKey::new(authkey.as_ref())?;
        let manager = ManagerRef::connect_remote(Remote { addr, authkey })?;
        Ok(RemoteManager { manager, addr })
    }

    /// Publishes `proxy`, an object of this manager, under `name`, for
    /// [`RemoteManager::lookup`] (Python's `register(typeid, callable=lambda: obj)`). A name
    /// published again names the new proxy.
    ///
    /// # Errors
    ///
    /// [`ManagerError::Server`] with [`ServerError::NoSuchObject`] for a proxy of another
    /// manager; as [`Manager::dict`].
    pub fn publish<P: Serialize>(&self, name: &str, proxy: &P) -> Result<(), ManagerError> {
        publish(self.manager, name, proxy)
    }

    /// The proxy published under `name`, as a `P` (Python's `manager.get_<typeid>()`).
    ///
    /// # Errors
    ///
    /// [`ManagerError::NotPublished`] if nothing is published under `name` as a `P`.
    pub fn lookup<P: DeserializeOwned>(&self, name: &str) -> Result<P, ManagerError> {
        lookup(self.manager, name)
    }

    /// The TCP address the server listens on, if it does (Python's `manager.address`).
    pub fn address(&self) -> Option<SocketAddr> {
        self.tcp.map(|remote| remote.addr)
    }

    /// The key TCP clients must know, if the server listens on TCP (Python's
    /// `manager._authkey`): the one given, or the random one made.
    pub fn authkey(&self) -> Option<Vec<u8>> {
        self.tcp.map(|remote| remote.authkey.as_bytes().to_vec())
    }
}

impl RemoteManager {
    /// The proxy the manager publishes under `name`, as a `P` (Python's
    /// `manager.get_<typeid>()`). It reaches the manager over TCP, from this process and from
    /// any process it is passed to: the authkey travels inside it.
    ///
    /// # Errors
    ///
    /// [`ManagerError::NotPublished`] if nothing is published under `name` as a `P` (the
    /// type's name must match, generics included); [`ManagerError::Gone`] and friends.
    pub fn lookup<P: DeserializeOwned>(&self, name: &str) -> Result<P, ManagerError> {
        lookup(self.manager, name)
    }

    /// Publishes `proxy`, an object of this manager, under `name`.
    ///
    /// # Errors
    ///
    /// As [`Manager::publish`].
    pub fn publish<P: Serialize>(&self, name: &str, proxy: &P) -> Result<(), ManagerError> {
        publish(self.manager, name, proxy)
    }

    /// The server's process id, on its host.
    pub fn pid(&self) -> i32 {
        self.manager.pid
    }

    /// The address this connects to.
    pub fn address(&self) -> SocketAddr {
        self.addr
    }
}
