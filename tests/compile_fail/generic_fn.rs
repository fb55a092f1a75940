use multiproc::prelude::*;

#[process_task]
fn identity<T>(value: T) -> T {
    value
}

fn main() {}
