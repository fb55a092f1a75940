//! Typed shared memory (Python's `multiprocessing.sharedctypes`): [`Value`] and [`Array`] of
//! plain-old-data guarded by a lock, and their lock-free forms [`RawValue`] and [`RawArray`].
//!
//! The data lives in a shared block (a piece of a memfd mapped `MAP_SHARED`): a forked child sees
//! the parent's writes and the parent sees the child's, which an ordinary variable does not do.
//! `T` must be [`bytemuck::Pod`] (integers, floats, arrays and `#[repr(C)]` structs of them), so
//! that any bytes another process writes are a valid `T`.
//!
//! **Soundness.** Safe code cannot make two references alias the data, nor race on it. The raw
//! forms copy a `T` in and out as a sequence of atomic loads and stores (each of the widest
//! width up to 8 bytes that divides both the size and the alignment of `T`: one `AtomicU64`
//! for an `i64`), so any threads and processes may read and write at once; a `T` wider than
//! one such word may then be read *torn* (half old, half new), as with Python's `RawValue`,
//! which is never undefined behaviour since every bit pattern is a valid `T`. The locked forms
//! keep a *borrow word* beside their lock, naming the thread that uses the data: a guard
//! ([`ValueGuard`], [`ArrayGuard`]) holds it for as long as it lends the data as `&mut`, and
//! every other access (`get`, `set`, `to_vec`, ..) waits while another thread holds it, even
//! if the lock itself was released under the guard (Python lets any thread release a `Lock`).
//! A thread that reads or writes a `Value` while holding its guard would alias the guard's
//! `&mut`: that panics, as `RefCell` does on a double borrow. Reaching the raw form of a locked
//! object ([`Value::get_obj`], [`Array::get_obj`]) is `unsafe`. Access one block as one type
//! only: the atomics of two types of different widths over the same bytes would race.
//!
//! **What a shared object costs.** An object of up to 256 KiB (its data, plus its lock for the
//! locked forms) takes whole 64-byte lines of a 1 MiB *arena*, a memfd shared with other small
//! objects: a `Value<u64>` takes one line. Dropping the last handle to an object in this
//! process frees its lines for the next objects, and returns each 4 KiB page left wholly free
//! to the system, if no other process can reach it: it was made in this process, never sent
//! to another (through a queue, a pipe, or as a task's argument), and this process has not
//! forked since it was made. So a few objects kept out of many hold about a page each, and
//! while any object of an arena lives, the arena keeps one file descriptor and 1 MiB of address
//! space. An object alive across a fork, or sent, keeps its lines until its whole arena is
//! dropped in every process that maps it. A larger object has a memfd of its own, freed with it.

mod array;
mod value;

pub use array::{Array, ArrayGuard, RawArray};
pub use value::{RawValue, Value, ValueGuard};

use crate::shm::{Block, Shared, ShmError};
use crate::sync::raw::{Acquired, CHECK_EVERY};
use crate::sync::{AnyLock, OwnerDied, TryLockError, TryLockResult};
use crate::sys::{futex, owner};
use bytemuck::Pod;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut, Range};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::Instant;

// ---------------------------------------------------------------------------------------------
// Atomic copies

/// An atomic integer that copies are made of.
trait Unit {
    type Int: Copy;
    fn load(&self) -> Self::Int;
    fn store(&self, value: Self::Int);
}

macro_rules! units {
    ($($atomic:ty => $int:ty),*) => {$(
        impl Unit for $atomic {
            type Int = $int;
            #[inline]
            fn load(&self) -> $int {
                <$atomic>::load(self, Ordering::Acquire)
            }
            #[inline]
            fn store(&self, value: $int) {
                <$atomic>::store(self, value, Ordering::Release)
            }
        }
    )*};
}

units!(AtomicU8 => u8, AtomicU16 => u16, AtomicU32 => u32, AtomicU64 => u64);

/// The width in bytes of the units a `T` is copied in: the widest of 8, 4, 2 and 1 that
/// divides both the size and the alignment of `T`. Every shared `T` is accessed in units of
/// this one width, so no two atomic accesses of different sizes ever overlap.
const fn unit<T>() -> usize {
    1 << (std::mem::size_of::<T>() | std::mem::align_of::<T>() | 8).trailing_zeros()
}

/// Which way a copy goes.
#[derive(Clone, Copy)]
enum Way {
    /// From shared memory to private memory.
    Out,
    /// From private memory to shared memory.
    In,
}

