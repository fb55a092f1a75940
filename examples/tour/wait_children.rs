//! Several children each report over their own pipe, and the parent serves whichever is ready
//! first with `multiproc::wait` (Python's `multiprocessing.connection.wait`, which tutorial 002
//! points to for waiting on several things at once).

use multiproc::prelude::*;
use std::time::Duration;

#[process_task]
fn report(mut conn: Connection<String>, id: u32, delay_ms: u64) {
    std::thread::sleep(Duration::from_millis(delay_ms));
    conn.send(&format!("child {id} finished after {delay_ms} ms"))
        .expect("send");
}

pub fn run() -> multiproc::Result<()> {
    let mut readers = Vec::new();
    let mut children = Vec::new();
    for (id, delay_ms) in [(0, 120), (1, 40), (2, 80)] {
        let (reader, writer) = Pipe::<String>::simplex()?;
        children.push(Process::new(task!(report, writer, id, delay_ms)).start()?);
        readers.push(reader);
    }
    let mut pending: Vec<usize> = (0..readers.len()).collect();
    while !pending.is_empty() {
        let waiting: Vec<&Connection<String>> = pending.iter().map(|&i| &readers[i]).collect();
        let ready = multiproc::wait(&waiting, Some(Duration::from_secs(10)))?;
        let ready: Vec<usize> = ready.into_iter().map(|r| pending[r]).collect();
        for i in ready {
            println!("{}", readers[i].recv()?);
            pending.retain(|&p| p != i);
        }
    }
    for child in children {
        child.join()?;
    }
    Ok(())
}
