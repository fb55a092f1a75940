//! What made the shared-memory data API sound, hammered: the raw forms' atomic accesses from
//! threads and processes at once, and the borrow word that keeps `get`/`set` off a live guard's
//! data even after Python's release-by-any-thread. (The programs that no longer compile are in
//! `tests/compile_fail/soundness_*.rs`.)

mod common;

use common::eventually;
use multiproc::prelude::*;
use multiproc::sync::SyncError;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

const THREADS: u64 = 4;
const ROUNDS: u64 = 20_000;

/// Runs `work(thread)` on [`THREADS`] threads in this process and as many in a forked child.
fn in_threads_of_two_processes(work: impl Fn(u64) + Clone + Send + Sync + 'static) {
    let run = move |first: u64| {
        std::thread::scope(|s| {
            for t in first..first + THREADS {
                let work = &work;
                s.spawn(move || work(t));
            }
        });
    };
    let child = {
        let run = run.clone();
        Process::fork(move || run(THREADS)).unwrap()
    };
    run(0);
    child.join().unwrap();
}

#[test]
fn raw_fetch_add_from_threads_and_processes_is_exact() {
    let counter = RawValue::new(0u64).unwrap();
    let shared = counter.clone();
    in_threads_of_two_processes(move |_| {
        for _ in 0..ROUNDS {
            shared.fetch_add(1);
        }
    });
    assert_eq!(counter.get(), 2 * THREADS * ROUNDS);
    assert_eq!(counter.load(), 2 * THREADS * ROUNDS);
}

#[test]
fn raw_values_written_at_once_are_always_one_of_the_writes() {
    const A: u64 = 0x5555_5555_5555_5555;
    const B: u64 = 0xaaaa_aaaa_aaaa_aaaa;
    let value = RawValue::new(A).unwrap();
    let pair = RawValue::new([A as u32, A as u32]).unwrap();
    let (v, p) = (value.clone(), pair.clone());
    in_threads_of_two_processes(move |t| {
        let mine = if t % 2 == 0 { A } else { B };
        for _ in 0..ROUNDS {
            v.set(mine);
            p.set([mine as u32; 2]);
            let seen = v.get();
            assert!(seen == A || seen == B, "a torn u64: {seen:#x}");
            // Two u32 units: each is whole, the pair may mix.
            for half in p.get() {
                assert!(half == A as u32 || half == B as u32, "{half:#x}");
            }
        }
    });
    assert!([A, B].contains(&value.get()));
}

#[test]
fn raw_array_items_written_at_once_are_always_one_of_the_writes() {
    const A: u64 = u64::MAX;
    const B: u64 = 0x0123_4567_89ab_cdef;
    let array = RawArray::from_slice(&[A; 64]).unwrap();
    let shared = array.clone();
    in_threads_of_two_processes(move |t| {
        let mine = [if t % 2 == 0 { A } else { B }; 64];
        let mut seen = [0; 64];
        for round in 0..ROUNDS / 20 {
            shared.set_slice(0..64, &mine).unwrap();
            shared.set((round % 64) as usize, mine[0]).unwrap();
            shared.read_into(0, &mut seen).unwrap();
            assert!(seen.iter().all(|&x| x == A || x == B));
            assert!(shared.to_vec().iter().all(|&x| x == A || x == B));
        }
    });
    assert!(array.to_vec().iter().all(|&x| x == A || x == B));
}

#[test]
fn locked_fetch_add_from_threads_and_processes_is_exact() {
    let counter = Value::new(0i64).unwrap();
    let shared = counter.clone();
    in_threads_of_two_processes(move |_| {
        for _ in 0..ROUNDS / 4 {
            shared.fetch_add(1);
        }
    });
    assert_eq!(counter.get(), (2 * THREADS * ROUNDS / 4) as i64);
}

