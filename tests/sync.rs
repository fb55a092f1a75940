//! Locks, semaphores, events, conditions and barriers across real processes.

mod common;

use common::eventually;
use multiproc::prelude::*;
use multiproc::sync::{
    Barrier, BoundedSemaphore, Condition, Event, Lock, OwnerDied, RLock, Semaphore, SyncError,
    TryLockError,
};
use multiproc::Value;
use std::time::{Duration, Instant};

fn about(elapsed: Duration, expected: Duration) -> bool {
    elapsed >= expected.mul_f64(0.95) && elapsed < expected + Duration::from_secs(2)
}

#[test]
fn a_child_holds_the_lock_and_the_parent_sees_it_held() {
    let lock = Lock::new().unwrap();
    let child = {
        let lock = lock.clone();
        Process::fork(move || {
            let _g = lock.lock().unwrap();
            std::thread::sleep(Duration::from_millis(300));
        })
        .unwrap()
    };
    assert!(eventually(Duration::from_secs(10), || lock.is_locked()));
    assert!(matches!(lock.try_lock(), Err(TryLockError::WouldBlock)));
    let start = Instant::now();
    let guard = lock.lock().unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    drop(guard);
    child.join().unwrap();
}

#[test]
fn a_child_releases_a_lock_the_parent_acquired() {
    let lock = Lock::new().unwrap();
    lock.acquire().unwrap();
    let child = {
        let lock = lock.clone();
        Process::fork(move || lock.release()).unwrap()
    };
    child.join().unwrap().unwrap();
    assert!(lock.try_acquire().unwrap());
    lock.release().unwrap();
}

#[test]
fn lock_acquire_has_pythons_forms_without_arguments() {
    let lock = Lock::new().unwrap();
    lock.acquire().unwrap(); // Python's lock.acquire()
    assert!(
        !lock.try_acquire().unwrap(),
        "acquire(block=False) on a held lock"
    );
    let start = Instant::now();
    assert!(!lock.acquire_timeout(Duration::from_millis(200)).unwrap());
    assert!(about(start.elapsed(), Duration::from_millis(200)));
    let child = {
        let lock = lock.clone();
        Process::fork(move || {
            std::thread::sleep(Duration::from_millis(100));
            lock.release()
        })
        .unwrap()
    };
    lock.acquire().unwrap(); // blocks until the child releases
    child.join().unwrap().unwrap();
    lock.release().unwrap();

    // A holder killed with the lock: acquire() reports it, with the lock now held.
    let holder = {
        let lock = lock.clone();
        Process::fork(move || {
            lock.acquire().unwrap();
            std::thread::sleep(Duration::from_secs(60));
        })
        .unwrap()
    };
    assert!(eventually(Duration::from_secs(10), || lock.is_locked()));
    holder.kill().unwrap();
    let _ = holder.join();
    assert_eq!(
        lock.acquire(),
        Err(SyncError::OwnerDied {
            pid: holder.pid() as u32
        })
    );
    assert!(lock.is_locked());
    lock.release().unwrap();

    let rlock = RLock::new().unwrap();
    rlock.acquire().unwrap();
    assert!(rlock.try_acquire().unwrap());
    assert!(rlock.acquire_timeout(Duration::from_millis(10)).unwrap());
    for _ in 0..3 {
        rlock.release().unwrap();
    }
    assert_eq!(rlock.release(), Err(SyncError::NotOwner));
}

#[test]
fn releasing_an_unlocked_lock_is_an_error() {
    let lock = Lock::new().unwrap();
    assert_eq!(lock.release(), Err(SyncError::NotLocked));
}

#[test]
fn lock_timeout_returns_after_about_its_time() {
    let lock = Lock::new().unwrap();
    let _held = lock.lock().unwrap();
    let start = Instant::now();
    assert!(matches!(
        lock.lock_timeout(Duration::from_millis(200)),
        Err(TryLockError::WouldBlock)
    ));
    assert!(about(start.elapsed(), Duration::from_millis(200)));
    let start = Instant::now();
    assert!(!lock.acquire_timeout(Duration::from_millis(200)).unwrap());
    assert!(about(start.elapsed(), Duration::from_millis(200)));
}

#[test]
fn a_lock_held_by_a_killed_process_goes_to_the_next_acquirer_with_an_error() {
    let lock = Lock::new().unwrap();
    let child = {
        let lock = lock.clone();
        Process::fork(move || {
            std::mem::forget(lock.lock().unwrap());
            std::thread::sleep(Duration::from_secs(60));
        })
        .unwrap()
    };
    assert!(eventually(Duration::from_secs(10), || lock.is_locked()));
    child.kill().unwrap();
    let start = Instant::now();
    let died = lock.lock().expect_err("the holder died");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(died.pid(), child.pid() as u32);
    let guard = OwnerDied::into_inner(died);
    drop(guard);
    assert!(!lock.is_locked());
    assert!(child.join().is_err());
}

