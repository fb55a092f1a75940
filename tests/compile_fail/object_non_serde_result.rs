use multiproc::managers::manager_object;

pub struct NotSerde(u32);

pub struct Store(u32);

#[manager_object]
impl Store {
    pub fn new() -> Self {
        Store(0)
    }

    pub fn get(&self) -> NotSerde {
        NotSerde(self.0)
    }
}

fn main() {}
