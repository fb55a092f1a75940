//! Worker processes take jobs from a `JoinableQueue`, call `task_done` for each, and the parent
//! `join`s the queue to wait until every job is processed (the `JoinableQueue` pattern of
//! Python's documentation, which tutorial 003 points to).

use multiproc::prelude::*;

#[process_task]
fn worker(jobs: JoinableQueue<u64>, results: Queue<(u64, u64)>) {
    // Daemonic workers loop forever; they end with the parent.
    loop {
        let n = jobs.get().expect("get");
        results.put((n, (1..=n).product())).expect("put");
        jobs.task_done().expect("task_done");
    }
}

pub fn run() -> multiproc::Result<()> {
    let jobs = JoinableQueue::new()?;
    let results = Queue::new()?;
    for _ in 0..3 {
        Process::new(task!(worker, jobs.clone(), results.clone()))
            .daemon(true)
            .start()?;
    }
    for n in 1..=10 {
        jobs.put(n)?;
    }
    jobs.join();
    println!("all {} jobs are done", results.qsize());
    let mut factorials: Vec<(u64, u64)> =
        (0..10).map(|_| results.get()).collect::<Result<_, _>>()?;
    factorials.sort_unstable();
    for (n, f) in factorials {
        println!("{n}! = {f}");
    }
    Ok(())
}
