//! Typed shared memory (Python's `multiprocessing.sharedctypes`): [`Value`] and [`Array`] of
//! plain-old-data, guarded by a lock, and their raw forms [`RawValue`] and [`RawArray`].
//!
//! The data lives in a shared block (a piece of a memfd mapped `MAP_SHARED`): a forked child sees
//! the parent's writes and the parent sees the child's, which an ordinary variable does not do.
//! `T` must be [`bytemuck::Pod`] (integers, floats, arrays and `#[repr(C)]` structs of them), so
//! that any bytes another process writes are a valid `T`. The raw forms read and write without a
//! lock, each access a volatile copy: concurrent writers may interleave, exactly as with
//! Python's `RawValue`. The integer types also have atomic operations (`fetch_add`, ..), which
//! need no lock.

use crate::shm::{Block, Shared, ShmError};
use crate::sync::{AnyLock, RLock, TryLockError, TryLockResult};
use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut, Range};
use std::sync::atomic::{AtomicU32, Ordering};

/// The lock of a `Value` or `Array`, and whether a guard borrows the data now (so that a
/// reentrant `RLock` never hands out two `&mut` to it).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Guarded {
    lock: AnyLock,
    borrowed: Shared<AtomicU32>,
}

/// How entering a [`Guarded`] went.
enum Entered {
    Clean,
    FromDead(u32),
}

impl Guarded {
    fn new(lock: AnyLock) -> crate::Result<Guarded> {
        Ok(Guarded {
            lock,
            borrowed: Shared::new()?,
        })
    }

    /// Takes the lock and the borrow; `None` if this thread already borrows the data.
    #[inline]
    fn enter(&self) -> Option<Entered> {
        let acquired = self.lock.acquire_until(None);
        if let crate::sync::raw::Acquired::FromDead(pid) = acquired {
            // The dead holder may have left the flag set; the data is ours now.
            self.borrowed.store(1, Ordering::Relaxed);
            return Some(Entered::FromDead(pid));
        }
        // Only the lock's holder touches the flag: plain loads and stores suffice.
        if self.borrowed.load(Ordering::Relaxed) != 0 {
            let _ = self.lock.release();
            return None;
        }
        self.borrowed.store(1, Ordering::Relaxed);
        Some(Entered::Clean)
    }

    #[inline]
    fn leave(&self) {
        self.borrowed.store(0, Ordering::Relaxed);
        let _ = self.lock.release();
    }

    /// Runs `f` under the lock (taken over from a dead holder if need be).
    #[inline]
    fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        if let crate::sync::raw::Acquired::FromDead(_) = self.lock.acquire_until(None) {
            // The dead holder's guard is gone: its borrow with it.
            self.borrowed.store(0, Ordering::Relaxed);
        }
        let result = f();
        let _ = self.lock.release();
        result
    }
}

/// The guard-style result of [`Guarded::enter`].
#[inline]
fn guard_result<G>(entered: Option<Entered>, guard: impl FnOnce() -> G) -> TryLockResult<G> {
    match entered {
        None => Err(TryLockError::WouldBlock),
        Some(Entered::Clean) => Ok(guard()),
        Some(Entered::FromDead(pid)) => Err(TryLockError::OwnerDied(crate::sync::OwnerDied::new(
            guard(),
            pid,
        ))),
    }
}

/// A block of `n` values of `T`, checked for size.
fn block_for<T: Pod>(n: usize) -> Result<Block, ShmError> {
    let bytes = n
        .checked_mul(std::mem::size_of::<T>())
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or(ShmError::BadSize(usize::MAX))?;
    Block::new(bytes, std::mem::align_of::<T>())
}

