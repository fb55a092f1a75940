//! [`RawValue`] and [`Value`]: one `T` in shared memory, without and with a lock.

use super::{check_block, load_into, store_from, Guard, Guarded, Handle};
use crate::shm::{Block, Shared, ShmError};
use crate::sync::{AnyLock, RLock, TryLockResult};
use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;

/// A `T` in shared memory with no lock (Python's `multiprocessing.RawValue`).
///
/// Every read and write is atomic, in units of up to 8 bytes (see the [module
/// docs](super)): threads and processes may use it at once, and a `T` wider than one unit may
/// be read torn while another writes it, as in Python. The integer types also have atomic
/// read-modify-writes ([`fetch_add`](RawValue::fetch_add), ..), exact under any contention.
///
/// ```
/// use multiproc::prelude::*;
/// # fn main() -> multiproc::Result<()> {
/// let hits = RawValue::new(0u64)?;
/// let child = {
///     let hits = hits.clone();
///     Process::fork(move || {
///         for _ in 0..100 {
///             hits.fetch_add(1);
///         }
///     })?
/// };
/// for _ in 0..100 {
///     hits.fetch_add(1);
/// }
/// child.join()?;
/// assert_eq!(hits.get(), 200);
/// # Ok(())
/// # }
/// ```
pub struct RawValue<T> {
    block: Block,
    value: PhantomData<T>,
}

impl<T: Pod> RawValue<T> {
    /// A new shared `T` holding `value` (Python's `RawValue(t, v)`).
    pub fn new(value: T) -> crate::Result<RawValue<T>> {
        let raw = Self::in_block(super::block_for::<T>(1)?)?;
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

    /// A copy of the value, read atomically unit by unit (Python's `.value`).
    #[inline]
    pub fn get(&self) -> T {
        let mut value = [T::zeroed()];
        // SAFETY: the block holds an aligned T (checked at creation or decoding) while `self`
        // lives. In this process every access to it is made in the same atomic units: this
        // type's methods, and `Value`'s, whose guard lends it as `&mut T` only while holding
        // the borrow word, which keeps the safe accessors off; `Value::get_obj`, the one way
        // from a `Value` to its `RawValue`, is `unsafe` with that as its contract.
        unsafe { load_into(self.ptr(), &mut value) };
        value[0]
    }

    /// Overwrites the value atomically unit by unit (Python's `.value = v`).
    #[inline]
    pub fn set(&self, value: T) {
        // SAFETY: as in `get`; the block is writable.
        unsafe { store_from(self.ptr(), &[value]) }
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
        Handle::new::<T>(&self.block, 1, false).serialize(serializer)
    }
}

impl<'de, T: Pod> Deserialize<'de> for RawValue<T> {
    /// Refuses a handle of another width or size, and a `Value`'s data.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (block, _) = Handle::deserialize(deserializer)?
            .open::<T>(false)
            .map_err(serde::de::Error::custom)?;
        Self::in_block(block).map_err(serde::de::Error::custom)
    }
}

/// A `T` in shared memory guarded by a lock (Python's `multiprocessing.Value`), an [`RLock`]
/// unless given another with [`with_lock`](Value::with_lock).
///
/// [`get`](Value::get) and [`set`](Value::set) take the lock for one copy;
/// [`lock`](Value::lock) holds it for a read-modify-write through a guard. While a guard
/// lives, `get` and `set` in other threads wait for it (even if the lock was released under
/// it), and in the guard's own thread panic: read and write through the guard. If a process
/// dies holding the lock, the next `lock()` gets the guard inside
/// [`TryLockError::OwnerDied`](crate::sync::TryLockError::OwnerDied).
///
/// A `Value` of up to 8 bytes takes one 64-byte line of shared memory, its lock included;
/// dropping it frees the line for the next objects unless another process may still reach it
/// (see the [module docs](super)).
///
/// ```
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
pub struct Value<T> {
    raw: RawValue<T>,
    guarded: Guarded,
}

/// Holds a [`Value`]'s lock and lends the value itself, no copy (Python's
/// `with v.get_lock(): v.value += 1`); see [`Guard`].
pub type ValueGuard<'a, T> = Guard<'a, T>;

