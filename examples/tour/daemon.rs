//! Tutorials 001 and 004: when a process's own code ends, it still waits for its non-daemonic
//! children, while its daemonic children end with it.
//!
//! To show that inside the tour, a child process plays the main process here.

use multiproc::prelude::*;
use std::time::Duration;

#[process_task]
fn work(label: String, rounds: u32) {
    for _ in 0..rounds {
        println!("{label}: working...");
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("{label}: done");
}

#[process_task]
fn main_process() {
    let daemon = Process::new(task!(work, "daemon".to_string(), 20))
        .daemon(true)
        .start();
    let worker = Process::new(task!(work, "non-daemon".to_string(), 5)).start();
    daemon.and(worker).expect("start the children");
    std::thread::sleep(Duration::from_millis(120));
    println!("main: my own code has ended; the daemon ends now, the non-daemon is waited for");
}

pub fn run() -> multiproc::Result<()> {
    Process::new(task!(main_process)).start()?.join()
}