/// Checks that a decoded block can hold `n` values of `T`.
fn check_block<T: Pod>(block: &Block, n: usize) -> Result<(), ShmError> {
    let bytes = n.checked_mul(std::mem::size_of::<T>());
    if bytes.is_none_or(|b| b > block.len()) {
        return Err(ShmError::BadSize(block.len()));
    }
    if !(block.as_ptr() as usize).is_multiple_of(std::mem::align_of::<T>()) {
        return Err(ShmError::BadAlign(std::mem::align_of::<T>()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// RawValue and Value

/// A `T` in shared memory with no lock (Python's `multiprocessing.RawValue`).
pub struct RawValue<T> {
    block: Block,
    value: PhantomData<T>,
}

impl<T: Pod> RawValue<T> {
    /// A new shared `T` holding `value`.
    pub fn new(value: T) -> crate::Result<RawValue<T>> {
        let raw = Self::in_block(block_for::<T>(1)?)?;
        raw.set(value);
        Ok(raw)
    }

    /// The `T` at the start of `block`, checked for size and alignment.
    fn in_block(block: Block) -> Result<RawValue<T>, ShmError> {
        check_block::<T>(&block, 1)?;
        Ok(RawValue {
            block,
            value: PhantomData,
        })
    }

    #[inline]
    fn ptr(&self) -> *mut T {
        self.block.as_ptr().cast::<T>()
    }

    /// A copy of the value (Python's `.value`).
    #[inline]
    pub fn get(&self) -> T {
        // SAFETY: the block holds a T (checked at creation or decoding), aligned; any bytes
        // are a valid T (Pod); a volatile read copies it even while another process writes.
        unsafe { self.ptr().read_volatile() }
    }

    /// Overwrites the value (Python's `.value = v`).
    #[inline]
    pub fn set(&self, value: T) {
        // SAFETY: as in `get`; nothing in this process holds a reference into the block
        // (guards exist only on `Value`, which writes under its lock).
        unsafe { self.ptr().write_volatile(value) }
    }
}

impl<T> Clone for RawValue<T> {
    fn clone(&self) -> Self {
        RawValue {
            block: self.block.clone(),
            value: PhantomData,
        }
    }
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for RawValue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RawValue").field(&self.get()).finish()
    }
}

impl<T> Serialize for RawValue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.block.serialize(serializer)
    }
}

impl<'de, T: Pod> Deserialize<'de> for RawValue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::in_block(Block::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// A `T` in shared memory guarded by a lock (Python's `multiprocessing.Value`), an [`RLock`]
/// unless given another with [`with_lock`](Value::with_lock).
///
/// [`get`](Value::get) and [`set`](Value::set) take the lock for one copy;
/// [`lock`](Value::lock) holds it for a read-modify-write through a guard. If a process dies
/// holding the lock, the next `lock()` gets the guard inside
/// [`TryLockError::OwnerDied`].
///
/// ```no_run
/// use multiproc::prelude::*;
///
/// #[process_task]
/// fn bump(counter: Value<i64>, times: u32) {
///     for _ in 0..times {
///         if let Ok(mut n) = counter.lock() {
///             *n += 1;
///         }
///     }
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let counter = Value::new(0i64)?;
/// let child = Process::new(task!(bump, counter.clone(), 1000)).start()?;
/// child.join()?;
/// assert_eq!(counter.get(), 1000);
/// # Ok(())
/// # }
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Pod"))]
pub struct Value<T> {
    raw: RawValue<T>,
    guarded: Guarded,
}

/// Holds a [`Value`]'s lock; derefs to the value itself, no copy (Python's
/// `with v.get_lock(): v.value += 1`).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ValueGuard<'a, T: Pod> {
    value: &'a Value<T>,
    /// The lock may be an `RLock`, owned by a thread: the guard must be dropped on it.
    not_send: PhantomData<*const ()>,
}

impl<T: Pod> Value<T> {
    /// A new shared `T` holding `value`, with its own [`RLock`] (Python's `Value(t, v)`).
    ///
    /// The lock, the borrow flag and (if it fits) the value share one cache line, so that a
    /// locked update moves one line between processes, not three.
    pub fn new(value: T) -> crate::Result<Value<T>> {
        let flag_at = RLock::SIZE.next_multiple_of(4);
        let value_at = (flag_at + 4).next_multiple_of(std::mem::align_of::<T>().max(8));
        let size = std::mem::size_of::<T>();
        let block = Block::new(value_at + size, std::mem::align_of::<T>())?;
        let part = |offset, len| block.sub(offset, len).ok_or(ShmError::BadSize(len));
        let raw = RawValue::in_block(part(value_at, size)?)?;
        raw.set(value);
        Ok(Value {
            raw,
            guarded: Guarded {
                lock: RLock::in_block(part(0, RLock::SIZE)?)?.into(),
                borrowed: Shared::from_block(part(flag_at, 4)?)?,
            },
        })
    }

    /// A new shared `T` guarded by `lock`, a [`Lock`](crate::sync::Lock) or an [`RLock`] that
    /// other objects may share (Python's `Value(t, v, lock=lock)`).
    pub fn with_lock(value: T, lock: impl Into<AnyLock>) -> crate::Result<Value<T>> {
        Ok(Value {
            raw: RawValue::new(value)?,
            guarded: Guarded::new(lock.into())?,
        })
    }

    /// A copy of the value, read under the lock (Python's `.value`).
    #[inline]
    pub fn get(&self) -> T {
        self.guarded.with(|| self.raw.get())
    }

    /// Overwrites the value under the lock (Python's `.value = v`).
    #[inline]
    pub fn set(&self, value: T) {
        self.guarded.with(|| self.raw.set(value))
    }

    /// Takes the lock and returns a guard that derefs to the value. `WouldBlock` if this
    /// thread already holds a guard on it (a second would alias it); `OwnerDied` (with the
    /// guard) if the lock's holder died.
    #[inline]
    pub fn lock(&self) -> TryLockResult<ValueGuard<'_, T>> {
        guard_result(self.guarded.enter(), || ValueGuard {
            value: self,
            not_send: PhantomData,
        })
    }

    /// The lock (Python's `get_lock()`).
    pub fn get_lock(&self) -> &AnyLock {
        &self.guarded.lock
    }

    /// The value without its lock (Python's `get_obj()`).
    pub fn get_obj(&self) -> &RawValue<T> {
        &self.raw
    }
}