impl<T: Pod> Value<T> {
    /// A new shared `T` holding `value`, with its own [`RLock`] (Python's `Value(t, v)`).
    ///
    /// The lock, the borrow word and (if it fits) the value share one cache line, so that a
    /// locked update moves one line between processes, not three.
    pub fn new(value: T) -> crate::Result<Value<T>> {
        let borrow_at = RLock::SIZE.next_multiple_of(8);
        let value_at = (borrow_at + 8).next_multiple_of(std::mem::align_of::<T>().max(8));
        let size = std::mem::size_of::<T>();
        let block = Block::new(value_at + size, std::mem::align_of::<T>())?;
        let part = |offset, len| block.sub(offset, len).ok_or(ShmError::BadSize(len));
        let raw = RawValue::in_block(part(value_at, size)?)?;
        raw.set(value);
        Ok(Value {
            raw,
            guarded: Guarded {
                lock: RLock::in_block(part(0, RLock::SIZE)?)?.into(),
                borrow: Shared::from_block(part(borrow_at, 8)?)?,
            },
        })
    }

    /// A new shared `T` guarded by `lock`, a [`Lock`](crate::sync::Lock) or an [`RLock`] that
    /// other objects may share (Python's `Value(t, v, lock=lock)`).
    ///
    /// ```
    /// use multiproc::prelude::*;
    /// # fn main() -> multiproc::Result<()> {
    /// let lock = Lock::new()?;
    /// let (a, b) = (Value::with_lock(1, lock.clone())?, Value::with_lock(2, lock.clone())?);
    /// let guard = a.lock()?;
    /// assert!(b.get_lock().is_locked(), "one lock for both");
    /// drop(guard);
    /// assert_eq!(a.get() + b.get(), 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_lock(value: T, lock: impl Into<AnyLock>) -> crate::Result<Value<T>> {
        Ok(Value {
            raw: RawValue::new(value)?,
            guarded: Guarded::new(lock.into())?,
        })
    }

    /// A copy of the value, read under the lock (Python's `.value`). While another thread
    /// holds a guard of it, waits for the guard to drop.
    ///
    /// # Panics
    ///
    /// If this thread holds a guard of this value: read through the guard instead.
    ///
    /// ```should_panic
    /// # use multiproc::prelude::*;
    /// # fn main() -> multiproc::Result<()> {
    /// let v = Value::new(1)?;
    /// let mut guard = v.lock()?;
    /// *guard += v.get(); // panics: `*guard += *guard` is what was meant
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    pub fn get(&self) -> T {
        self.guarded.with(|| self.raw.get())
    }

    /// Overwrites the value under the lock (Python's `.value = v`). While another thread holds
    /// a guard of it, waits for the guard to drop.
    ///
    /// # Panics
    ///
    /// If this thread holds a guard of this value: write through the guard instead.
    #[inline]
    pub fn set(&self, value: T) {
        self.guarded.with(|| self.raw.set(value))
    }

    /// Takes the lock and returns a guard that derefs to the value (Python's
    /// `with v.get_lock():`). `WouldBlock` if this thread already holds a guard of it (a
    /// second would alias it); `OwnerDied` (with the guard) if the lock's holder died.
    ///
    /// ```
    /// # use multiproc::prelude::*;
    /// # fn main() -> multiproc::Result<()> {
    /// let v = Value::new(41)?;
    /// *v.lock()? += 1;
    /// assert_eq!(v.get(), 42);
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    pub fn lock(&self) -> TryLockResult<ValueGuard<'_, T>> {
        // A block pointer is never null.
        self.guarded
            .guard(NonNull::new(self.raw.ptr()).expect("a block is mapped"))
    }

    /// The lock (Python's `get_lock()`).
    pub fn get_lock(&self) -> &AnyLock {
        &self.guarded.lock
    }

    /// The value without its lock (Python's `get_obj()`).
    ///
    /// # Safety
    ///
    /// No guard of this value (from [`lock`](Value::lock), on any clone or decoded copy of it)
    /// may be alive in this process while the returned reference, a clone of it or a copy
    /// decoded from its encoding is used: the guard lends the value as `&mut T`, and the raw
    /// form's atomic accesses would race with it. [`get`](Value::get), [`set`](Value::set)
    /// and [`fetch_add`](Value::fetch_add) are the safe forms: they take the lock for one step.
    ///
    /// ```
    /// # use multiproc::prelude::*;
    /// # fn main() -> multiproc::Result<()> {
    /// let v = Value::new(5u32)?;
    /// // SAFETY: no guard of `v` exists in this process.
    /// let raw = unsafe { v.get_obj() };
    /// raw.fetch_add(1);
    /// assert_eq!(v.get(), 6);
    /// # Ok(())
    /// # }
    /// ```
    pub unsafe fn get_obj(&self) -> &RawValue<T> {
        &self.raw
    }
}

