use multiproc::prelude::*;

#[process_task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() {
    let _ = task!(add, a = 1, c = 2);
}
