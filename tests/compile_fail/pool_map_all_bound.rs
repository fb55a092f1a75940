use multiproc::prelude::*;

#[process_task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() {
    let pool = Pool::new(1).unwrap();
    let _ = pool.map(task!(add, 1, b = 2), vec![3]);
}
