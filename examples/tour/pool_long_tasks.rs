//! Tutorial 003: a pool of four processes runs five long tasks given with `apply_async`; `close`
//! then `join` waits for all of them (Python's `Pool(4)`, `apply_async`, `close()`, `join()`).
//! Only four run at once: the fifth starts when a worker is free.

use multiproc::prelude::*;
use std::time::{Duration, Instant};

#[process_task]
fn long_time_task(name: u32) {
    println!("run task {name}, pid {}", std::process::id());
    let start = Instant::now();
    // A pseudo-random nap of up to 0.3 s (the tutorial sleeps up to 3 s).
    let ms = u64::from(name.wrapping_mul(2_654_435_761) % 300);
    std::thread::sleep(Duration::from_millis(ms));
    println!(
        "task {name} runs {:.2} seconds.",
        start.elapsed().as_secs_f64()
    );
}

pub fn run() -> multiproc::Result<()> {
    println!("parent process {}.", std::process::id());
    let pool = Pool::new(4)?;
    let pending: Vec<_> = (0..5)
        .map(|i| pool.apply_async(task!(long_time_task, i)))
        .collect();
    // No more tasks may be added after close; join waits for the workers to finish.
    pool.close();
    pool.join()?;
    for result in pending {
        result.get()?;
    }
    println!("all subprocesses done.");
    Ok(())
}
