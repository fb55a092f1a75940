//! Tutorial 001: passing arguments to a process: positionally (Python's `args=(..)`), by name
//! (`kwargs={..}`), both, and leaving out a parameter that has a default.

use multiproc::prelude::*;

#[process_task]
fn dance(name: String, #[default(4)] num: u32) -> String {
    format!("{name} dances {num} times")
}

pub fn run() -> multiproc::Result<()> {
    let calls = [
        // args=('Yuki', 3)
        Process::new(task!(dance))
            .args(("Yuki".to_string(), 3))
            .start()?,
        // kwargs={'name': 'Nagato', 'num': 2}
        Process::new(task!(dance, name = "Nagato".to_string(), num = 2)).start()?,
        // args=('Mikuru',), kwargs={'num': 1}
        Process::new(task!(dance, "Mikuru".to_string(), num = 1)).start()?,
        // num left out: its default, 4
        Process::new(task!(dance, name = "Haruhi".to_string())).start()?,
    ];
    for call in calls {
        println!("{}", call.join()?);
    }
    Ok(())
}