/// Takes a guard of `value` in a new thread, applies `first` (to the value and the guarded
/// data), sends what the value is then,
/// and holds the guard until told to go on; then applies `last` and drops it.
fn hold_in_a_thread(
    value: &Value<u32>,
    first: fn(&Value<u32>, &mut u32),
    last: fn(&mut u32),
) -> (mpsc::Receiver<u32>, mpsc::Sender<()>, JoinHandle<()>) {
    let (held_tx, held_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let value = value.clone();
    let holder = std::thread::spawn(move || {
        let mut guard = value.lock().unwrap();
        first(&value, &mut guard);
        held_tx.send(*guard).unwrap();
        go_rx.recv().unwrap();
        last(&mut guard);
    });
    (held_rx, go_tx, holder)
}

/// A thread holds a guard of a value with a plain `Lock` (having written 2; it writes 3 when
/// told to go on); another thread releases the lock, as Python allows; a third thread's `get`
/// (or `lock`) must still wait for the guard.
fn guard_held_elsewhere_after_a_foreign_release() -> (Value<u32>, mpsc::Sender<()>, JoinHandle<()>)
{
    let value = Value::with_lock(1u32, Lock::new().unwrap()).unwrap();
    let (held, go, holder) = hold_in_a_thread(&value, |_, v| *v = 2, |v| *v = 3);
    assert_eq!(held.recv().unwrap(), 2);
    value
        .get_lock()
        .release()
        .expect("any thread may release a Lock");
    (value, go, holder)
}

/// Checks that `get` from another thread waits while `holder` keeps its guard of `value`,
/// then, once told to `go` on (and write 3), sees that write and leaves the lock free.
fn get_waits_for_the_guard(value: &Value<u32>, go: mpsc::Sender<()>, holder: JoinHandle<()>) {
    let reader = {
        let value = value.clone();
        std::thread::spawn(move || value.get())
    };
    std::thread::sleep(Duration::from_millis(200));
    assert!(!reader.is_finished(), "get waits while the guard lives");
    go.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(
        reader.join().unwrap(),
        3,
        "and then sees the guard's last write"
    );
    assert!(
        !value.get_lock().is_locked(),
        "the lock is free: the guard did not release the reader's hold, the reader did"
    );
}

#[test]
fn get_after_a_foreign_release_waits_for_the_guard_and_sees_its_write() {
    let (value, go, holder) = guard_held_elsewhere_after_a_foreign_release();
    get_waits_for_the_guard(&value, go, holder);
    *value.lock().unwrap() += 1;
    assert_eq!(value.get(), 4);
}

#[test]
fn a_guard_dropped_after_a_foreign_release_leaves_a_later_guard_its_lock() {
    let (value, go, holder) = guard_held_elsewhere_after_a_foreign_release();
    let (locked_rx, done_tx, second) = hold_in_a_thread(&value, |_, v| *v += 10, |_| {});
    std::thread::sleep(Duration::from_millis(200));
    assert!(locked_rx.try_recv().is_err(), "a second guard waits too");
    go.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(locked_rx.recv().unwrap(), 13);
    assert!(
        value.get_lock().is_locked(),
        "the first guard's drop did not release the second guard's lock"
    );
    done_tx.send(()).unwrap();
    second.join().unwrap();
    assert!(!value.get_lock().is_locked());
}

#[test]
fn a_guard_dropped_after_a_foreign_release_leaves_another_processs_hold_alone() {
    let (value, go, holder) = guard_held_elsewhere_after_a_foreign_release();
    let lock = value.get_lock().clone();
    let (took, release) = (Event::new().unwrap(), Event::new().unwrap());
    let child = {
        let (lock, took, release) = (lock.clone(), took.clone(), release.clone());
        Process::fork(move || {
            assert_eq!(lock.acquire(), Ok(()));
            took.set();
            release.wait();
            lock.release()
        })
        .unwrap()
    };
    assert!(took.wait_timeout(Duration::from_secs(10)));
    go.send(()).unwrap();
    holder.join().unwrap();
    assert!(
        lock.is_locked(),
        "the guard's drop left the child's hold alone"
    );
    release.set();
    assert_eq!(child.join().unwrap(), Ok::<(), SyncError>(()));
    assert!(eventually(Duration::from_secs(5), || !lock.is_locked()));
    assert_eq!(value.get(), 3);
}

#[test]
fn with_an_rlock_released_by_its_guards_own_thread_get_still_waits_for_the_guard() {
    let value = Value::new(1u32).unwrap();
    let release = |value: &Value<u32>, v: &mut u32| {
        value.get_lock().release().expect("the owner may release");
        *v = 2;
    };
    let (held, go, holder) = hold_in_a_thread(&value, release, |v| *v = 3);
    assert_eq!(held.recv().unwrap(), 2);
    get_waits_for_the_guard(&value, go, holder);
}

#[test]
fn releasing_and_retaking_an_rlock_under_a_guard_ends_balanced() {
    let value = Value::new(1u32).unwrap();
    let lock = value.get_lock().clone();
    let mut guard = value.lock().unwrap();
    lock.release().unwrap();
    assert_eq!(lock.acquire(), Ok(()));
    *guard += 1;
    drop(guard);
    assert!(
        !lock.is_locked(),
        "the guard's drop released the level taken again"
    );
    assert_eq!(std::thread::spawn(move || value.get()).join().unwrap(), 2);
}

#[test]
#[should_panic(expected = "read or write through the guard")]
fn set_under_this_threads_own_guard_panics() {
    let value = Value::new(1i64).unwrap();
    let mut guard = value.lock().unwrap();
    let r = &mut *guard;
    value.set(5);
    *r += 1;
}

#[test]
#[should_panic(expected = "read or write through the guard")]
fn get_under_this_threads_own_guard_panics_with_a_plain_lock_too() {
    let value = Value::with_lock(1u8, Lock::new().unwrap()).unwrap();
    let _guard = value.lock().unwrap();
    let _ = value.get();
}

#[test]
#[should_panic(expected = "read or write through the guard")]
fn an_array_read_under_this_threads_own_guard_panics() {
    let array = Array::<u16>::new(4).unwrap();
    let items = array.lock().unwrap();
    let _ = array.to_vec();
    drop(items);
}

#[test]
fn the_lock_and_the_data_are_usable_after_the_reentry_panic() {
    let value = Value::new(1i32).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _guard = value.lock().unwrap();
        value.fetch_add(1)
    }));
    assert!(caught.is_err());
    assert!(!value.get_lock().is_locked(), "the guard unwound");
    assert_eq!(value.fetch_add(1), 1);
    assert_eq!(value.get(), 2);
}

