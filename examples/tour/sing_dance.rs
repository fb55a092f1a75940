//! Tutorial 001: singing then dancing in one process, against singing and dancing in two
//! processes at once, with the times.

use multiproc::prelude::*;
use std::time::{Duration, Instant};

const PAUSE: Duration = Duration::from_millis(100);

#[process_task]
fn sing(name: String, num: u32) {
    for _ in 0..num {
        println!("{name} sings...");
        std::thread::sleep(PAUSE);
    }
}

#[process_task]
fn dance(name: String, num: u32) {
    for _ in 0..num {
        println!("{name} dances...");
        std::thread::sleep(PAUSE);
    }
}

pub fn run() -> multiproc::Result<()> {
    let start = Instant::now();
    sing("Yuki".into(), 3);
    dance("Nagato".into(), 3);
    let one_after_another = start.elapsed();

    let start = Instant::now();
    let singer = Process::new(task!(sing))
        .args(("Yuki".to_string(), 3))
        .start()?;
    let dancer = Process::new(task!(dance))
        .args(("Nagato".to_string(), 3))
        .start()?;
    singer.join()?;
    dancer.join()?;
    let at_once = start.elapsed();

    println!("one after another: {one_after_another:.2?}; in two processes: {at_once:.2?}");
    Ok(())
}
