//! Ten processes print under one `Lock`, so that each one's "running" and "done" lines stay
//! together (tutorial 003, `multiprocessing.Lock` with `with lock:`).

use multiproc::prelude::*;
use std::time::Duration;

#[process_task]
fn report(lock: Lock, i: u32) {
    // A dead holder hands the lock over with an error; printing can go on either way.
    let _guard = lock.lock().unwrap_or_else(|died| died.into_inner());
    println!("{i}:{} is running", std::process::id());
    std::thread::sleep(Duration::from_millis(10 + u64::from(i % 3) * 10));
    println!("{i}:{} is done!", std::process::id());
}

pub fn run() -> multiproc::Result<()> {
    let lock = Lock::new()?;
    let children = (0..10)
        .map(|i| Process::new(task!(report, lock.clone(), i)).start())
        .collect::<Result<Vec<_>, _>>()?;
    for child in children {
        child.join()?;
    }
    Ok(())
}
