//! [`DictProxy`], Python's `DictProxy`: a dict held by a manager and shared by every process
//! with a copy of the proxy.

use super::client::{decode, decode_all, encode, proxy_traits, Handle};
use super::protocol::{Bytes, Number, Op};
use super::update::retry_update;
use super::ManagerError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::hash::Hash;
use std::marker::PhantomData;

/// A dict served by a [`Manager`](super::Manager) (Python's `manager.dict()`), typed: keys `K`,
/// values `V`. Cheap to clone, and a serde handle: pass it to a task, or store it in another
/// managed object, and it names the same dict.
///
/// Keys compare by their encoding, not by `Eq`: that is the same thing for integers, `String`,
/// `bool`, `char`, tuples, `Vec`s, enums and structs of these, but not for floats (`0.0` and
/// `-0.0` are two keys, and `NaN` equals itself), nor for maps whose order varies (a `HashMap`
/// key). The dict keeps insertion order, as Python's does; `keys`, `values` and `items` are
/// snapshots.
///
/// Every call is one round trip to the server, which runs one request at a time: each method
/// is atomic on its own. [`fetch_add`](DictProxy::fetch_add) adds on the server, in one step;
/// [`update_with`](DictProxy::update_with) runs a closure here and writes its result only if
/// nobody wrote the key meanwhile. A read-modify-write made of `get` then `insert` is not
/// atomic, as in Python.
///
/// # Examples
///
/// ```
/// use multiproc::managers::{DictProxy, Manager};
/// use multiproc::prelude::*;
///
/// #[process_task]
/// fn record(d: DictProxy<String, u32>, name: String) -> multiproc::Result<()> {
///     d.insert(name.clone(), name.len() as u32)?;
///     Ok(())
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let manager = Manager::start()?;
/// let d = manager.dict::<String, u32>()?;
/// let children: Vec<_> = ["ab", "cde"]
///     .map(|name| Process::new(task!(record, d.clone(), name.to_string())).start())
///     .into_iter()
///     .collect::<Result<_, _>>()?;
/// for child in children {
///     child.join()??;
/// }
/// assert_eq!(d.get(&"cde".to_string())?, Some(3));
/// assert_eq!(d.len()?, 2);
/// # Ok(())
/// # }
/// ```
pub struct DictProxy<K, V> {
    handle: Handle,
    types: PhantomData<fn() -> (K, V)>,
}

proxy_traits!(DictProxy<K, V>);

