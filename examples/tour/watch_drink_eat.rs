//! Tutorial 000: three processes watch TV, drink and eat at the same time. `start` does not
//! block, so the main process's own line prints first; then it waits for the three.

use multiproc::prelude::*;
use std::time::Duration;

const PAUSE: Duration = Duration::from_millis(100);

#[process_task]
fn watch() {
    for _ in 0..3 {
        println!("watch tv... {}", std::process::id());
        std::thread::sleep(PAUSE);
    }
}

#[process_task]
fn drink(food: String) {
    for _ in 0..3 {
        println!("drink {food}... {}", std::process::id());
        std::thread::sleep(PAUSE);
    }
}

#[process_task]
fn eat(food: String) {
    for _ in 0..3 {
        println!("eat {food}... {}", std::process::id());
        std::thread::sleep(PAUSE);
    }
}

pub fn run() -> multiproc::Result<()> {
    println!("main process {}", std::process::id());
    let watching = Process::new(task!(watch)).start()?;
    // Python's kwargs={"food": "sheep soup"}, then args=("rice",).
    let drinking = Process::new(task!(drink, food = "sheep soup".to_string())).start()?;
    let eating = Process::new(task!(eat))
        .args(("rice".to_string(),))
        .start()?;
    println!("the main process's own code has ended; its children run on");
    for child in [watching, drinking, eating] {
        child.join()?;
    }
    Ok(())
}
