//! [`ListProxy`], Python's `ListProxy`: a list held by a manager and shared by every process
//! with a copy of the proxy.

use super::client::{decode, decode_all, encode, proxy_traits, Handle};
use super::protocol::{Bytes, Op};
use super::ManagerError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;

/// A list served by a [`Manager`](super::Manager) (Python's `manager.list()`), of `T`s. Cheap to
/// clone, and a serde handle: pass it to a task, or store it in another managed object, and it
/// names the same list.
///
/// Each method is one round trip and atomic on its own; [`to_vec`](ListProxy::to_vec) is a
/// snapshot. Indexes are `usize`, and one past the end is an error
/// ([`ServerError::IndexOutOfRange`](super::ServerError::IndexOutOfRange), Python's
/// `IndexError`), except for [`get`](ListProxy::get), which gives `None` as `Vec::get` does.
///
/// # Examples
///
/// A list stored in a dict is stored as a proxy, so a push through what `get` returns is seen
/// by everyone (in Python, `d["k"].append(x)` on a plain list is silently lost):
///
/// ```
/// use multiproc::managers::{DictProxy, ListProxy, Manager};
///
/// # fn main() -> multiproc::Result<()> {
/// let manager = Manager::start()?;
/// let d: DictProxy<String, ListProxy<i64>> = manager.dict()?;
/// d.insert("k".to_string(), manager.list()?)?;
/// if let Some(inner) = d.get(&"k".to_string())? {
///     inner.push(5)?;
/// }
/// let inner = d.get(&"k".to_string())?.expect("stored");
/// assert_eq!(inner.to_vec()?, [5]);
/// # Ok(())
/// # }
/// ```
pub struct ListProxy<T> {
    handle: Handle,
    types: PhantomData<fn() -> T>,
}

proxy_traits!(ListProxy<T>);

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// Appends `value` (Python's `l.append(value)`).
    ///
    /// # Errors
    ///
    /// A [`ManagerError`]: the manager gone or shut down, or a value that does not encode.
    pub fn push(&self, value: T) -> Result<(), ManagerError> {
        let value = encode(&value)?;
        self.handle.call(&Op::ListPush { value })
    }

    /// Appends every value, in one round trip and one atomic step (Python's `l.extend(values)`).
    ///
    /// # Errors
    ///
    /// As [`push`](ListProxy::push); nothing is appended if a value does not encode.
    pub fn extend(&self, values: impl IntoIterator<Item = T>) -> Result<(), ManagerError> {
        let values = values
            .into_iter()
            .map(|v| encode(&v))
            .collect::<Result<_, _>>()?;
        self.handle.call(&Op::ListExtend { values })
    }

    /// The value at `index`, or `None` past the end (Python's `l[index]`, `Vec::get`).
    ///
    /// # Errors
    ///
    /// The manager gone or shut down, or a stored value that is not a `T`.
    pub fn get(&self, index: usize) -> Result<Option<T>, ManagerError> {
        let value: Option<Bytes> = self.handle.call(&Op::ListGet {
            index: index as u64,
        })?;
        value.as_deref().map(decode).transpose()
    }

    /// Replaces the value at `index`, returning the old one (Python's `l[index] = value`).
    ///
    /// # Errors
    ///
    /// [`ServerError::IndexOutOfRange`](super::ServerError::IndexOutOfRange) past the end;
    /// otherwise as [`push`](ListProxy::push).
    pub fn set(&self, index: usize, value: T) -> Result<T, ManagerError> {
        let value = encode(&value)?;
        let index = index as u64;
        decode(&self.handle.call::<Bytes>(&Op::ListSet { index, value })?)
    }

    /// Inserts `value` before `index`; `index` may be the length (Python's
    /// `l.insert(index, value)`, `Vec::insert`).
    ///
    /// # Errors
    ///
    /// As [`set`](ListProxy::set).
    pub fn insert(&self, index: usize, value: T) -> Result<(), ManagerError> {
        let value = encode(&value)?;
        let index = index as u64;
        self.handle.call(&Op::ListInsert { index, value })
    }

    /// Removes and returns the value at `index` (Python's `l.pop(index)`, `Vec::remove`).
    ///
    /// # Errors
    ///
    /// As [`set`](ListProxy::set).
    pub fn remove(&self, index: usize) -> Result<T, ManagerError> {
        let index = index as u64;
        decode(&self.handle.call::<Bytes>(&Op::ListRemove { index })?)
    }

    /// Removes and returns the last value (Python's `l.pop()`).
    ///
    /// # Errors
    ///
    /// As [`get`](ListProxy::get).
    pub fn pop(&self) -> Result<Option<T>, ManagerError> {
        let value: Option<Bytes> = self.handle.call(&Op::ListPop)?;
        value.as_deref().map(decode).transpose()
    }

    /// The number of values (Python's `len(l)`).
    ///
    /// # Errors
    ///
    /// The manager gone or shut down.
    pub fn len(&self) -> Result<usize, ManagerError> {
        Ok(self.handle.call::<u64>(&Op::Len)? as usize)
    }

    /// Whether the list is empty.
    ///
    /// # Errors
    ///
    /// As [`len`](ListProxy::len).
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// Removes every value (Python's `l.clear()`).
    ///
    /// # Errors
    ///
    /// As [`len`](ListProxy::len).
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.handle.call(&Op::Clear)
    }

    /// A copy of the whole list: a snapshot (Python's `l[:]` or `list(l)`).
    ///
    /// # Errors
    ///
    /// As [`get`](ListProxy::get).
    pub fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
        decode_all(self.handle.call(&Op::ListAll)?)
    }
}
