//! `Value`, `Array` and their raw forms across real processes.

mod common;

use common::eventually;
use multiproc::prelude::*;
use multiproc::shm::ShmError;
use multiproc::sync::{Event, Lock, TryLockError};
use std::time::{Duration, Instant};

#[process_task]
fn bump(counter: Value<i64>, times: u32) {
    for _ in 0..times {
        if let Ok(mut n) = counter.lock() {
            *n += 1;
        }
    }
}

#[test]
fn locked_increments_from_several_processes_add_up_exactly() {
    let counter = Value::new(0i64).unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            Process::new(task!(bump, counter.clone(), 2000))
                .start()
                .unwrap()
        })
        .collect();
    for child in children {
        child.join().unwrap();
    }
    assert_eq!(counter.get(), 6000);
}

#[test]
fn atomic_increments_from_several_processes_add_up_exactly() {
    let counter = Value::new(0u64).unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            let counter = counter.clone();
            Process::fork(move || {
                for _ in 0..5000 {
                    counter.fetch_add(1);
                }
            })
            .unwrap()
        })
        .collect();
    for child in children {
        child.join().unwrap();
    }
    assert_eq!(counter.get(), 10_000);
    assert_eq!(counter.swap(3), 10_000);
    assert_eq!(counter.compare_exchange(3, 4), Ok(3));
    assert_eq!(counter.fetch_sub(1), 4);
    assert_eq!(counter.get(), 3);
    // SAFETY: no guard of `counter` exists in this process.
    assert_eq!(unsafe { counter.get_obj() }.load(), 3);
}

#[test]
fn a_value_decoded_in_a_child_is_the_parents_value() {
    let value = Value::new(1.5f64).unwrap();
    let encoded = common::encode(&value);
    let child = Process::fork(move || {
        let value: Value<f64> = common::decode(&encoded).unwrap();
        let seen = value.get();
        value.set(seen * 2.0);
        seen
    })
    .unwrap();
    assert_eq!(child.join().unwrap(), 1.5);
    assert_eq!(value.get(), 3.0);
}

#[test]
fn a_second_guard_on_one_value_in_one_thread_is_refused() {
    let value = Value::new(7u32).unwrap();
    let guard = value.lock().unwrap();
    assert!(matches!(value.lock(), Err(TryLockError::WouldBlock)));
    assert_eq!(*guard, 7);
    drop(guard);
    *value.lock().unwrap() += 1;
    assert_eq!(value.get(), 8);
}

#[test]
fn values_may_share_one_lock() {
    let lock = Lock::new().unwrap();
    let a = Value::with_lock(1i32, lock.clone()).unwrap();
    let b = Value::with_lock(2i32, lock.clone()).unwrap();
    let guard = a.lock().unwrap();
    assert!(lock.is_locked() && b.get_lock().is_locked());
    drop(guard);
    assert!(!lock.is_locked());
    assert!(
        b.get_lock().try_acquire().unwrap(),
        "Python's `with b.get_lock():`"
    );
    assert!(a.get_lock().is_locked());
    b.get_lock().release().unwrap();
    assert_eq!(a.get() + b.get(), 3);
}

#[test]
fn a_value_locked_by_a_killed_process_is_handed_over_with_an_error() {
    let value = Value::new(10i64).unwrap();
    let written = Event::new().unwrap();
    let child = {
        let (value, written) = (value.clone(), written.clone());
        Process::fork(move || {
            let mut guard = value.lock().unwrap();
            *guard = 11;
            std::mem::forget(guard);
            written.set();
            std::thread::sleep(Duration::from_secs(60));
        })
        .unwrap()
    };
    assert!(written.wait_timeout(Duration::from_secs(10)));
    child.kill().unwrap();
    let start = Instant::now();
    let mut guard = match value.lock() {
        Err(TryLockError::OwnerDied(died)) => {
            assert_eq!(died.pid(), child.pid() as u32);
            died.into_inner()
        }
        other => panic!("expected OwnerDied, got {:?}", other.err()),
    };
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(*guard, 11, "what the dead holder wrote is there");
    *guard += 1;
    drop(guard);
    assert_eq!(value.get(), 12);
    assert!(child.join().is_err());
}