#[test]
fn a_lock_decoded_in_a_child_is_the_same_lock() {
    let lock = Lock::new().unwrap();
    let encoded = common::encode(&lock);
    let _held = lock.lock().unwrap();
    let child = Process::fork(move || {
        let lock: Lock = common::decode(&encoded).unwrap();
        let held = lock.try_lock().is_err();
        held
    })
    .unwrap();
    assert!(
        child.join().unwrap(),
        "the child sees the parent's lock held"
    );
}

#[test]
fn an_rlock_is_reentrant_and_owned_by_its_thread() {
    let lock = RLock::new().unwrap();
    let a = lock.lock().unwrap();
    let b = lock.lock().unwrap();
    let other = {
        let lock = lock.clone();
        std::thread::spawn(move || (lock.release(), lock.try_lock().is_err()))
            .join()
            .unwrap()
    };
    assert_eq!(other, (Err(SyncError::NotOwner), true));
    drop(b);
    assert!(lock.is_mine());
    drop(a);
    assert!(!lock.is_mine());
    assert_eq!(lock.release(), Err(SyncError::NotOwner));
}

#[test]
fn an_rlock_held_in_a_child_blocks_the_parent_until_released() {
    let lock = RLock::new().unwrap();
    let child = {
        let lock = lock.clone();
        Process::fork(move || {
            let _a = lock.lock().unwrap();
            let _b = lock.lock().unwrap();
            std::thread::sleep(Duration::from_millis(200));
        })
        .unwrap()
    };
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    let _g = lock.lock().unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    child.join().unwrap();
}

#[test]
fn an_rlock_held_by_a_killed_process_goes_to_the_next_acquirer() {
    let lock = RLock::new().unwrap();
    let child = {
        let lock = lock.clone();
        Process::fork(move || {
            std::mem::forget(lock.lock().unwrap());
            std::mem::forget(lock.lock().unwrap());
            std::thread::sleep(Duration::from_secs(60));
        })
        .unwrap()
    };
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap();
    let start = Instant::now();
    let guard = match lock.lock() {
        Err(died) => died.into_inner(),
        Ok(_) => panic!("the owner died: expected OwnerDied"),
    };
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(lock.is_mine());
    drop(guard);
    assert!(
        !lock.is_mine(),
        "one release frees a lock taken from the dead"
    );
}

#[test]
fn a_semaphore_admits_its_value_and_a_release_in_a_child_wakes_the_parent() {
    let sem = Semaphore::new(2).unwrap();
    sem.acquire();
    assert!(sem.try_acquire());
    assert!(!sem.try_acquire());
    assert_eq!(sem.get_value(), 0);
    let start = Instant::now();
    assert!(!sem.acquire_timeout(Duration::from_millis(200)));
    assert!(about(start.elapsed(), Duration::from_millis(200)));
    let child = {
        let sem = sem.clone();
        Process::fork(move || {
            std::thread::sleep(Duration::from_millis(100));
            sem.release().unwrap();
        })
        .unwrap()
    };
    let start = Instant::now();
    assert!(sem.acquire_timeout(Duration::from_secs(10)));
    assert!(start.elapsed() < Duration::from_secs(5));
    child.join().unwrap();
    sem.release().unwrap();
    sem.release().unwrap();
    {
        let _unit = sem.lock();
        assert_eq!(sem.get_value(), 1);
    }
    assert_eq!(sem.get_value(), 2, "the guard gave its unit back");
    let (a, b) = (sem.try_lock(), sem.try_lock());
    assert!(a.is_some() && b.is_some() && sem.try_lock().is_none());
    let start = Instant::now();
    assert!(sem.lock_timeout(Duration::from_millis(200)).is_none());
    assert!(about(start.elapsed(), Duration::from_millis(200)));
    drop(a);
    assert!(sem.lock_timeout(Duration::from_millis(200)).is_some());
}

#[test]
fn a_semaphore_refuses_a_release_past_u32_max_instead_of_wrapping() {
    let sem = Semaphore::new(u32::MAX).unwrap();
    let err = sem.release().unwrap_err();
    assert_eq!(err, SyncError::SemaphoreOverflow);
    assert!(err.to_string().contains("released too many times"));
    assert_eq!(sem.get_value(), u32::MAX, "the value is unchanged, not 0");
    let unit = sem.lock();
    assert_eq!(sem.get_value(), u32::MAX - 1);
    sem.release().unwrap();
    drop(unit); // the value is u32::MAX again: this unit is dropped, the count does not wrap
    assert_eq!(sem.get_value(), u32::MAX);
    assert!(sem.try_acquire());
    assert_eq!(sem.get_value(), u32::MAX - 1);
}

