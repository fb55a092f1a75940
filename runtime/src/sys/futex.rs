//! The futex layer: sleep until a 32-bit word in shared memory changes, and wake the sleepers.
//!
//! Every primitive of [`sync`](crate::sync) (and the shared-memory queues) is a few atomics on
//! words in a shared segment plus these calls, as parking_lot keeps its parking lot apart from
//! its locks. The futexes are *shared* (no `FUTEX_PRIVATE_FLAG`): the kernel keys them on the
//! page behind the address, so processes that map one segment at different addresses still meet
//! on the same word. Waits are bounded by an optional deadline on the monotonic clock, the clock
//! of [`Instant`].
//!
//! **Hand-off.** A counted wake-up (wake `n`, fewer than all) wakes one sleeper more than asked,
//! the *spare*. The kernel takes a woken sleeper off the queue at once, so a process killed
//! between its wake-up and its next look at the word would take the wake-up with it, and what
//! it was woken for (a freed lock, a semaphore's unit, a notification) would wait for the next
//! sleeper's timed look, or for ever where the sleep has no deadline. The spare looks as soon as
//! the others do: if the one woken first died before acting, the spare finds the word as the
//! waker left it and acts in its place; if not, it finds nothing to take and sleeps again. The
//! cost is that extra look on a contended release. One sleeper killed at a time is handed on
//! so; two killed at the same moment may still lose a wake-up to the timed looks.

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

/// Wakes at most `n` processes or threads sleeping on `word`, and a spare (see the module
/// doc); returns how many were woken.
pub(crate) fn wake(word: &AtomicU32, n: u32) -> usize {
    wake_at(word.as_ptr(), n)
}

/// Wakes one sleeper on `word`, and a spare; returns whether there was one.
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

/// How many sleepers a counted wake-up wakes beyond the count (see the module doc).
const SPARE: u32 = 1;

fn wake_at(addr: *mut u32, n: u32) -> usize {
    let n = n.saturating_add(SPARE).min(i32::MAX as u32) as i32;
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

/// Sleepers that die when woken, and a way to tell that a process or thread sleeps: what the
/// hand-off tests of the futex layer and of the lock words need.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    /// Waits until the process or thread `id` sleeps in the kernel, at most 5 s.
    pub(crate) fn wait_until_asleep(id: i32) {
        let give_up = Instant::now() + Duration::from_secs(5);
        while Instant::now() < give_up {
            let stat = std::fs::read_to_string(format!("/proc/{id}/stat")).unwrap_or_default();
            let state = stat
                .rfind(')')
                .and_then(|at| stat[at + 1..].trim_start().chars().next());
            if state == Some('S') {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("{id} never went to sleep");
    }

    /// Forks a child that runs `sleep` (a futex wait, as a waiter would make it) and is killed
    /// the moment it returns, before it can act on the wake-up; returns once the child sleeps.
    /// `sleep` should give up after some seconds, so that a child that was never woken ends.
    pub(crate) fn spawn_killed_when_woken(
        sleep: impl FnOnce() + Send + 'static,
    ) -> crate::ProcessHandle<()> {
        let ready = crate::shm::Block::new(4, 4).unwrap();
        let child = {
            let ready = ready.clone();
            crate::Process::fork(move || {
                ready.atomic_u32(0).unwrap().store(1, Ordering::SeqCst);
                sleep();
                // SAFETY: kill has no memory preconditions; the process ends here.
                unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            })
            .unwrap()
        };
        while ready.atomic_u32(0).unwrap().load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        wait_until_asleep(child.pid());
        child
    }
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
            crate::Process::fork(move || {
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

    #[test]
    fn a_wake_up_taken_by_a_sleeper_killed_as_it_wakes_reaches_the_next_one() {
        let block = crate::shm::Block::new(4, 4).unwrap();
        let first = {
            let block = block.clone();
            testing::spawn_killed_when_woken(move || {
                let word = block.atomic_u32(0).unwrap();
                super::wait(word, 0, Some(Instant::now() + Duration::from_secs(10)));
            })
        };
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let next = {
            let block = block.clone();
            std::thread::spawn(move || {
                // SAFETY: gettid has no preconditions.
                tid_tx.send(unsafe { libc::gettid() }).unwrap();
                let word = block.atomic_u32(0).unwrap();
                let give_up = Instant::now() + Duration::from_secs(10);
                while word.load(Ordering::Acquire) == 0 && Instant::now() < give_up {
                    super::wait(word, 0, Some(give_up));
                }
                Instant::now()
            })
        };
        testing::wait_until_asleep(tid_rx.recv().unwrap());
        let woken_at = Instant::now();
        block.atomic_u32(0).unwrap().store(1, Ordering::Release);
        wake_one(block.atomic_u32(0).unwrap());
        let latency = next.join().unwrap() - woken_at;
        assert!(
            matches!(
                first.join_timeout(Duration::from_secs(5)),
                Err(crate::Error::Signaled { signal: 9, .. })
            ),
            "the first sleeper took the wake-up and was killed"
        );
        assert!(
            latency < Duration::from_millis(50),
            "woken after {latency:?}"
        );
    }
}
