use multiproc::managers::manager_object;

pub struct Store(u32);

#[manager_object]
impl Store {
    pub fn new() -> Self {
        Store(0)
    }

    pub fn into_inner(self) -> u32 {
        self.0
    }

    pub fn peek(&self) -> &u32 {
        &self.0
    }

    pub fn named(manager: u32) -> Self {
        Store(manager)
    }

    pub fn helper(x: u32) -> u32 {
        x
    }
}

fn main() {}
