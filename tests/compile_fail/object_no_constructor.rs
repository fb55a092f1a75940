use multiproc::managers::manager_object;

#[derive(Default)]
pub struct Store(u32);

#[manager_object]
impl Store {
    fn new() -> Self {
        Store(0)
    }

    pub fn get(&self) -> u32 {
        self.0
    }
}

fn main() {}
