use multiproc::managers::manager_object;

pub struct Store(Vec<String>);

#[manager_object]
impl Store {
    pub fn new() -> Self {
        Store(Vec::new())
    }

    pub fn push<T: ToString>(&mut self, value: T) {
        self.0.push(value.to_string());
    }
}

fn main() {}
