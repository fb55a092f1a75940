use multiproc::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Body<T> {
    value: T,
}

#[process_task]
impl<T: Send + Serialize + for<'de> Deserialize<'de> + 'static> Run for Body<T> {
    fn run(self) {}
}

fn main() {}
