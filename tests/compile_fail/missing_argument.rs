use multiproc::prelude::*;

#[process_task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() {
    // A partial (`b` unbound) is fine to make, but it is not a call a process can run.
    let partial = task!(add, a = 1);
    let _ = Process::new(partial).start();
}
