use multiproc::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Table(Vec<u8>);

#[process_task]
fn lookup(table: Table, index: usize) -> u8 {
    table.0[index]
}

fn main() {
    let pool = Pool::new(1).unwrap();
    let _ = pool.map(task!(lookup, Table(vec![1, 2])), vec![0, 1]);
}