#[test]
fn a_killed_holders_semaphore_unit_is_lost_as_in_cpython() {
    let sem = Semaphore::new(2).unwrap();
    let child = {
        let sem = sem.clone();
        Process::fork(move || {
            let _unit = sem.lock();
            std::thread::sleep(Duration::from_secs(60));
        })
        .unwrap()
    };
    assert!(eventually(Duration::from_secs(10), || sem.get_value() == 1));
    child.kill().unwrap();
    assert!(child.join().is_err());
    assert_eq!(
        sem.get_value(),
        1,
        "the dead holder's unit is not given back"
    );
    let _mine = sem.lock();
    assert!(sem.lock_timeout(Duration::from_millis(100)).is_none());
    sem.release().unwrap(); // whoever joined the dead holder may give its unit back
    assert!(sem.try_lock().is_some());
}

#[test]
fn a_bounded_semaphore_refuses_a_release_past_its_initial_value() {
    let sem = BoundedSemaphore::new(1).unwrap();
    assert_eq!(
        sem.release(),
        Err(SyncError::TooManyReleases { initial: 1 })
    );
    assert!(sem.try_acquire());
    assert_eq!(sem.get_value(), 0);
    sem.release().unwrap();
    assert_eq!(sem.get_value(), 1);
    let guard = sem.try_lock().expect("a free unit");
    assert_eq!(sem.get_value(), 0);
    drop(guard);
    assert_eq!(
        sem.get_value(),
        1,
        "a guard's release stays within the bound"
    );
}

#[test]
fn an_event_set_in_a_child_wakes_the_parent() {
    let event = Event::new().unwrap();
    assert!(!event.is_set());
    let start = Instant::now();
    assert!(!event.wait_timeout(Duration::from_millis(200)));
    assert!(about(start.elapsed(), Duration::from_millis(200)));
    let child = {
        let event = event.clone();
        Process::fork(move || {
            std::thread::sleep(Duration::from_millis(100));
            event.set();
        })
        .unwrap()
    };
    assert!(event.wait_timeout(Duration::from_secs(10)));
    assert!(event.is_set());
    event.clear();
    assert!(!event.is_set());
    child.join().unwrap();
}

#[test]
fn a_condition_hands_items_from_a_producer_child_to_the_parent() {
    let cond = Condition::new().unwrap();
    let items = Value::new(0u32).unwrap();
    let producer = {
        let (cond, items) = (cond.clone(), items.clone());
        Process::fork(move || {
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(20));
                let _held = cond.lock().unwrap();
                items.set(items.get() + 1);
                cond.notify(1).unwrap();
            }
        })
        .unwrap()
    };
    let _held = cond.lock().unwrap();
    let done = cond
        .wait_for(|| items.get() == 5, Some(Duration::from_secs(10)))
        .unwrap();
    assert!(done);
    drop(_held);
    producer.join().unwrap();
}

#[test]
fn a_condition_refuses_wait_and_notify_without_its_lock() {
    let cond = Condition::with_lock(Lock::new().unwrap()).unwrap();
    assert_eq!(cond.wait(), Err(SyncError::NotHeld));
    assert_eq!(cond.notify(1), Err(SyncError::NotHeld));
    cond.acquire().unwrap();
    let start = Instant::now();
    assert!(!cond.wait_timeout(Duration::from_millis(200)).unwrap());
    assert!(about(start.elapsed(), Duration::from_millis(200)));
    cond.notify_all().unwrap();
    cond.release().unwrap();
}

#[test]
fn a_barrier_gives_each_party_a_distinct_index() {
    let barrier = Barrier::new(3).unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            let barrier = barrier.clone();
            Process::fork(move || barrier.wait()).unwrap()
        })
        .collect();
    let mut indices = vec![barrier.wait().unwrap()];
    for child in children {
        indices.push(child.join().unwrap().unwrap());
    }
    indices.sort();
    assert_eq!(indices, vec![0, 1, 2]);
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!barrier.broken());
}