impl<T: Pod> Deref for ValueGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock and the borrow flag, so no other guard or locked
        // access in any process touches the value while this reference lives.
        unsafe { &*self.value.raw.ptr() }
    }
}

impl<T: Pod> DerefMut for ValueGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this reference unique in this guard.
        unsafe { &mut *self.value.raw.ptr() }
    }
}

impl<T: Pod> Drop for ValueGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.value.guarded.leave();
    }
}

impl<T> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value {
            raw: self.raw.clone(),
            guarded: self.guarded.clone(),
        }
    }
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Value").field(&self.raw.get()).finish()
    }
}

/// Atomic operations on integer values, without the lock.
macro_rules! atomic_ops {
    ($($int:ty => $atomic:ty),* $(,)?) => {$(
        impl RawValue<$int> {
            fn atomic(&self) -> &$atomic {
                // SAFETY: the block holds an aligned $int, which has the layout of $atomic;
                // the reference lives no longer than the block.
                unsafe { &*self.ptr().cast::<$atomic>() }
            }

            /// Adds atomically; returns the previous value (wrapping on overflow).
            pub fn fetch_add(&self, n: $int) -> $int {
                self.atomic().fetch_add(n, Ordering::SeqCst)
            }

            /// Subtracts atomically; returns the previous value (wrapping on overflow).
            pub fn fetch_sub(&self, n: $int) -> $int {
                self.atomic().fetch_sub(n, Ordering::SeqCst)
            }

            /// Replaces atomically; returns the previous value.
            pub fn swap(&self, n: $int) -> $int {
                self.atomic().swap(n, Ordering::SeqCst)
            }

            /// Stores `new` if the value is `current`; the previous value, `Ok` if replaced.
            pub fn compare_exchange(&self, current: $int, new: $int) -> Result<$int, $int> {
                self.atomic()
                    .compare_exchange(current, new, Ordering::SeqCst, Ordering::SeqCst)
            }

            /// Reads atomically.
            pub fn load(&self) -> $int {
                self.atomic().load(Ordering::SeqCst)
            }
        }

        impl Value<$int> {
            /// Adds atomically, without the lock; returns the previous value.
            pub fn fetch_add(&self, n: $int) -> $int {
                self.raw.fetch_add(n)
            }

            /// Subtracts atomically, without the lock; returns the previous value.
            pub fn fetch_sub(&self, n: $int) -> $int {
                self.raw.fetch_sub(n)
            }

            /// Replaces atomically, without the lock; returns the previous value.
            pub fn swap(&self, n: $int) -> $int {
                self.raw.swap(n)
            }

            /// Stores `new` if the value is `current`, without the lock.
            pub fn compare_exchange(&self, current: $int, new: $int) -> Result<$int, $int> {
                self.raw.compare_exchange(current, new)
            }
        }
    )*};
}

atomic_ops!(
    i32 => std::sync::atomic::AtomicI32,
    u32 => std::sync::atomic::AtomicU32,
    i64 => std::sync::atomic::AtomicI64,
    u64 => std::sync::atomic::AtomicU64,
    isize => std::sync::atomic::AtomicIsize,
    usize => std::sync::atomic::AtomicUsize,
);

// ---------------------------------------------------------------------------------------------
// RawArray and Array