#[test]
fn an_array_filled_by_a_child_is_seen_by_the_parent_without_a_copy() {
    let array = Array::<f64>::new(1000).unwrap();
    let child = {
        let array = array.clone();
        Process::fork(move || {
            let mut items = array.lock().unwrap();
            for (i, x) in items.iter_mut().enumerate() {
                *x = i as f64;
            }
        })
        .unwrap()
    };
    child.join().unwrap();
    assert_eq!(array.len(), 1000);
    assert_eq!(array.lock().unwrap().iter().sum::<f64>(), 499_500.0);
    assert_eq!(array.get(999).unwrap(), 999.0);
}

#[test]
fn array_indexes_and_slice_lengths_are_checked() {
    let array = Array::from_slice(&[1u8, 2, 3]).unwrap();
    assert!(matches!(
        array.get(3),
        Err(ShmError::IndexOutOfRange { index: 3, len: 3 })
    ));
    assert!(matches!(
        array.set(7, 0),
        Err(ShmError::IndexOutOfRange { index: 7, len: 3 })
    ));
    assert!(matches!(
        array.set_slice(0..2, &[9, 9, 9]),
        Err(ShmError::LengthMismatch {
            expected: 2,
            got: 3
        })
    ));
    assert!(array.set_slice(2..4, &[9, 9]).is_err());
    assert_eq!(
        array.to_vec(),
        vec![1, 2, 3],
        "a refused write changes nothing"
    );
    array.set_slice(1..3, &[8, 9]).unwrap();
    array.set(0, 7).unwrap();
    assert_eq!(array.to_vec(), vec![7, 8, 9]);
    let from_vec = Array::try_from(vec![4u8, 5]).unwrap();
    assert_eq!(from_vec.to_vec(), vec![4, 5]);
    let empty = Array::<u64>::new(0).unwrap();
    assert!(empty.is_empty());
    assert!(empty.get(0).is_err());
}

#[test]
fn an_array_decoded_in_a_child_is_the_parents_array() {
    let array = Array::from_slice(&[1i32, 2, 3, 4]).unwrap();
    let encoded = common::encode(&array);
    let child = Process::fork(move || {
        let array: Array<i32> = common::decode(&encoded).unwrap();
        array.set(0, 100).unwrap();
        array.to_vec().iter().sum::<i32>()
    })
    .unwrap();
    assert_eq!(child.join().unwrap(), 109);
    assert_eq!(array.get(0).unwrap(), 100);
}

#[test]
fn raw_forms_share_memory_without_a_lock() {
    let value = RawValue::new(5u16).unwrap();
    let array = RawArray::<u32>::new(4).unwrap();
    let child = {
        let (value, array) = (value.clone(), array.clone());
        Process::fork(move || {
            value.set(6);
            array.set(3, 42).unwrap();
        })
        .unwrap()
    };
    child.join().unwrap();
    assert_eq!(value.get(), 6);
    assert_eq!(array.to_vec(), vec![0, 0, 0, 42]);
    assert!(array.get(4).is_err());
}

#[test]
fn a_decoded_handle_with_a_wrong_type_is_an_error() {
    let small = Value::new(1u8).unwrap();
    // SAFETY: no guard of `small` exists.
    let encoded = common::encode(unsafe { small.get_obj() });
    let wide: Result<RawValue<[u64; 32]>, _> = common::decode(&encoded);
    assert!(wide.is_err(), "a block too small for the type is refused");
}

#[test]
fn a_dead_guard_holder_does_not_block_later_guards() {
    let value = Value::new(1u8).unwrap();
    let child = {
        let value = value.clone();
        Process::fork(move || {
            std::mem::forget(value.lock().unwrap());
            std::thread::sleep(Duration::from_secs(60));
        })
        .unwrap()
    };
    assert!(
        eventually(Duration::from_secs(10), || value.get_lock().is_locked()),
        "the child took the lock"
    );
    child.kill().unwrap();
    assert_eq!(
        value.get(),
        1,
        "get takes the lock over from the dead holder"
    );
    assert!(value.lock().is_ok(), "and the dead holder's borrow is gone");
    let _ = child.join();
}