#[test]
fn a_party_killed_while_waiting_still_counts_and_a_timeout_still_works() {
    let kill_a_waiter = |barrier: &Barrier| {
        let child = {
            let barrier = barrier.clone();
            Process::fork(move || barrier.wait()).unwrap()
        };
        assert!(eventually(Duration::from_secs(10), || barrier.n_waiting() == 1));
        child.kill().unwrap();
        assert!(child.join().is_err());
    };

    // Two parties: the dead waiter's arrival stands, so the round trips without it.
    let two = Barrier::new(2).unwrap();
    kill_a_waiter(&two);
    assert_eq!(two.n_waiting(), 1, "the dead party is still counted");
    assert_eq!(two.wait_timeout(Duration::from_secs(10)), Ok(1));
    assert!(!two.broken());

    // Three parties: the round cannot fill; a timed wait breaks the barrier instead of hanging.
    let three = Barrier::new(3).unwrap();
    kill_a_waiter(&three);
    let start = Instant::now();
    assert_eq!(
        three.wait_timeout(Duration::from_millis(200)),
        Err(SyncError::BrokenBarrier)
    );
    assert!(about(start.elapsed(), Duration::from_millis(200)));
    assert!(three.broken());
    three.reset();
    assert_eq!(three.n_waiting(), 0, "reset forgets the dead party");
    let child = {
        let three = three.clone();
        Process::fork(move || three.wait_timeout(Duration::from_secs(10))).unwrap()
    };
    let other = {
        let three = three.clone();
        Process::fork(move || three.wait_timeout(Duration::from_secs(10))).unwrap()
    };
    let mut indices = vec![three.wait_timeout(Duration::from_secs(10)).unwrap()];
    indices.push(child.join().unwrap().unwrap());
    indices.push(other.join().unwrap().unwrap());
    indices.sort();
    assert_eq!(indices, vec![0, 1, 2], "usable again after reset");
}

#[test]
fn a_timed_out_barrier_is_broken_for_every_waiter_until_reset() {
    let barrier = Barrier::new(3).unwrap();
    let child = {
        let barrier = barrier.clone();
        Process::fork(move || barrier.wait_timeout(Duration::from_secs(10))).unwrap()
    };
    assert!(eventually(Duration::from_secs(10), || barrier.n_waiting() == 1));
    let start = Instant::now();
    assert_eq!(
        barrier.wait_timeout(Duration::from_millis(200)),
        Err(SyncError::BrokenBarrier)
    );
    assert!(about(start.elapsed(), Duration::from_millis(200)));
    assert_eq!(child.join().unwrap(), Err(SyncError::BrokenBarrier));
    assert!(barrier.broken());
    assert_eq!(barrier.wait(), Err(SyncError::BrokenBarrier));
    barrier.reset();
    assert!(!barrier.broken());
    let single = Barrier::new(1).unwrap();
    assert_eq!(single.wait(), Ok(0));
}

#[test]
fn abort_and_reset_break_the_current_waiters() {
    let barrier = Barrier::new(2).unwrap();
    let child = {
        let barrier = barrier.clone();
        Process::fork(move || barrier.wait()).unwrap()
    };
    assert!(eventually(Duration::from_secs(10), || barrier.n_waiting() == 1));
    barrier.reset();
    assert_eq!(child.join().unwrap(), Err(SyncError::BrokenBarrier));
    assert!(!barrier.broken(), "reset leaves it usable");
    let child = {
        let barrier = barrier.clone();
        Process::fork(move || barrier.wait()).unwrap()
    };
    assert!(eventually(Duration::from_secs(10), || barrier.n_waiting() == 1));
    barrier.abort();
    assert_eq!(child.join().unwrap(), Err(SyncError::BrokenBarrier));
    assert!(barrier.broken());
    assert_eq!(
        Barrier::new(0).err().map(|e| e.to_string()),
        Some(SyncError::NoParties.to_string())
    );
}

static ACTIONS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[process_task]
fn count_action() {
    ACTIONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

#[test]
fn a_barrier_action_runs_once_per_round_in_the_last_party() {
    let barrier = Barrier::new(1).unwrap().action(task!(count_action));
    let before = ACTIONS.load(std::sync::atomic::Ordering::SeqCst);
    barrier.wait().unwrap();
    barrier.wait().unwrap();
    assert_eq!(
        ACTIONS.load(std::sync::atomic::Ordering::SeqCst) - before,
        2
    );
}

#[process_task]
fn failing_action() {
    panic!("the barrier action fails");
}

#[test]
fn a_failing_barrier_action_breaks_the_barrier() {
    let barrier = Barrier::new(2).unwrap().action(task!(failing_action));
    let child = {
        let barrier = barrier.clone();
        Process::fork(move || barrier.wait()).unwrap()
    };
    assert_eq!(barrier.wait(), Err(SyncError::BrokenBarrier));
    assert_eq!(child.join().unwrap(), Err(SyncError::BrokenBarrier));
    assert!(barrier.broken());
}