/// A fixed-length array of `T` in shared memory with no lock (Python's
/// `multiprocessing.RawArray`).
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
        array.write(0, items);
        Ok(array)
    }

    /// The number of items (Python's `len()`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no items.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn ptr(&self) -> *mut T {
        self.block.as_ptr().cast::<T>()
    }

    fn check_index(&self, index: usize) -> Result<(), ShmError> {
        if index < self.len {
            Ok(())
        } else {
            Err(ShmError::IndexOutOfRange {
                index,
                len: self.len,
            })
        }
    }

    /// A copy of item `index`; out of range is an error (Python's `IndexError`).
    pub fn get(&self, index: usize) -> Result<T, ShmError> {
        self.check_index(index)?;
        // SAFETY: in bounds (checked), aligned, any bytes are a valid T; volatile, as shared.
        Ok(unsafe { self.ptr().add(index).read_volatile() })
    }

    /// Overwrites item `index`; out of range is an error.
    pub fn set(&self, index: usize, value: T) -> Result<(), ShmError> {
        self.check_index(index)?;
        // SAFETY: as in `get`; no reference into the block lives outside `Array`'s guard.
        unsafe { self.ptr().add(index).write_volatile(value) };
        Ok(())
    }

    /// Overwrites the items in `range` with `values`, whose length must match (Python's
    /// `a[i:j] = values`).
    pub fn set_slice(&self, range: Range<usize>, values: &[T]) -> Result<(), ShmError> {
        if range.start > range.end || range.end > self.len {
            return Err(ShmError::IndexOutOfRange {
                index: range.end.max(range.start),
                len: self.len,
            });
        }
        if range.len() != values.len() {
            return Err(ShmError::LengthMismatch {
                expected: range.len(),
                got: values.len(),
            });
        }
        self.write(range.start, values);
        Ok(())
    }

    /// A copy of every item (not atomic: concurrent writers may interleave).
    pub fn to_vec(&self) -> Vec<T> {
        (0..self.len)
            // SAFETY: in bounds, aligned, any bytes are a valid T.
            .map(|i| unsafe { self.ptr().add(i).read_volatile() })
            .collect()
    }

    /// Copies `values` to `start..`; the caller checked the bounds.
    fn write(&self, start: usize, values: &[T]) {
        // SAFETY: `start + values.len() <= len` (checked by callers); the source is a separate
        // slice of this process's memory, so the ranges do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(values.as_ptr(), self.ptr().add(start), values.len())
        };
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
        (&self.block, self.len as u64).serialize(serializer)
    }
}

impl<'de, T: Pod> Deserialize<'de> for RawArray<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (block, len) = <(Block, u64)>::deserialize(deserializer)?;
        let len = usize::try_from(len).map_err(serde::de::Error::custom)?;
        check_block::<T>(&block, len).map_err(serde::de::Error::custom)?;
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
/// ```no_run
/// use multiproc::sharedctypes::Array;
/// # fn main() -> multiproc::Result<()> {
/// let a = Array::from_slice(&[1.0f64, 2.0, 3.0])?;
/// a.set(0, 10.0)?;
/// let sum: f64 = a.lock()?.iter().sum();
/// assert_eq!(sum, 15.0);
/// # Ok(())
/// # }
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Pod"))]
pub struct Array<T> {
    raw: RawArray<T>,
    guarded: Guarded,
}

/// Holds an [`Array`]'s lock; derefs to its items as a slice, no copy.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ArrayGuard<'a, T: Pod> {
    array: &'a Array<T>,
    /// The lock may be an `RLock`, owned by a thread: the guard must be dropped on it.
    not_send: PhantomData<*const ()>,
}

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

    /// The number of items.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether it has no items.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// A copy of item `index`, under the lock; out of range is an error.
    pub fn get(&self, index: usize) -> Result<T, ShmError> {
        self.guarded.with(|| self.raw.get(index))
    }

    /// Overwrites item `index` under the lock; out of range is an error.
    pub fn set(&self, index: usize, value: T) -> Result<(), ShmError> {
        self.guarded.with(|| self.raw.set(index, value))
    }

    /// Overwrites `range` with `values` under the lock; lengths must match.
    pub fn set_slice(&self, range: Range<usize>, values: &[T]) -> Result<(), ShmError> {
        self.guarded.with(|| self.raw.set_slice(range, values))
    }

    /// A snapshot of every item, taken under the lock (Python's `a[:]`).
    pub fn to_vec(&self) -> Vec<T> {
        self.guarded.with(|| self.raw.to_vec())
    }

    /// Takes the lock and returns a guard that derefs to the items as a slice. `WouldBlock` if
    /// this thread already holds a guard on it; `OwnerDied` (with the guard) if the lock's
    /// holder died.
    pub fn lock(&self) -> TryLockResult<ArrayGuard<'_, T>> {
        guard_result(self.guarded.enter(), || ArrayGuard {
            array: self,
            not_send: PhantomData,
        })
    }

    /// The lock (Python's `get_lock()`).
    pub fn get_lock(&self) -> &AnyLock {
        &self.guarded.lock
    }

    /// The items without their lock (Python's `get_obj()`).
    pub fn get_obj(&self) -> &RawArray<T> {
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

impl<T: Pod> Deref for ArrayGuard<'_, T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: the guard holds the lock and the borrow flag, so no locked access in any
        // process touches the items while this slice lives; `len` items fit in the block.
        unsafe { std::slice::from_raw_parts(self.array.raw.ptr(), self.array.raw.len) }
    }
}

impl<T: Pod> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` makes this slice unique in this guard.
        unsafe { std::slice::from_raw_parts_mut(self.array.raw.ptr(), self.array.raw.len) }
    }
}

impl<T: Pod> Drop for ArrayGuard<'_, T> {
    fn drop(&mut self) {
        self.array.guarded.leave();
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
