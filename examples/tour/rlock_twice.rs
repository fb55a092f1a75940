//! A recursive lock acquired twice by each process, and released as many times (tutorial 003,
//! `multiprocessing.RLock` with `acquire()` / `release()`).

use multiproc::prelude::*;
use multiproc::sync::SyncError;
use std::time::Duration;

#[process_task]
fn twice(lock: RLock, i: u32) -> Result<(), SyncError> {
    lock.acquire()?;
    lock.acquire()?; // the owner may take it again
    println!("{i}:{} is running", std::process::id());
    std::thread::sleep(Duration::from_millis(10));
    println!("{i}:{} is done", std::process::id());
    lock.release()?;
    lock.release()?; // as many releases as acquires
    Ok(())
}

pub fn run() -> multiproc::Result<()> {
    let lock = RLock::new()?;
    let children = (0..10)
        .map(|i| Process::new(task!(twice, lock.clone(), i)).start())
        .collect::<Result<Vec<_>, _>>()?;
    for child in children {
        child.join()??;
    }
    Ok(())
}
