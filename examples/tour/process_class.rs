//! Tutorial 003: a struct as the process body, as Python's `class MyProcess(Process)` with its
//! own `run()`.

use multiproc::prelude::*;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Serialize, Deserialize)]
struct MyProcess {
    name: String,
}

#[process_task]
impl Run for MyProcess {
    fn run(self) {
        println!("started worker {}", self.name);
        let work = Duration::from_millis(50 * u64::from(std::process::id() % 3 + 1));
        std::thread::sleep(work);
        println!("{} worker finished in {work:?}", self.name);
    }
}

pub fn run() -> multiproc::Result<()> {
    let processes: Vec<_> = (0..5)
        .map(|i| {
            let name = format!("computer_{i}");
            Process::new(MyProcess { name: name.clone() })
                .name(name)
                .start()
        })
        .collect::<Result<_, _>>()?;
    for process in processes {
        process.join()?;
    }
    println!("main process finish!");
    Ok(())
}