impl<K, V> DictProxy<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// Sets `key` to `value`, returning the value it replaces (Python's `d[key] = value`;
    /// `HashMap::insert`). A key already there keeps its place in the order.
    ///
    /// # Errors
    ///
    /// A [`ManagerError`]: the manager gone or shut down, or a value that does not encode.
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>, ManagerError> {
        let (key, value) = (encode(&key)?, encode(&value)?);
        self.decode_some(self.handle.call(&Op::DictInsert { key, value })?)
    }

    /// The value of `key`, if it is there (Python's `d.get(key)`).
    ///
    /// # Errors
    ///
    /// A [`ManagerError`]: the manager gone or shut down, or a stored value that is not a `V`.
    pub fn get(&self, key: &K) -> Result<Option<V>, ManagerError> {
        let key = encode(key)?;
        self.decode_some(self.handle.call(&Op::DictGet { key })?)
    }

    /// Removes `key`, returning its value (Python's `d.pop(key, None)`).
    ///
    /// # Errors
    ///
    /// As [`get`](DictProxy::get).
    pub fn remove(&self, key: &K) -> Result<Option<V>, ManagerError> {
        let key = encode(key)?;
        self.decode_some(self.handle.call(&Op::DictRemove { key })?)
    }

    /// Whether `key` is there (Python's `key in d`).
    ///
    /// # Errors
    ///
    /// As [`get`](DictProxy::get).
    pub fn contains_key(&self, key: &K) -> Result<bool, ManagerError> {
        let key = encode(key)?;
        self.handle.call(&Op::DictContains { key })
    }

    /// The number of entries (Python's `len(d)`).
    ///
    /// # Errors
    ///
    /// The manager gone or shut down.
    pub fn len(&self) -> Result<usize, ManagerError> {
        Ok(self.handle.call::<u64>(&Op::Len)? as usize)
    }

    /// Whether the dict is empty.
    ///
    /// # Errors
    ///
    /// As [`len`](DictProxy::len).
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// The keys, in insertion order: a snapshot (Python's `list(d.keys())`).
    ///
    /// # Errors
    ///
    /// As [`get`](DictProxy::get).
    pub fn keys(&self) -> Result<Vec<K>, ManagerError> {
        decode_all(self.handle.call(&Op::DictKeys)?)
    }

    /// The values, in insertion order: a snapshot (Python's `list(d.values())`).
    ///
    /// # Errors
    ///
    /// As [`get`](DictProxy::get).
    pub fn values(&self) -> Result<Vec<V>, ManagerError> {
        decode_all(self.handle.call(&Op::DictValues)?)
    }

    /// The entries, in insertion order: a snapshot (Python's `list(d.items())`).
    ///
    /// # Errors
    ///
    /// As [`get`](DictProxy::get).
    pub fn items(&self) -> Result<Vec<(K, V)>, ManagerError> {
        let items: Vec<(Bytes, Bytes)> = self.handle.call(&Op::DictItems)?;
        items
            .iter()
            .map(|(k, v)| Ok((decode(k)?, decode(v)?)))
            .collect()
    }

    /// A copy of the whole dict (Python's `d.copy()`).
    ///
    /// # Errors
    ///
    /// As [`get`](DictProxy::get).
    pub fn to_hash_map(&self) -> Result<HashMap<K, V>, ManagerError>
    where
        K: Eq + Hash,
    {
        Ok(self.items()?.into_iter().collect())
    }

    /// Sets every pair, in order, in one round trip and one atomic step (Python's
    /// `d.update(pairs)`).
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert); nothing is set if a pair does not encode.
    pub fn update(&self, pairs: impl IntoIterator<Item = (K, V)>) -> Result<(), ManagerError> {
        let pairs = pairs
            .into_iter()
            .map(|(k, v)| Ok((encode(&k)?, encode(&v)?)))
            .collect::<Result<_, ManagerError>>()?;
        self.handle.call(&Op::DictUpdate { pairs })
    }

    /// Removes every entry (Python's `d.clear()`).
    ///
    /// # Errors
    ///
    /// The manager gone or shut down.
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.handle.call(&Op::Clear)
    }

    /// Removes and returns the entry inserted last (Python's `d.popitem()`).
    ///
    /// # Errors
    ///
    /// As [`get`](DictProxy::get).
    pub fn pop(&self) -> Result<Option<(K, V)>, ManagerError> {
        let popped: Option<(Bytes, Bytes)> = self.handle.call(&Op::DictPop)?;
        popped
            .map(|(k, v)| Ok((decode(&k)?, decode(&v)?)))
            .transpose()
    }

    /// The value of `key`, after setting it to `default` if it was absent, atomically (Python's
    /// `d.setdefault(key, default)`).
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    pub fn setdefault(&self, key: K, default: V) -> Result<V, ManagerError> {
        let (key, value) = (encode(&key)?, encode(&default)?);
        decode(
            &self
                .handle
                .call::<Bytes>(&Op::DictSetDefault { key, value })?,
        )
    }

    /// Replaces the value of `key` with `f(current)` (`None`: absent; returning `None` removes
    /// it), atomically: `f` runs here, and its result is written only if nobody wrote the key
    /// since it was read; otherwise `f` runs again on the new value, so it may run more than
    /// once. Returns what `f` returned last. Two round trips when uncontended, against Python's
    /// four (lock, get, set, unlock).
    ///
    /// # Errors
    ///
    /// [`ManagerError::Contended`] if other writers won every one of its attempts; otherwise as
    /// [`insert`](DictProxy::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::managers::Manager;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let manager = Manager::start()?;
    /// let d = manager.dict::<String, Vec<u32>>()?;
    /// let key = "seen".to_string();
    /// d.update_with(&key, |v| Some(v.unwrap_or_default().into_iter().chain([7]).collect()))?;
    /// assert_eq!(d.get(&key)?, Some(vec![7]));
    /// # Ok(())
    /// # }
    /// ```
    pub fn update_with(
        &self,
        key: &K,
        mut f: impl FnMut(Option<V>) -> Option<V>,
    ) -> Result<Option<V>, ManagerError> {
        let key = encode(key)?;
        retry_update(|| {
            let get = Op::DictGetVersioned { key: key.clone() };
            let (current, version): (Option<Bytes>, u64) = self.handle.call(&get)?;
            let next = f(current.as_deref().map(decode).transpose()?);
            let value = next.as_ref().map(encode).transpose()?;
            let key = key.clone();
            let set = Op::DictSetIfVersion {
                key,
                value,
                version,
            };
            Ok(self.handle.call::<bool>(&set)?.then_some(next))
        })
    }

    /// Adds `delta` to the number stored under `key` (absent: zero) on the server, in one
    /// atomic step, and returns the previous value (`AtomicI64::fetch_add`; Python needs a
    /// lock and four round trips). Integers wrap on overflow, as atomics do.
    ///
    /// # Errors
    ///
    /// [`ServerError::NotANumber`](super::ServerError::NotANumber) if the stored value is not
    /// a `V`; otherwise as [`insert`](DictProxy::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::managers::Manager;
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let manager = Manager::start()?;
    /// let hits = manager.dict::<String, u64>()?;
    /// let home = "home".to_string();
    /// assert_eq!(hits.fetch_add(&home, 1)?, 0);
    /// assert_eq!(hits.fetch_add(&home, 2)?, 1);
    /// assert_eq!(hits.fetch_sub(&home, 1)?, 3);
    /// assert_eq!(hits.get(&home)?, Some(2));
    /// # Ok(())
    /// # }
    /// ```
    pub fn fetch_add(&self, key: &K, delta: V) -> Result<V, ManagerError>
    where
        V: Number,
    {
        self.add(key, delta, false)
    }

    /// Subtracts `delta` from the number stored under `key`, as
    /// [`fetch_add`](DictProxy::fetch_add) adds; returns the previous value.
    ///
    /// # Errors
    ///
    /// As [`fetch_add`](DictProxy::fetch_add).
    pub fn fetch_sub(&self, key: &K, delta: V) -> Result<V, ManagerError>
    where
        V: Number,
    {
        self.add(key, delta, true)
    }

    fn add(&self, key: &K, delta: V, subtract: bool) -> Result<V, ManagerError>
    where
        V: Number,
    {
        let op = Op::DictFetchAdd {
            key: encode(key)?,
            kind: V::KIND,
            delta: encode(&delta)?,
            subtract,
        };
        decode(&self.handle.call::<Bytes>(&op)?)
    }

    fn decode_some(&self, value: Option<Bytes>) -> Result<Option<V>, ManagerError> {
        value.as_deref().map(decode).transpose()
    }
}
