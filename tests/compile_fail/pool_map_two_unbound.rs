use multiproc::prelude::*;

#[process_task]
fn volume(width: u32, height: u32, depth: u32) -> u32 {
    width * height * depth
}

fn main() {
    let pool = Pool::new(1).unwrap();
    let _ = pool.map(task!(volume, height = 2), vec![1, 2, 3]);
}
