//! A global changed in a child is not seen by its sibling, and the same with a `Value` is
//! (tutorial 004: processes do not share variables; `multiprocessing.Value` shares one).

use multiproc::prelude::*;
use multiproc::sync::TryLockError;
use std::sync::atomic::{AtomicI32, Ordering};

static NUM: AtomicI32 = AtomicI32::new(100);

#[process_task]
fn bump_global() -> i32 {
    NUM.fetch_add(1, Ordering::SeqCst) + 1
}

#[process_task]
fn read_global() -> i32 {
    NUM.load(Ordering::SeqCst)
}

#[process_task]
fn bump_value(num: Value<i32>) -> i32 {
    // Python's `with num.get_lock(): num.value += 1`; the value's lock is held for the update
    // (and taken over, guard and all, if a process died holding it).
    let mut n = match num.lock() {
        Ok(n) => n,
        Err(TryLockError::OwnerDied(died)) => died.into_inner(),
        Err(TryLockError::WouldBlock) => unreachable!("this thread holds no guard of it"),
    };
    *n += 1;
    *n
}

#[process_task]
fn read_value(num: Value<i32>) -> i32 {
    num.get()
}

pub fn run() -> multiproc::Result<()> {
    let bumped = Process::new(task!(bump_global)).start()?.join()?;
    let seen = Process::new(task!(read_global)).start()?.join()?;
    println!("a global: now num {bumped} in the first child, {seen} in the second");

    let num = Value::new(100i32)?;
    let bumped = Process::new(task!(bump_value, num.clone()))
        .start()?
        .join()?;
    let seen = Process::new(task!(read_value, num.clone()))
        .start()?
        .join()?;
    println!("a Value:  now num {bumped} in the first child, {seen} in the second");
    println!("and {} in the parent", num.get());
    Ok(())
}
