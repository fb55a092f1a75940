//! [`RawArray`] and [`Array`]: a fixed-length array of `T` in shared memory, without and with
//! a lock.

use super::{block_for, check_range, load_into, store_from, Guard, Guarded, Handle};
use crate::shm::{Block, ShmError};
use crate::sync::{AnyLock, RLock, TryLockResult};
use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::marker::PhantomData;
use std::ops::Range;
use std::ptr::NonNull;

/// A fixed-length array of `T` in shared memory with no lock (Python's
/// `multiprocessing.RawArray`).
///
/// Every item is read and written atomically, in units of up to 8 bytes (see the [module
/// docs](super)): threads and processes may use it at once. A bulk copy
/// ([`to_vec`](RawArray::to_vec), [`set_slice`](RawArray::set_slice)) is not one atomic
/// step: concurrent writers may interleave, as in Python.
///
/// ```
/// use multiproc::prelude::*;
/// # fn main() -> multiproc::Result<()> {
/// let squares = RawArray::<u64>::new(4)?;
/// let child = {
///     let squares = squares.clone();
///     Process::fork(move || {
///         for i in 0..4 {
///             squares.set(i, (i * i) as u64).unwrap();
///         }
///     })?
/// };
/// child.join()?;
/// assert_eq!(squares.to_vec(), [0, 1, 4, 9]);
/// # Ok(())
/// # }
/// ```
pub struct RawArray<T> {
    block: Block,
    len: usize,
    item: PhantomData<T>,
}

impl<T: Pod> RawArray<T> {
    /// `len` zeroed items (Python's `RawArray(t, n)`).
    pub fn new(len: usize) -> crate::Result<RawArray<T>> {
        Ok(RawArray {
            block: block_for::<T>(len)?,
            len,
            item: PhantomData,
        })
    }

    /// A copy of `items` in shared memory (Python's `RawArray(t, sequence)`).
    pub fn from_slice(items: &[T]) -> crate::Result<RawArray<T>> {
        let array = Self::new(items.len())?;
        array.store(0, items);
        Ok(array)
    }

    /// The number of items (Python's `len()`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no items (Python's `len(a) == 0`).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn ptr(&self) -> *mut T {
        self.block.as_ptr().cast::<T>()
    }

    /// A copy of item `index`; out of range is an error (Python's `a[i]`, `IndexError`).
    pub fn get(&self, index: usize) -> Result<T, ShmError> {
        let mut item = [T::zeroed()];
        self.read_into(index, &mut item)
            .map_err(|_| ShmError::IndexOutOfRange {
                index,
                len: self.len,
            })?;
        Ok(item[0])
    }

    /// Overwrites item `index`; out of range is an error (Python's `a[i] = v`).
    pub fn set(&self, index: usize, value: T) -> Result<(), ShmError> {
        self.set_slice(index..index.saturating_add(1), &[value])
            .map_err(|_| ShmError::IndexOutOfRange {
                index,
                len: self.len,
            })
    }

    /// Overwrites the items in `range` with `values`, whose length must match (Python's
    /// `a[i:j] = values`). A bad range or length is an error, and writes nothing.
    pub fn set_slice(&self, range: Range<usize>, values: &[T]) -> Result<(), ShmError> {
        check_range(&range, self.len, values.len())?;
        self.store(range.start, values);
        Ok(())
    }

    /// Copies items `start..start + out.len()` into `out` (Python's `a[i:j]`, without
    /// allocating). A range past the end is an error, and copies nothing.
    ///
    /// ```
    /// # use multiproc::prelude::*;
    /// # fn main() -> multiproc::Result<()> {
    /// let a = RawArray::from_slice(&[1u8, 2, 3, 4])?;
    /// let mut middle = [0; 2];
    /// a.read_into(1, &mut middle)?;
    /// assert_eq!(middle, [2, 3]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn read_into(&self, start: usize, out: &mut [T]) -> Result<(), ShmError> {
        let end = start.saturating_add(out.len());
        check_range(&(start..end), self.len, out.len())?;
        // SAFETY: `start..end` lies in the block's `len` items (checked), aligned, mapped
        // while `self` lives. In this process every access to them is made in the same atomic
        // units: this type's methods, and `Array`'s, whose guard lends them as `&mut [T]` only
        // while holding the borrow word, which keeps the safe accessors off; `Array::get_obj`
        // is `unsafe` with that as its contract.
        unsafe { load_into(self.ptr().add(start), out) };
        Ok(())
    }

    /// A copy of every item (Python's `a[:]`); not one atomic step: concurrent writers may
    /// interleave.
    pub fn to_vec(&self) -> Vec<T> {
        let mut items = vec![T::zeroed(); self.len];
        self.read_into(0, &mut items)
            .expect("the whole array is in range");
        items
    }

    /// Copies `values` to `start..`; the caller checked the bounds.
    fn store(&self, start: usize, values: &[T]) {
        debug_assert!(start + values.len() <= self.len);
        // SAFETY: as in `read_into`: `start + values.len() <= len` (checked by callers), and
        // `values` is a slice of private memory, not of the block.
        unsafe { store_from(self.ptr().add(start), values) };
    }
}

