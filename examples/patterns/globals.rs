//! Tutorial 004: processes do not share global variables. A child that changes one changes
//! its own copy; the parent and other children still see the old value.

use multiproc::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};

static NUM: AtomicI64 = AtomicI64::new(100);

#[process_task]
fn test_1() -> i64 {
    let now = NUM.fetch_add(1, Ordering::SeqCst) + 1;
    println!("test_1: now num {now}");
    now
}

#[process_task]
fn test_2() -> i64 {
    let now = NUM.load(Ordering::SeqCst);
    println!("test_2: now num {now}");
    now
}

pub fn run() -> multiproc::Result<()> {
    let changed = Process::new(task!(test_1)).start()?.join()?;
    let seen = Process::new(task!(test_2)).start()?.join()?;
    println!(
        "main: child changed num to {changed}, another child sees {seen}, main sees {}",
        NUM.load(Ordering::SeqCst)
    );
    Ok(())
}