impl<T> Serialize for Value<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (Handle::new::<T>(&self.raw.block, 1, true), &self.guarded).serialize(serializer)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Value<T> {
    /// Refuses a handle of another width or size, and a raw form's data.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (handle, guarded) = <(Handle, Guarded)>::deserialize(deserializer)?;
        let (block, _) = handle.open::<T>(true).map_err(serde::de::Error::custom)?;
        let raw = RawValue::in_block(block).map_err(serde::de::Error::custom)?;
        Ok(Value { raw, guarded })
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
    /// Shows the value read under the lock (so it waits for another thread's guard, and
    /// panics under this thread's, as [`Value::get`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Value").field(&self.get()).finish()
    }
}

/// Atomic read-modify-writes on integer values.
macro_rules! atomic_ops {
    ($($int:ty => $atomic:ty),* $(,)?) => {$(
        impl RawValue<$int> {
            fn atomic(&self) -> &$atomic {
                // SAFETY: the block holds an aligned $int, which has the layout of $atomic,
                // as wide as the unit `get`/`set` copy an $int in, so no access of another
                // size overlaps it; the reference lives no longer than the block.
                unsafe { &*self.ptr().cast::<$atomic>() }
            }

            /// Adds atomically; returns the previous value, wrapping on overflow (what
            /// Python's `with v.get_lock(): v.value += n` does under a lock).
            pub fn fetch_add(&self, n: $int) -> $int {
                self.atomic().fetch_add(n, Ordering::SeqCst)
            }

            /// Subtracts atomically; returns the previous value, wrapping on overflow
            /// (Python's `with v.get_lock(): v.value -= n`, without a lock).
            pub fn fetch_sub(&self, n: $int) -> $int {
                self.atomic().fetch_sub(n, Ordering::SeqCst)
            }

            /// Replaces atomically; returns the previous value (Python's
            /// `old = v.value; v.value = n` under a lock, without one).
            pub fn swap(&self, n: $int) -> $int {
                self.atomic().swap(n, Ordering::SeqCst)
            }

            /// Stores `new` if the value is `current`; the previous value, `Ok` if replaced
            /// (Python's `if v.value == current: v.value = new` under a lock, without one).
            pub fn compare_exchange(&self, current: $int, new: $int) -> Result<$int, $int> {
                self.atomic()
                    .compare_exchange(current, new, Ordering::SeqCst, Ordering::SeqCst)
            }

            /// Reads atomically, sequentially consistent with the operations above (Python's
            /// `.value`).
            pub fn load(&self) -> $int {
                self.atomic().load(Ordering::SeqCst)
            }
        }

        impl Value<$int> {
            /// Adds under the lock; returns the previous value, wrapping on overflow (Python's
            /// `with v.get_lock(): v.value += n`). Waits and panics as [`get`](Value::get).
            pub fn fetch_add(&self, n: $int) -> $int {
                self.guarded.with(|| self.raw.fetch_add(n))
            }

            /// Subtracts under the lock; returns the previous value, wrapping on overflow
            /// (Python's `with v.get_lock(): v.value -= n`). Waits and panics as
            /// [`get`](Value::get).
            pub fn fetch_sub(&self, n: $int) -> $int {
                self.guarded.with(|| self.raw.fetch_sub(n))
            }

            /// Replaces under the lock; returns the previous value (Python's
            /// `with v.get_lock(): old = v.value; v.value = n`). Waits and panics as
            /// [`get`](Value::get).
            pub fn swap(&self, n: $int) -> $int {
                self.guarded.with(|| self.raw.swap(n))
            }

            /// Stores `new` under the lock if the value is `current`; the previous value, `Ok`
            /// if replaced (Python's `with v.get_lock(): if v.value == current: v.value = new`).
            /// Waits and panics as [`get`](Value::get).
            pub fn compare_exchange(&self, current: $int, new: $int) -> Result<$int, $int> {
                self.guarded.with(|| self.raw.compare_exchange(current, new))
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
