use multiproc::prelude::*;

#[process_task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() {
    let _ = task!(add, 1, 2, 3);
}
