//! The futex layer: sleep until a 32-bit word in shared memory changes, and wake the sleepers.
//!
//! Every primitive of [`sync`](crate::sync) (and the shared-memory queues) is a few atomics on
//! words in a shared segment plus these calls, as parking_lot keeps its parking lot apart from
//! its locks. The futexes are *shared* (no `FUTEX_PRIVATE_FLAG`): the kernel keys them on the
//! page behind the address, so processes that map one segment at different addresses still meet
//! on the same word. Waits are bounded by an optional deadline on the monotonic clock, the clock
//! of [`Instant`].

use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Instant;

/// Why [`wait`] returned. Either way the caller must re-check its condition: the kernel also
/// returns early on signals and spurious wake-ups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Woken, interrupted, or the word no longer held `expected` when the call began.
    Woken,
    /// The deadline passed.
    TimedOut,
}

/// Sleeps while `word` holds `expected`, until woken or until `deadline` (`None`: no limit).
pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> Wake {
    wait_at(word.as_ptr(), expected, deadline)
}

/// [`wait`] on the low 32 bits of a 64-bit word (the half the primitives put their waiters bit
/// in), so that one 64-bit compare-and-swap can update a lock's owner and its futex at once.
pub(crate) fn wait_low_half(
    word: &AtomicU64,
    expected_low: u32,
    deadline: Option<Instant>,
) -> Wake {
    wait_at(low_half(word), expected_low, deadline)
}

/// Wakes at most `n` processes or threads sleeping on `word`; returns how many were woken.
pub(crate) fn wake(word: &AtomicU32, n: u32) -> usize {
    wake_at(word.as_ptr(), n)
}

/// Wakes one sleeper on `word`; returns whether there was one.
pub(crate) fn wake_one(word: &AtomicU32) -> bool {
    wake(word, 1) > 0
}

/// Wakes every sleeper on `word`; returns how many were woken.
pub(crate) fn wake_all(word: &AtomicU32) -> usize {
    wake(word, i32::MAX as u32)
}

/// [`wake`] for sleepers in [`wait_low_half`].
pub(crate) fn wake_low_half(word: &AtomicU64, n: u32) -> usize {
    wake_at(low_half(word), n)
}

/// The address of the low 32 bits of a 64-bit word.
fn low_half(word: &AtomicU64) -> *mut u32 {
    let base = word.as_ptr().cast::<u32>();
    if cfg!(target_endian = "little") {
        base
    } else {
        base.wrapping_add(1)
    }
}

fn wait_at(addr: *mut u32, expected: u32, deadline: Option<Instant>) -> Wake {
    let timeout = match deadline {
        None => None,
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Wake::TimedOut;
            }
            Some(libc::timespec {
                tv_sec: left.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            })
        }
    };
    let timeout_ptr = timeout
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: FUTEX_WAIT only reads the 32-bit word at `addr`, which comes from a live atomic
    // the caller borrows (so it is valid and aligned for the whole call); an invalid address
    // would only make the kernel return EFAULT. `timeout_ptr` is null or points to `timeout`,
    // which outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_futex,
            addr,
            libc::FUTEX_WAIT,
            expected,
            timeout_ptr,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    let timed_out = ret == -1
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT)
        || deadline.is_some_and(|d| Instant::now() >= d);
    if timed_out {
        Wake::TimedOut
    } else {
        Wake::Woken
    }
}

fn wake_at(addr: *mut u32, n: u32) -> usize {
    let n = n.min(i32::MAX as u32) as i32;
    // SAFETY: FUTEX_WAKE does not touch the word's contents, it only uses the address as a key;
    // the address comes from a live atomic the caller borrows.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_futex,
            addr,
            libc::FUTEX_WAKE,
            n,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    usize::try_from(ret).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn wait_on_a_changed_word_returns_at_once() {
        let word = AtomicU32::new(1);
        let start = Instant::now();
        let deadline = Some(start + Duration::from_secs(5));
        assert_eq!(wait(&word, 0, deadline), Wake::Woken);
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn wait_times_out_after_about_its_deadline() {
        let word = AtomicU32::new(0);
        let start = Instant::now();
        let result = wait(&word, 0, Some(start + Duration::from_millis(100)));
        let elapsed = start.elapsed();
        assert_eq!(result, Wake::TimedOut);
        assert!(elapsed >= Duration::from_millis(95) && elapsed < Duration::from_secs(2));
    }

    #[test]
    fn wake_one_wakes_a_sleeper() {
        let word = Arc::new(AtomicU32::new(0));
        let sleeper = {
            let word = word.clone();
            std::thread::spawn(move || {
                while word.load(Ordering::Acquire) == 0 {
                    wait(&word, 0, Some(Instant::now() + Duration::from_secs(10)));
                }
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        word.store(1, Ordering::Release);
        wake_one(&word);
        sleeper.join().unwrap();
    }

    #[test]
    fn wake_low_half_wakes_a_sleeper_on_a_64_bit_word() {
        let word = Arc::new(AtomicU64::new(7 << 32));
        let sleeper = {
            let word = word.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                while word.load(Ordering::Acquire) >> 32 == 7 {
                    wait_low_half(&word, 0, Some(start + Duration::from_secs(10)));
                }
                start.elapsed()
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        word.store(1, Ordering::Release);
        wake_low_half(&word, 1);
        assert!(sleeper.join().unwrap() < Duration::from_secs(5));
    }

    #[test]
    fn a_child_wakes_the_parent_sleeping_on_a_shared_futex() {
        let block = crate::shm::Block::new(4, 4).unwrap();
        let child = {
            let block = block.clone();
            crate::Process::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                let word = block.atomic_u32(0).unwrap();
                word.store(1, Ordering::Release);
                super::wake_all(word);
            })
            .unwrap()
        };
        let word = block.atomic_u32(0).unwrap();
        let start = Instant::now();
        while word.load(Ordering::Acquire) == 0 {
            super::wait(word, 0, Some(start + Duration::from_secs(10)));
        }
        assert!(start.elapsed() < Duration::from_secs(5));
        child.join().unwrap();
    }
}
