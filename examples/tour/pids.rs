//! Tutorial 001: every process has its own id, and knows its parent's.

use multiproc::prelude::*;

#[process_task]
fn introduce(role: String) {
    let parent = parent_process().map_or(0, |p| p.pid());
    println!(
        "{role}: pid {}, parent pid {parent}",
        current_process().pid()
    );
}

pub fn run() -> multiproc::Result<()> {
    println!("main: pid {}", current_process().pid());
    let singer = Process::new(task!(introduce, "singer".to_string())).start()?;
    let dancer = Process::new(task!(introduce, "dancer".to_string())).start()?;
    singer.join()?;
    dancer.join()?;
    Ok(())
}