#[test]
fn a_handle_decodes_only_as_a_type_of_its_width_and_kind() {
    use common::{decode, encode};
    let wide = encode(&RawValue::new(u64::MAX).unwrap());
    assert!(
        decode::<RawValue<[u32; 2]>>(&wide).is_err(),
        "u32 atomics over u64 atomics would race in mixed sizes"
    );
    assert_eq!(decode::<RawValue<i64>>(&wide).unwrap().get(), -1);
    assert_eq!(decode::<RawArray<u64>>(&wide).unwrap().to_vec(), [u64::MAX]);

    let locked = Value::new(7u64).unwrap();
    let encoded = encode(&locked);
    assert!(
        decode::<RawValue<u64>>(&encoded).is_err(),
        "a Value's data, which its guard lends as &mut, does not come back raw"
    );
    assert_eq!(decode::<Value<u64>>(&encoded).unwrap().get(), 7);
    assert!(
        decode::<Value<u64>>(&wide).is_err(),
        "nor a raw form as a Value"
    );

    let items = encode(&Array::from_slice(&[1u16, 2]).unwrap());
    assert!(decode::<RawArray<u16>>(&items).is_err());
    assert!(decode::<Array<u8>>(&items).is_err());
    assert_eq!(decode::<Array<u16>>(&items).unwrap().to_vec(), [1, 2]);
}
