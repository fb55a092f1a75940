//! A producer process puts words on a `Queue` and a consumer process takes them off until it
//! sees the end marker (tutorials 003 and 004, `multiprocessing.Queue` between two processes).

use multiproc::prelude::*;

#[process_task]
fn producer(q: Queue<Option<String>>, words: Vec<String>) {
    for word in words {
        println!("put {word}");
        q.put(Some(word)).expect("put");
    }
    // `None` tells the consumer that nothing more will come.
    q.put(None).expect("put");
}

#[process_task]
fn consumer(q: Queue<Option<String>>) -> usize {
    let mut taken = 0;
    while let Some(word) = q.get().expect("get") {
        println!("got {word}");
        taken += 1;
    }
    taken
}

pub fn run() -> multiproc::Result<()> {
    let q = Queue::new()?;
    let words: Vec<String> = ["A", "B", "C", "D"].map(String::from).to_vec();
    let p = Process::new(task!(producer, q.clone(), words)).start()?;
    let c = Process::new(task!(consumer, q.clone())).start()?;
    // The producer may be joined before the consumer has read anything: its puts are already in
    // shared memory, so it exits at once (CPython would wait for a reader here).
    p.join()?;
    println!("the consumer took {} words", c.join()?);
    Ok(())
}
