use multiproc::managers::manager_object;

pub struct NotSerde(u32);

pub struct Store(u32);

#[manager_object]
impl Store {
    pub fn new() -> Self {
        Store(0)
    }

    pub fn set(&mut self, value: NotSerde) {
        self.0 = value.0;
    }
}

fn main() {}