impl<T> Clone for RawArray<T> {
    fn clone(&self) -> Self {
        RawArray {
            block: self.block.clone(),
            len: self.len,
            item: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for RawArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawArray").field("len", &self.len).finish()
    }
}

impl<T> Serialize for RawArray<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Handle::new::<T>(&self.block, self.len, false).serialize(serializer)
    }
}

impl<'de, T: Pod> Deserialize<'de> for RawArray<T> {
    /// Refuses a handle of another width, one too short, and an `Array`'s data.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (block, len) = Handle::deserialize(deserializer)?
            .open::<T>(false)
            .map_err(serde::de::Error::custom)?;
        Ok(RawArray {
            block,
            len,
            item: PhantomData,
        })
    }
}

/// A fixed-length array of `T` in shared memory guarded by a lock (Python's
/// `multiprocessing.Array`), an [`RLock`] unless given another.
///
/// The accessors ([`get`](Array::get), [`set`](Array::set), [`to_vec`](Array::to_vec), ..)
/// take the lock for one copy; [`lock`](Array::lock) holds it and lends the items as a slice.
/// While a guard lives, the accessors in other threads wait for it, and in the guard's own
/// thread panic: read and write through the guard.
///
/// An array takes its bytes and its lock's, in 64-byte lines of a shared arena (or a memfd of
/// its own past 256 KiB); dropping it frees them for the next objects unless another process
/// may still reach it (see the [module docs](super)).
///
/// ```
/// use multiproc::sharedctypes::Array;
/// # fn main() -> multiproc::Result<()> {
/// let a = Array::from_slice(&[1.0f64, 2.0, 3.0])?;
/// a.set(0, 10.0)?;
/// let sum: f64 = a.lock()?.iter().sum();
/// assert_eq!(sum, 15.0);
/// # Ok(())
/// # }
/// ```
pub struct Array<T> {
    raw: RawArray<T>,
    guarded: Guarded,
}

/// Holds an [`Array`]'s lock and lends its items as a slice, no copy (Python's
/// `with a.get_lock():`); see [`Guard`].
pub type ArrayGuard<'a, T> = Guard<'a, [T]>;

impl<T: Pod> Array<T> {
    /// `len` zeroed items with their own [`RLock`] (Python's `Array(t, n)`).
    pub fn new(len: usize) -> crate::Result<Array<T>> {
        Self::from_raw(RawArray::new(len)?, RLock::new()?.into())
    }

    /// A copy of `items` with its own [`RLock`] (Python's `Array(t, sequence)`).
    pub fn from_slice(items: &[T]) -> crate::Result<Array<T>> {
        Self::from_raw(RawArray::from_slice(items)?, RLock::new()?.into())
    }

    /// `len` zeroed items guarded by `lock` (Python's `Array(t, n, lock=lock)`).
    pub fn with_lock(len: usize, lock: impl Into<AnyLock>) -> crate::Result<Array<T>> {
        Self::from_raw(RawArray::new(len)?, lock.into())
    }

    fn from_raw(raw: RawArray<T>, lock: AnyLock) -> crate::Result<Array<T>> {
        Ok(Array {
            raw,
            guarded: Guarded::new(lock)?,
        })
    }

