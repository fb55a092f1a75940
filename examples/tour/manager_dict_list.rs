//! Several processes fill one dict and one list that a manager holds (tutorial 004: "a manager
//! object controls a server process which holds Python objects and allows other processes to
//! manipulate them"), then the parent reads them back.

use multiproc::managers::{DictProxy, ListProxy, Manager};
use multiproc::prelude::*;

#[process_task]
fn fill(id: u32, squares: DictProxy<u32, u32>, seen: ListProxy<String>) -> multiproc::Result<()> {
    squares.insert(id, id * id)?;
    seen.push(format!("worker {id} in process {}", std::process::id()))?;
    // One atomic step on the server: no lock, no lost update.
    squares.fetch_add(&100, 1)?;
    Ok(())
}

pub fn run() -> multiproc::Result<()> {
    let manager = Manager::start()?;
    let squares = manager.dict()?;
    let seen = manager.list()?;
    let workers: Vec<_> = (1..=4)
        .map(|id| Process::new(task!(fill, id, squares.clone(), seen.clone())).start())
        .collect::<Result<_, _>>()?;
    for worker in workers {
        worker.join()??;
    }
    let mut items = squares.items()?;
    items.sort();
    println!("dict: {items:?} (key 100 counts the workers)");
    for line in seen.to_vec()? {
        println!("list: {line}");
    }
    manager.shutdown()
}
