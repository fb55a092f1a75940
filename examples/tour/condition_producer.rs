//! A producer process and a consumer process hand items over through a shared `Value` guarded
//! by a `Condition` (tutorial 004, `multiprocessing.Condition` with `wait_for` and `notify`).

use multiproc::prelude::*;
use multiproc::sync::SyncError;

/// Slot 0 holds how many items are ready, slots 1.. the items.
type Shelf = [u32; 6];
const ITEMS: u32 = 5;

#[process_task]
fn produce(cond: Condition, shelf: Value<Shelf>) -> Result<(), SyncError> {
    for item in 1..=ITEMS {
        let _held = cond.lock()?;
        let mut s = shelf.get();
        s[s[0] as usize + 1] = item * 10;
        s[0] += 1;
        shelf.set(s);
        println!("produced {}", item * 10);
        cond.notify(1)?;
    }
    Ok(())
}

#[process_task]
fn consume(cond: Condition, shelf: Value<Shelf>) -> Result<u32, SyncError> {
    let _held = cond.lock()?;
    cond.wait_for(|| shelf.get()[0] == ITEMS, None)?;
    let s = shelf.get();
    println!("consumed {:?}", &s[1..]);
    Ok(s[1..].iter().sum())
}

pub fn run() -> multiproc::Result<()> {
    let cond = Condition::new()?;
    let shelf = Value::new(Shelf::default())?;
    let consumer = Process::new(task!(consume, cond.clone(), shelf.clone())).start()?;
    let producer = Process::new(task!(produce, cond, shelf)).start()?;
    producer.join()??;
    println!("the consumer got a total of {}", consumer.join()??);
    Ok(())
}