/// Copies `len` bytes between `shared` and `private`, one atomic `A` at a time.
///
/// # Safety
///
/// `shared` is valid for reads and writes of `len` bytes, aligned to `A`, and every access to
/// those bytes in this process while the copy runs is atomic and `A`-sized; `private` is valid
/// for `len` bytes (written if `way` is `Out`) and overlaps nothing shared; `len` is a
/// multiple of the size of `A`.
#[inline]
unsafe fn copy_units<A: Unit>(shared: *mut u8, private: *mut u8, len: usize, way: Way) {
    let size = std::mem::size_of::<A>();
    for at in (0..len).step_by(size) {
        // SAFETY: `at + size <= len`, so in bounds, and aligned (`at` is a multiple of `size`,
        // the alignment of `A`); every concurrent access is atomic of this size (the contract),
        // so a shared reference to the atomic is sound.
        let unit = unsafe { &*shared.add(at).cast::<A>() };
        let own = private.wrapping_add(at).cast::<A::Int>();
        match way {
            // SAFETY: in bounds of `private`, which is writable for `Out`; unaligned access
            // needs no alignment.
            Way::Out => unsafe { own.write_unaligned(unit.load()) },
            // SAFETY: in bounds of `private`; unaligned access needs no alignment.
            Way::In => unit.store(unsafe { own.read_unaligned() }),
        }
    }
}

/// Copies `n` items of `T` between `shared` and `private` in atomic units (see [`unit`]).
///
/// # Safety
///
/// `shared` is valid for reads and writes of `n` items of `T`, aligned, for the whole call,
/// and every access to them in this process meanwhile is made through this function (or
/// atomics of the same width); `private` is valid for `n` items (writable for `Out`), and
/// overlaps nothing shared.
unsafe fn copy<T: Pod>(shared: *mut T, private: *mut T, n: usize, way: Way) {
    let (shared, private) = (shared.cast::<u8>(), private.cast::<u8>());
    let len = n * std::mem::size_of::<T>();
    // SAFETY: the caller's promise, with the unit of `T`, which divides the size of `T` (so
    // `len`) and its alignment (so `shared`'s).
    unsafe {
        match unit::<T>() {
            8 => copy_units::<AtomicU64>(shared, private, len, way),
            4 => copy_units::<AtomicU32>(shared, private, len, way),
            2 => copy_units::<AtomicU16>(shared, private, len, way),
            _ => copy_units::<AtomicU8>(shared, private, len, way),
        }
    }
}

/// Copies `out.len()` items from shared `src` into `out`, in atomic units.
///
/// # Safety
///
/// As for [`copy`], with `src` as the shared side.
unsafe fn load_into<T: Pod>(src: *const T, out: &mut [T]) {
    // SAFETY: the caller's promise; `out` is private and writable. `src` is only read.
    unsafe { copy(src.cast_mut(), out.as_mut_ptr(), out.len(), Way::Out) }
}

