use multiproc::prelude::*;

struct Counter;

impl Counter {
    #[process_task]
    fn count(self) -> u32 {
        1
    }
}

fn main() {}
