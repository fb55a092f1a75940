//! Locks, semaphores, events, conditions and barriers across real processes.

use multiproc::prelude::*;
use multiproc::sync::{Lock, OwnerDied, RLock, SyncError, TryLockError};
use std::time::{Duration, Instant};

/// Polls `f` until it is true or 10 s pass; returns whether it became true.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn about(elapsed: Duration, expected: Duration) -> bool {
    elapsed >= expected.mul_f64(0.95) && elapsed < expected + Duration::from_secs(2)
}

#[test]
fn a_child_holds_the_lock_and_the_parent_sees_it_held() {
    let lock = Lock::new().unwrap();
    let child = {
        let lock = lock.clone();
        Process::spawn(move || {
            let _g = lock.lock().unwrap();
            std::thread::sleep(Duration::from_millis(300));
        })
        .unwrap()
    };
    assert!(eventually(|| lock.is_locked()));
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
    assert!(lock.acquire(true, None).unwrap());
    let child = {
        let lock = lock.clone();
        Process::spawn(move || lock.release()).unwrap()
    };
    child.join().unwrap().unwrap();
    assert!(lock.acquire(false, None).unwrap());
    lock.release().unwrap();
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
    assert!(!lock
        .acquire(true, Some(Duration::from_millis(200)))
        .unwrap());
    assert!(about(start.elapsed(), Duration::from_millis(200)));
}

#[test]
fn a_lock_held_by_a_killed_process_goes_to_the_next_acquirer_with_an_error() {
    let lock = Lock::new().unwrap();
    let child = {
        let lock = lock.clone();
        Process::spawn(move || {
            std::mem::forget(lock.lock().unwrap());
            std::thread::sleep(Duration::from_secs(60));
        })
        .unwrap()
    };
    assert!(eventually(|| lock.is_locked()));
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
    let encoded = multiproc::wire::encode(&lock).unwrap();
    let _held = lock.lock().unwrap();
    let child = Process::spawn(move || {
        let lock: Lock = multiproc::wire::decode(&encoded).unwrap();
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
        Process::spawn(move || {
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
        Process::spawn(move || {
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