/// Copies `items` to shared `dst`, in atomic units.
///
/// # Safety
///
/// As for [`copy`], with `dst` as the shared side.
unsafe fn store_from<T: Pod>(dst: *mut T, items: &[T]) {
    // SAFETY: the caller's promise; `items` is private and, for `In`, only read.
    unsafe { copy(dst, items.as_ptr().cast_mut(), items.len(), Way::In) }
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

/// What the four types serialise their data as: the block, the number of items, the width of
/// the atomic units they are accessed in, and whether a lock guards them. Decoding checks the
/// last two against the type decoded to, so that a decoded handle never reads or writes the
/// bytes in units of another width (mixed-size atomics that race are undefined behaviour), and
/// the data of a `Value` or an `Array`, which a guard may lend as `&mut`, never comes back as
/// a raw form. (Handles forged from crafted bytes are beyond what a check can catch, as a file
/// mapped twice is for memmap2.)
#[derive(Serialize, Deserialize)]
struct Handle {
    block: Block,
    len: u64,
    unit: u8,
    locked: bool,
}

impl Handle {
    fn new<T>(block: &Block, len: usize, locked: bool) -> Handle {
        Handle {
            block: block.clone(),
            len: len as u64,
            unit: unit::<T>() as u8,
            locked,
        }
    }

    /// The block and the number of items, if they fit `T` and the kind asked for.
    fn open<T: Pod>(self, locked: bool) -> Result<(Block, usize), String> {
        if self.locked != locked {
            return Err(match locked {
                true => "a raw handle cannot be decoded as a Value or an Array".into(),
                false => "the data of a Value or an Array cannot be decoded as a raw form".into(),
            });
        }
        if usize::from(self.unit) != unit::<T>() {
            return Err(format!(
                "shared items accessed {} bytes at a time cannot be decoded as a type accessed \
                 {} bytes at a time",
                self.unit,
                unit::<T>()
            ));
        }
        let len = usize::try_from(self.len).map_err(|e| e.to_string())?;
        check_block::<T>(&self.block, len).map_err(|e| e.to_string())?;
        Ok((self.block, len))
    }
}

/// Checks that `range` lies in `0..len` and, if given, that it spans `values` items.
fn check_range(range: &Range<usize>, len: usize, values: usize) -> Result<(), ShmError> {
    if range.start > range.end || range.end > len {
        return Err(ShmError::IndexOutOfRange {
            index: range.end.max(range.start),
            len,
        });
    }
    if range.len() != values {
        return Err(ShmError::LengthMismatch {
            expected: range.len(),
            got: values,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The lock and the borrow word

/// Set in the borrow word while threads or processes sleep on it (the futex is its low half).
const WAITERS: u64 = 1 << 31;
/// Set in the borrow word when its holder's hold on the lock was released under it, and
/// someone else took the lock: the holder must then leave a plain `Lock` alone when it ends
/// (an `RLock` it releases as usual: only its owner can, so that frees no one else's hold).
const RELEASED: u64 = 1 << 30;
const _: () = assert!(owner::ID_MASK & (WAITERS | RELEASED) == 0);

/// What panics when a thread uses a `Value` or an `Array` while holding its guard.
const REENTERED: &str = "a Value or Array was used while this thread holds its guard, which \
                         lends the data as `&mut`: read or write through the guard";

/// The lock of a `Value` or `Array`, and the borrow word: 0 while nobody uses the data, else
/// the owner id (see [`owner`]) of the thread that does, with the bits above.
///
/// The lock is what Python users see and what makes others wait; the borrow word is what makes
/// the data's use exclusive, because a lock may be released by any thread. Everyone takes the
/// lock, then the borrow word. Finding the borrow word taken by another thread while holding
/// the lock proves that the holder's hold was released under it (by another thread, for a
/// `Lock`; by the holder itself, for an `RLock`): the finder marks it [`RELEASED`], lets go of
/// the lock and sleeps on the word until the holder ends. A holder that dies leaves its id in
/// the word; the next one to find it takes the word over, as the lock's next acquirer does.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Guarded {
    lock: AnyLock,
    borrow: Shared<AtomicU64>,
}

/// How taking the lock and the borrow word went.
enum Entry {
    /// Both are ours.
    Clean,
    /// Both are ours, one of them taken over from a holder that died (its pid or thread id).
    FromDead(u32),
    /// This thread holds the borrow word already; nothing was taken.
    Reentered,
}

impl Guarded {
    fn new(lock: AnyLock) -> crate::Result<Guarded> {
        Ok(Guarded {
            lock,
            borrow: Shared::new()?,
        })
    }

    /// Takes the lock, then the borrow word, waiting as long as it takes; takes nothing if
    /// this thread holds the borrow word already (with a plain `Lock`, waiting for the lock
    /// would then never end).
    fn enter(&self) -> Entry {
        let me = owner::thread();
        // Only this thread can set or clear its own id in the word.
        if self.borrow.load(Ordering::Relaxed) & !(WAITERS | RELEASED) == me {
            return Entry::Reentered;
        }
        loop {
            let dead = match self.lock.acquire_until(None) {
                Acquired::FromDead(pid) => Some(pid),
                _ => None,
            };
            let held = match self.take_borrow(me) {
                Ok(()) => return dead.map_or(Entry::Clean, Entry::FromDead),
                Err(held) => held,
            };
            let holder = held & !(WAITERS | RELEASED);
            if !owner::is_dead(holder) {
                self.wait_for(held);
                continue;
            }
            // A guard of a dead thread or process: its borrow ended with it.
            if self
                .borrow
                .compare_exchange(held, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Entry::FromDead(dead.unwrap_or(owner::os_id(holder)));
            }
            self.lock.release_own();
        }
    }

    /// Marks the live holder of `held` as having lost its lock (we hold it), so that its end
    /// leaves the lock alone, then lets go of the lock and sleeps until the holder ends (or a
    /// while, to ask again whether it lives).
    #[cold]
    fn wait_for(&self, held: u64) {
        let marked = held | RELEASED | WAITERS;
        let marked_now = self
            .borrow
            .compare_exchange(held, marked, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
        self.lock.release_own();
        if marked_now {
            let until = Instant::now() + CHECK_EVERY;
            futex::wait_low_half(&self.borrow, marked as u32, Some(until));
        }
    }

    /// Whether holding the lock keeps every other thread from holding it until this thread
    /// lets go: true of an `RLock`, which only its owner may release, not of a `Lock`, which
    /// any thread may. Then only this thread touches the borrow word while it holds the lock
    /// and the word is 0 or its own (everyone else sets it only while holding the lock, and
    /// clears it only if it is theirs), so plain loads and stores do, as for the flag of a
    /// `RefCell`: the uncontended path costs no read-modify-write beyond the lock's own.
    #[inline]
    fn lock_is_exclusive(&self) -> bool {
        matches!(self.lock, AnyLock::RLock(_))
    }

    /// Takes the borrow word for `me`, who holds the lock; else what it holds.
    #[inline]
    fn take_borrow(&self, me: u64) -> Result<(), u64> {
        if self.lock_is_exclusive() {
            match self.borrow.load(Ordering::Acquire) {
                0 => {
                    self.borrow.store(me, Ordering::Relaxed);
                    Ok(())
                }
                held => Err(held),
            }
        } else {
            self.borrow
                .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
                .map(drop)
        }
    }

    /// Gives back the borrow word, wakes whoever waits for it, and releases the lock unless it
    /// was released under us and is maybe someone else's now (an `RLock` never is: only its
    /// owner can release it).
    #[inline]
    fn leave(&self) {
        let me = owner::thread();
        if self.lock_is_exclusive()
            && self.lock.is_mine()
            && self.borrow.load(Ordering::Relaxed) == me
        {
            // Nobody waits (there are no marks), and nobody else can touch the word.
            self.borrow.store(0, Ordering::Release);
            self.lock.release_own();
            return;
        }
        let held = self.borrow.swap(0, Ordering::Release);
        if held & WAITERS != 0 {
            futex::wake_low_half(&self.borrow, i32::MAX as u32);
        }
        if held & RELEASED == 0 || self.lock_is_exclusive() {
            self.lock.release_own();
        }
    }

    /// Runs `f` with the lock and the borrow word (taken over from a dead holder if need be):
    /// what `get`, `set` and their like do.
    ///
    /// # Panics
    ///
    /// If this thread holds a guard of the object ([`REENTERED`]).
    #[inline]
    fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        if let Entry::Reentered = self.enter() {
            panic!("{REENTERED}");
        }
        let result = f();
        self.leave();
        result
    }

    /// A guard lending `data`, which this object guards.
    #[inline]
    fn guard<T: ?Sized>(&self, data: NonNull<T>) -> TryLockResult<Guard<'_, T>> {
        let entry = self.enter();
        let guard = || Guard {
            guarded: self,
            data,
            marker: PhantomData,
        };
        match entry {
            Entry::Clean => Ok(guard()),
            Entry::FromDead(pid) => Err(TryLockError::OwnerDied(OwnerDied::new(guard(), pid))),
            Entry::Reentered => Err(TryLockError::WouldBlock),
        }
    }
}

/// Holds the lock and the borrow word of a [`Value`] or an [`Array`] and lends its data in
/// place, no copy (Python's `with v.get_lock():` block): [`ValueGuard`] derefs to the `T`,
/// [`ArrayGuard`] to the `[T]`.
///
/// While it lives, every other access to the object in this process waits for it, and in this
/// thread panics; dropping it releases the lock (unless another thread released it meanwhile,
/// as Python allows, and so gave it up for it).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct Guard<'a, T: ?Sized> {
    guarded: &'a Guarded,
    data: NonNull<T>,
    /// Lends the data as `&'a mut T`; the lock may be an `RLock`, owned by a thread, so the
    /// guard stays on it (neither `Send` nor `Sync`).
    marker: PhantomData<(&'a mut T, *const ())>,
}

impl<T: ?Sized> Deref for Guard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: `data` points to the object's data (in bounds and aligned, checked when the
        // object was made), mapped while `guarded` (so the object) lives. The guard holds the
        // borrow word, so no other access in this process touches the data until it drops:
        // other guards and `get`/`set`.. wait for the word or panic, and the raw form is out of
        // safe reach (`get_obj` is `unsafe` with that contract). Other processes honour the
        // same word in shared memory.
        unsafe { self.data.as_ref() }
    }
}

impl<T: ?Sized> DerefMut for Guard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this reference unique in this guard.
        unsafe { self.data.as_mut() }
    }
}

impl<T: ?Sized> Drop for Guard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.guarded.leave();
    }
}

impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for Guard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Guard").field(&&**self).finish()
    }
}
