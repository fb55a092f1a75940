use multiproc::prelude::*;

#[process_task(name = "custom")]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() {}