    /// The number of items (Python's `len()`).
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether it has no items (Python's `len(a) == 0`).
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// A copy of item `index`, under the lock; out of range is an error (Python's `a[i]`).
    ///
    /// # Panics
    ///
    /// If this thread holds a guard of this array (read through the guard instead); while
    /// another thread holds one, this waits for it, as every accessor below does.
    pub fn get(&self, index: usize) -> Result<T, ShmError> {
        self.guarded.with(|| self.raw.get(index))
    }

    /// Overwrites item `index` under the lock; out of range is an error (Python's
    /// `a[i] = v`).
    ///
    /// # Panics
    ///
    /// If this thread holds a guard of this array: write through the guard instead.
    pub fn set(&self, index: usize, value: T) -> Result<(), ShmError> {
        self.guarded.with(|| self.raw.set(index, value))
    }

    /// Overwrites `range` with `values` under the lock; lengths must match (Python's
    /// `a[i:j] = values`).
    ///
    /// # Panics
    ///
    /// If this thread holds a guard of this array: write through the guard instead.
    pub fn set_slice(&self, range: Range<usize>, values: &[T]) -> Result<(), ShmError> {
        self.guarded.with(|| self.raw.set_slice(range, values))
    }

    /// Copies items `start..start + out.len()` into `out`, under the lock (Python's `a[i:j]`).
    ///
    /// # Panics
    ///
    /// If this thread holds a guard of this array: read through the guard instead.
    pub fn read_into(&self, start: usize, out: &mut [T]) -> Result<(), ShmError> {
        self.guarded.with(|| self.raw.read_into(start, out))
    }

    /// A snapshot of every item, taken under the lock (Python's `a[:]`).
    ///
    /// # Panics
    ///
    /// If this thread holds a guard of this array: read through the guard instead.
    pub fn to_vec(&self) -> Vec<T> {
        self.guarded.with(|| self.raw.to_vec())
    }

    /// Takes the lock and returns a guard that derefs to the items as a slice (Python's
    /// `with a.get_lock():`). `WouldBlock` if this thread already holds a guard of it;
    /// `OwnerDied` (with the guard) if the lock's holder died.
    ///
    /// ```
    /// # use multiproc::prelude::*;
    /// # fn main() -> multiproc::Result<()> {
    /// let a = Array::<u32>::new(3)?;
    /// a.lock()?.copy_from_slice(&[1, 2, 3]);
    /// assert_eq!(a.to_vec(), [1, 2, 3]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn lock(&self) -> TryLockResult<ArrayGuard<'_, T>> {
        let items = NonNull::new(self.raw.ptr()).expect("a block is mapped");
        self.guarded
            .guard(NonNull::slice_from_raw_parts(items, self.raw.len()))
    }

    /// The lock (Python's `get_lock()`).
    pub fn get_lock(&self) -> &AnyLock {
        &self.guarded.lock
    }

    /// The items without their lock (Python's `get_obj()`).
    ///
    /// # Safety
    ///
    /// No guard of this array (from [`lock`](Array::lock), on any clone or decoded copy of it)
    /// may be alive in this process while the returned reference, a clone of it or a copy
    /// decoded from its encoding is used: the guard lends the items as `&mut [T]`, and the raw
    /// form's atomic accesses would race with it.
    ///
    /// ```
    /// # use multiproc::prelude::*;
    /// # fn main() -> multiproc::Result<()> {
    /// let a = Array::from_slice(&[1u8, 2])?;
    /// // SAFETY: no guard of `a` exists in this process.
    /// unsafe { a.get_obj() }.set(0, 9)?;
    /// assert_eq!(a.to_vec(), [9, 2]);
    /// # Ok(())
    /// # }
    /// ```
    pub unsafe fn get_obj(&self) -> &RawArray<T> {
        &self.raw
    }
}

impl<T: Pod> TryFrom<&[T]> for Array<T> {
    type Error = crate::Error;

    /// A copy of the slice with its own [`RLock`] (as [`Array::from_slice`]).
    fn try_from(items: &[T]) -> crate::Result<Array<T>> {
        Array::from_slice(items)
    }
}

impl<T: Pod> TryFrom<Vec<T>> for Array<T> {
    type Error = crate::Error;

    /// A copy of the vector's items with its own [`RLock`].
    fn try_from(items: Vec<T>) -> crate::Result<Array<T>> {
        Array::from_slice(&items)
    }
}

impl<T> Serialize for Array<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let handle = Handle::new::<T>(&self.raw.block, self.raw.len, true);
        (handle, &self.guarded).serialize(serializer)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Array<T> {
    /// Refuses a handle of another width, one too short, and a raw form's data.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (handle, guarded) = <(Handle, Guarded)>::deserialize(deserializer)?;
        let (block, len) = handle.open::<T>(true).map_err(serde::de::Error::custom)?;
        let raw = RawArray {
            block,
            len,
            item: PhantomData,
        };
        Ok(Array { raw, guarded })
    }
}

impl<T> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            raw: self.raw.clone(),
            guarded: self.guarded.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Array").field("len", &self.raw.len).finish()
    }
}
