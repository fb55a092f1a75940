//! Three processes meet at a `Barrier` before going on, and the last to arrive runs its
//! action (`multiprocessing.Barrier(parties, action)`).

use multiproc::prelude::*;
use multiproc::sync::SyncError;
use std::time::Duration;

#[process_task]
fn all_arrived() {
    println!("everyone is here");
}

#[process_task]
fn runner(barrier: Barrier, i: u64) -> Result<u32, SyncError> {
    std::thread::sleep(Duration::from_millis(10 * i));
    println!("runner {i} arrives");
    let index = barrier.wait()?;
    println!("runner {i} goes on (arrival index {index})");
    Ok(index)
}

pub fn run() -> multiproc::Result<()> {
    let barrier = Barrier::new(3)?
        .action(task!(all_arrived))
        .timeout(Duration::from_secs(10));
    let children = (0..3)
        .map(|i| Process::new(task!(runner, barrier.clone(), i)).start())
        .collect::<Result<Vec<_>, _>>()?;
    for child in children {
        child.join()??;
    }
    Ok(())
}
