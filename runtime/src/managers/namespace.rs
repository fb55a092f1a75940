//! [`NamespaceProxy`], Python's `Namespace`: one value, usually a struct of named fields, held
//! by a manager and shared by every process with a copy of the proxy.

use super::client::{decode, encode, proxy_traits, Handle};
use super::protocol::{Bytes, Op};
use super::update::retry_update;
use super::ManagerError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;

/// A value of type `S` served by a [`Manager`](super::Manager) (Python's
/// `manager.Namespace()`): where Python sets one attribute at a time, this gets and sets the
/// whole struct, and [`update_with`](NamespaceProxy::update_with) changes fields atomically.
///
/// # Examples
///
/// ```
/// use multiproc::managers::Manager;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
/// struct Settings {
///     round: u32,
///     label: String,
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let manager = Manager::start()?;
/// let ns = manager.namespace(Settings::default())?;
/// ns.update_with(|s| s.round += 1)?;
/// ns.update_with(|s| s.label = "warm".to_string())?;
/// assert_eq!(ns.get()?, Settings { round: 1, label: "warm".to_string() });
/// # Ok(())
/// # }
/// ```
pub struct NamespaceProxy<S> {
    handle: Handle,
    types: PhantomData<fn() -> S>,
}

proxy_traits!(NamespaceProxy<S>);

impl<S: Serialize + DeserializeOwned> NamespaceProxy<S> {
    /// A copy of the value (Python reads `ns.field`).
    ///
    /// # Errors
    ///
    /// A [`ManagerError`]: the manager gone or shut down, or a stored value that is not an `S`.
    pub fn get(&self) -> Result<S, ManagerError> {
        let (value, _version): (Bytes, u64) = self.handle.call(&Op::NamespaceGet)?;
        decode(&value)
    }

    /// Replaces the value (Python sets `ns.field = ..`, one field at a time).
    ///
    /// # Errors
    ///
    /// The manager gone or shut down, or a value that does not encode.
    pub fn set(&self, value: &S) -> Result<(), ManagerError> {
        let value = encode(value)?;
        self.handle.call(&Op::NamespaceSet { value })
    }

    /// Changes the value with `f`, atomically: `f` runs here on a copy, and the result is
    /// written only if nobody wrote the namespace since it was read; otherwise `f` runs again,
    /// on the new value. Returns the value written.
    ///
    /// # Errors
    ///
    /// [`ManagerError::Contended`] if other writers won every one of its attempts; otherwise as
    /// [`get`](NamespaceProxy::get) and [`set`](NamespaceProxy::set).
    pub fn update_with(&self, mut f: impl FnMut(&mut S)) -> Result<S, ManagerError> {
        retry_update(|| {
            let (value, version): (Bytes, u64) = self.handle.call(&Op::NamespaceGet)?;
            let mut value: S = decode(&value)?;
            f(&mut value);
            let set = Op::NamespaceSetIfVersion {
                value: encode(&value)?,
                version,
            };
            Ok(self.handle.call::<bool>(&set)?.then_some(value))
        })
    }
}
